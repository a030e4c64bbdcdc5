# One-command set-up, demo and tests. Works on a fresh machine with Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synthfilter-installed

.PHONY: setup demo test test-fast clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of PyTorch first, so sentence-transformers does not pull a CUDA one.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# Score the bundled example corpus with the shipped detector.
demo: setup
	$(BIN)/synthfilter score examples/mixed_corpus.parquet --keep text --keep source -o examples/mixed_corpus.scores.parquet

test: setup
	-bash scripts/install_test_extras.sh
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
