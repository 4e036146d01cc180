"""Models shared by the papers. Import the module you need, e.g. ``from shared.models import gpt``."""
