# Two commands for a new user (see README):
#   make demo   set up .venv from the pinned requirements, then run the whole pipeline on digits
#   make test   set up .venv, then lint, type-check and run the tests
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cosep-deps-stamp
TRT_STUBS := tensorrt-stubs==10.13.0.35.1

.PHONY: venv demo test lint typecheck pytest browser lock clean gpu-check mutation-check

venv: $(STAMP)

# Re-installs whenever the pinned requirements or the package metadata change.
$(STAMP): requirements/dev.lock.txt setup.cfg pyproject.toml tools/trt_typings.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.lock.txt
	# the stubs depend on tensorrt itself, which PyPI cannot install: types only, no dependencies
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(TRT_STUBS)
	$(PY) tools/trt_typings.py $(VENV)/typings
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: venv
	$(VENV)/bin/cosep-deploy pipeline --out runs/demo --data digits:size=32

lint: venv
	$(VENV)/bin/ruff check cosep_deploy tests bench tools
	$(VENV)/bin/ruff format --check cosep_deploy tests bench tools

typecheck: venv
	$(VENV)/bin/mypy

# Debian's chromium renders report.html in a test; install it when missing (best effort: without it,
# that one test skips and says why)
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	  echo "note: could not install chromium; the headless-browser report test will be skipped"; }

pytest: venv browser
	$(PY) -m pytest -q

# plants TensorRT contract bugs in a copy of the package and proves the TensorRT tests catch each
mutation-check: venv
	$(PY) tools/trt_mutations.py

# on a machine with an NVIDIA GPU: torch CUDA (and TensorRT when importable) dense vs pruned, one JSON;
# without a GPU it says so and exits 0
gpu-check: venv
	$(PY) bench/gpu_check.py --out runs/gpu-check.json

test: lint typecheck pytest mutation-check

lock: venv
	$(PY) -m pip freeze --exclude-editable | grep -v -i '^tensorrt-stubs' > requirements/dev.lock.txt.new
	@echo "review requirements/dev.lock.txt.new and move it over requirements/dev.lock.txt"

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
