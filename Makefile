# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
BIN := $(VENV)/bin
STAMP := $(VENV)/.gedge-installed-$(EXTRAS)

# Serving (`gedge serve`) has its own environment: PyTriton needs numpy<2 and the shared libpython of the system
# Python (/usr/bin/python3.11 on Debian; a pyenv Python without libpython3.11.so fails to load models). No torch.
SERVE_PYTHON ?= /usr/bin/python3.11
SERVE_VENV ?= .venv-serve
SERVE_EXTRAS ?= serve,cpu
SERVE_STAMP := $(SERVE_VENV)/.gedge-installed-serve

.PHONY: demo test lint venv serve-venv clean gpu-check firmware-check

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

serve-venv: $(SERVE_STAMP)

$(SERVE_STAMP): pyproject.toml Makefile
	test -x $(SERVE_VENV)/bin/python || $(SERVE_PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install -q --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install -q -e ".[$(SERVE_EXTRAS)]"
	touch $(SERVE_STAMP)

demo: $(STAMP)
	$(BIN)/gedge demo --out demo-out

# The serving tests run `gedge serve` from $(SERVE_VENV). Where $(SERVE_PYTHON) exists it is built, and a failed
# build fails `make test`; without it the serving tests skip and say why.
test: $(STAMP)
	@if [ -x $(SERVE_PYTHON) ]; then $(MAKE) --no-print-directory serve-venv; \
	else echo "no $(SERVE_PYTHON): $(SERVE_VENV) cannot be made, the serving tests will skip"; fi
	bash edge/firmware/check.sh
	PYTHONUNBUFFERED=1 $(BIN)/python -m pytest -q --durations=15

# The C++ firmware runtime (edge/firmware): compiled against TensorRT 10.3 and 11.1 headers with -Werror, unit
# tests on stand-ins; skipped with the reason where there is no C++ compiler or CMake. Outputs in build/firmware.
firmware-check:
	bash edge/firmware/check.sh

lint: $(STAMP)
	$(BIN)/ruff check edge export calibrate bench tests
	$(BIN)/python tests/layers.py

clean:
	rm -rf demo-out .pytest_cache

gpu-check: $(STAMP)
	PYTHON=$(BIN)/python bash bench/gpu_check.sh
