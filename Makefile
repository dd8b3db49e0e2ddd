# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this project's machines; a looser spec would make pip download a
# multi-GB CUDA build. On a GPU machine: make install TORCH_SPEC='torch==2.13.0 --index-url <your index>'.
TORCH_SPEC ?= torch==2.13.0
INSTALLED := $(VENV)/.installed
RESULTS ?= results

.PHONY: install demo test lint bench schema clean

$(INSTALLED): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev,encoder]'
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/recbench run scenarios/quickstart.yaml --results-dir $(RESULTS) | tee $(VENV)/demo-run.log
	$(BIN)/recbench show $$(sed -n 's/^wrote //p' $(VENV)/demo-run.log | tail -n 1)
	$(BIN)/recbench report $$(sed -n 's/^wrote //p' $(VENV)/demo-run.log | tail -n 1) -o reports/quickstart \
		--qps 100 --slo-p99-ms 500

lint: $(INSTALLED)
	$(BIN)/ruff check bench tests
	$(BIN)/ruff format --check bench tests

test: lint
	$(BIN)/pytest -q

# Benchmarks: real recbench runs and pytest-benchmark timings, kept out of the default suite.
bench: $(INSTALLED)
	$(BIN)/pytest -q -m benchmark_run

schema: $(INSTALLED)
	$(BIN)/recbench schema -o scenarios/scenario.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
