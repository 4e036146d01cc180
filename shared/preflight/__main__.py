"""``python -m shared.preflight ...`` (see shared.preflight.cli)."""
import sys

from shared.preflight.cli import main

sys.exit(main())
