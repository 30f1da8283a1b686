# kdlab: every target sets up .venv first (python3 -m venv + pip install -e ".[test]") when it is
# missing or older than pyproject.toml. Only Python 3.10+ and the package registries are needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kdlab-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# Worked solutions of the exercises: run after the notebooks, whose trained models they load.
SOLUTIONS := $(sort $(wildcard notebooks/solutions/[0-9][0-9]_solutions.ipynb))
# The ones make test runs: every solution (05 trains about 18 quick students, about a minute on two cores).
SOLUTIONS_CHECKED := $(SOLUTIONS)
NB_TIMEOUT ?= 1800

.PHONY: setup notebooks test test-solutions test-fast lint lab data bench-data bench-train bench-tap bench bench-feature-baselines bench-quick gpu-check regimes tune perf clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

## The main job: generate the default dataset (and the source corpus), run every numbered notebook in a fresh kernel,
## write executed copies and HTML to build/notebooks/.
notebooks: $(STAMP)
	$(VENV)/bin/kdlab data
	$(VENV)/bin/kdlab data --domain source
	$(PY) scripts/run_notebooks.py --out build/notebooks --timeout $(NB_TIMEOUT) $(NOTEBOOKS)

## The tests: pytest on tests/ and nbval on every numbered notebook, then on the checked exercise
## solutions, in quick mode. KDLAB_STRICT=1: a notebook's failed kdlab.check(...) raises, so a broken
## claim fails the run (in class it only prints ✗).
test: $(STAMP)
	$(PY) -m ruff check kdlab tests benchmarks scripts
	KDLAB_QUICK=1 KDLAB_STRICT=1 $(PY) -m pytest tests $(PYTEST_ARGS)
	KDLAB_QUICK=1 KDLAB_STRICT=1 KDLAB_PROGRESS=0 $(PY) -m pytest --nbval-lax --nbval-cell-timeout=$(NB_TIMEOUT) --timeout=$(NB_TIMEOUT) -p no:cacheprovider $(NOTEBOOKS) $(SOLUTIONS_CHECKED)

## Every exercise solution (quick mode; they load the models the notebooks trained, or train them).
test-solutions: $(STAMP)
	KDLAB_QUICK=1 KDLAB_STRICT=1 KDLAB_PROGRESS=0 $(PY) -m pytest --nbval-lax --nbval-cell-timeout=$(NB_TIMEOUT) --timeout=$(NB_TIMEOUT) -p no:cacheprovider $(SOLUTIONS)

test-fast: $(STAMP)
	$(PY) -m ruff check kdlab tests benchmarks scripts
	KDLAB_QUICK=1 KDLAB_STRICT=1 $(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

## The linter alone (ruff, configured in pyproject.toml); make test runs it first.
lint: $(STAMP)
	$(PY) -m ruff check kdlab tests benchmarks scripts

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

data: $(STAMP)
	$(VENV)/bin/kdlab data
	$(VENV)/bin/kdlab data --domain source

bench-data: $(STAMP)
	$(PY) benchmarks/bench_data.py

bench-train: $(STAMP)
	$(PY) benchmarks/bench_train.py

bench-tap: $(STAMP)
	$(PY) benchmarks/bench_tap.py

## The benchmark: the discriminative regime (every method x 5 seeds, the budget sweep, the SKD ablations)
## -> results/benchmark.{json,md,png}, then the easy control -> results/benchmark-easy.*.
## Resumes: finished runs are loaded from runs/. bench-quick: the small variant -> results/benchmark-quick.*
BENCH_JOBS ?= 2
bench: $(STAMP)
	$(VENV)/bin/kdlab bench --regime discriminative --jobs $(BENCH_JOBS)
	$(VENV)/bin/kdlab bench --regime easy --jobs $(BENCH_JOBS)

## AT, SP and NST against KD in the discriminative regime (left out of `make bench` for time)
## -> results/benchmark-feature-baselines.*
bench-feature-baselines: $(STAMP)
	$(VENV)/bin/kdlab bench --config benchmarks/feature-baselines.toml --jobs $(BENCH_JOBS)

## On a machine with a GPU: the test suite, one student run with the GPU's utilisation sampled and,
## with NOTEBOOKS=1, nbval on every notebook, all on CUDA, within GPU_BUDGET seconds -> results/gpu-check.json
GPU_BUDGET ?= 540
gpu-check: $(STAMP)
	$(PY) scripts/gpu_check.py --budget $(GPU_BUDGET) $(if $(NOTEBOOKS),--notebooks)

## The search that chose the discriminative regime -> results/regimes.json
regimes: $(STAMP)
	$(PY) benchmarks/search_regimes.py

## Tune SKD and the strongest baselines on validation, same budget of trials each -> results/tuning.{json,md}
tune: $(STAMP)
	$(PY) benchmarks/tune.py

bench-quick: $(STAMP)
	KDLAB_QUICK=1 $(VENV)/bin/kdlab bench --quick

## Every cost ratio side by side (tap, SKD step, teacher cache, loader, FLOPs, notebook times) -> results/perf.json
perf: $(STAMP)
	$(PY) benchmarks/perf.py

clean:
	rm -rf build .pytest_cache
