# Set-up is part of every target: a fresh clone needs only `make train` or `make test`.
# TORCH is the PyTorch requirement installed first; the pin selects the CPU build available on
# the reference machines (any torch >= 2.2 works: `make test TORCH=torch`).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin

.PHONY: install train test lint bench gradcheck dist smoke clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

train: $(BIN)/.installed  ## train on the embedded Yin-Yang dataset (no download)
	$(BIN)/eventprop train $(ARGS)

test: $(BIN)/.installed  ## the test suite (slow tests: make test ARGS="-m slow")
	$(BIN)/python -m pytest $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_engine.py $(ARGS)

gradcheck: $(BIN)/.installed
	$(BIN)/eventprop gradcheck $(ARGS)

dist: $(BIN)/.installed  ## sdist and wheel into dist/
	$(BIN)/python -m build --outdir dist .

smoke: $(BIN)/.installed  ## build, install into fresh environments, run the installed command
	VENV=$(VENV) bash .ci/wheel_smoke

clean:
	rm -rf $(VENV) build dist *.egg-info
