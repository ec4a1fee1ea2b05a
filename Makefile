# `make demo` runs the main job on a real video that ships in an installed package; `make test` runs the tests.
# Both create the virtual environment first (`make setup`), which is quick when it is already up to date.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQUIREMENTS := pyproject.toml requirements/stack.txt requirements/no-deps.txt requirements/dev.txt
OUT ?= out
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean

setup: $(STAMP)

# pip's resolver is run on stack.txt only: the no-deps packages declare pins that are wrong for this stack
# (facenet-pytorch asks for torch<2.3) or pull in what we never import (mediapipe: jax, 380 MB).
$(STAMP): $(REQUIREMENTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/stack.txt -r requirements/dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements/no-deps.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m ned_outlier.assets
	touch $(STAMP)

demo: setup
	$(PY) scripts/reconstruct.py "$$($(PY) -m ned_outlier.assets pexels_video)" --out $(OUT)/pexels

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	HF_HUB_OFFLINE=1 $(PY) benchmarks/reconstruct.py

clean:
	rm -rf $(OUT) .pytest_cache
