# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
BIN := $(VENV)/bin
STAMP := $(VENV)/.gedge-installed-$(EXTRAS)

.PHONY: demo test lint venv clean gpu-check firmware-check

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gedge demo --out demo-out

test: $(STAMP)
	bash edge/firmware/check.sh
	$(BIN)/python -m pytest -q

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
