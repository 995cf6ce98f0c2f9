# Two commands do all the set-up on a fresh machine:
#   make demo   - the main job on the embedded images (search, derive, render, retrain, evaluate)
#   make test   - the test suite: pytest for the library, nbval for the notebooks
# Both create .venv on first use. TORCH selects the torch requirement: users get
# the default build from PyPI; CI (CI=true) and CPU-only machines can pin the CPU
# wheel with TORCH=torch==2.13.0.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ifeq ($(CI),true)
TORCH ?= torch==2.13.0
else
TORCH ?= torch
endif

.PHONY: setup demo test test-fast test-lib test-notebooks notebooks bench bench-all zoo lab clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[all]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m hinas_lib demo --preset tiny --task denoise --out runs/demo

test: setup
	$(PY) -m pytest -q tests
	HINAS_FAST=1 HINAS_THREADS=$${HINAS_THREADS:-1} $(PY) -m pytest -q --nbval-lax --nbval-current-env notebooks

test-notebooks: setup
	HINAS_FAST=1 HINAS_THREADS=$${HINAS_THREADS:-1} $(PY) -m pytest -q --nbval-lax --nbval-current-env notebooks

test-lib: setup
	$(PY) -m pytest -q tests

# contributors' quick loop (a few minutes): the library without the slow tests, no notebooks
test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

# AUTHORS_SRC=~/HiNAS (a checkout of github.com/hkzhang91/HiNAS, plus pip install yacs) times
# the authors' own code side by side with ours
AUTHORS_SRC ?=
AUTHORS = $(if $(AUTHORS_SRC),--authors-src $(AUTHORS_SRC),)

bench: setup
	$(PY) -m benchmarks.search_step --preset paper-denoise --threads 2 $(AUTHORS) --json benchmarks/results/search_step_denoise.json
	$(PY) -m benchmarks.report

# every CPU benchmark behind benchmarks/RESULTS.md (about an hour on 2 cores)
bench-all: setup
	$(PY) -m benchmarks.search_step --preset paper-denoise --threads 2 --iters 3 --warmup 1 $(AUTHORS) --json benchmarks/results/search_step_denoise.json
	# (the unoptimised SR worker is left out: with the authors' ~10 GiB beside it, 24 GiB runs out)
	$(PY) -m benchmarks.search_step --preset paper-sr --threads 2 --iters 3 --warmup 1 $(AUTHORS) --variants default,checkpoint,full-backward,authors-code --json benchmarks/results/search_step_sr.json
	$(PY) -m benchmarks.profile_step --preset paper-denoise --threads 2 --json benchmarks/results/profile_step_denoise.json
	$(PY) -m benchmarks.eval_forward --preset paper-denoise --threads 2 --json benchmarks/results/eval_forward.json
	$(PY) -m benchmarks.derived --threads 2 --json benchmarks/results/derived.json
	$(PY) -m benchmarks.search_step --preset paper-denoise --style compact --threads 2 --sweep layers --json benchmarks/results/sweep_layers.json
	$(PY) -m benchmarks.search_step --preset paper-denoise --style compact --threads 2 --sweep batch --json benchmarks/results/sweep_batch.json
	$(PY) -m benchmarks.distributed_cpu --steps 60 --repeats 2 --json benchmarks/results/distributed_cpu.json
	$(PY) -m benchmarks.report

# the model zoo from ../shared/data. Grey denoisers: a blind trunk that grows across
# sessions (resumes from zoo/state; HOURS more CPU-hours on one thread), then per-sigma and
# blind branches (750 to 10,500 steps in one to three cosine cycles, 20 minutes to 3 CPU-hours each:
# BRANCHES in grow_denoise.py).
# SR: make_sr.py (about 40 minutes).
HOURS ?= 1
zoo: setup
	$(PY) zoo/grow_denoise.py trunk --hours $(HOURS) --threads 1
	$(PY) zoo/grow_denoise.py branches --threads 1
	$(PY) zoo/make_sr.py --threads 2

# JupyterLab on this machine only; as root (a container) Jupyter refuses to start
# without --allow-root. On a machine shared with other jobs: HINAS_THREADS=1 make lab
lab: setup
	$(VENV)/bin/jupyter lab notebooks --ip 127.0.0.1 $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# re-run every notebook in fast mode (1 thread) and normalise it for committing
notebooks: setup
	HINAS_FAST=1 HINAS_THREADS=$${HINAS_THREADS:-1} $(PY) scripts/normalize_notebooks.py --execute notebooks/0*.ipynb

clean:
	rm -rf runs .pytest_cache
