# Two commands do all the set-up on a fresh machine:
#   make demo   - the main job on the embedded images (search, derive, render, retrain, evaluate)
#   make test   - the test suite: pytest for the library, nbval for the notebooks
# Both create .venv on first use. TORCH is the torch requirement, passed to pip as it is
# (options included): the default, torch, is PyPI's build for the platform (on Linux
# x86-64 the CUDA build, gigabytes). CPU-only machines and CI (CI=true) take the CPU wheel
# from PyTorch's CPU index. Changing TORCH later reinstalls torch (.venv/.torch-req).
# THREADS=N: torch threads for demo and lab (default: HINAS_THREADS, else the cores not
# busy with other jobs).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_CPU = torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
ifeq ($(CI),true)
TORCH ?= $(TORCH_CPU)
else
TORCH ?= torch
endif
THREADS ?=
# the course's working copies (git-ignored): JupyterLab autosaves, and notebooks/ stays as committed
LAB ?= lab

.PHONY: FORCE setup demo test test-fast test-lib test-notebooks notebooks bench bench-all zoo lab clean

# the torch requirement last installed; rewritten (so newer than .installed) only when TORCH changes
# A .venv made before this file existed is taken to hold the torch asked for now (dated as
# .installed, so nothing is reinstalled): reinstalling would download a build it may already have.
$(VENV)/.torch-req: FORCE
	@mkdir -p $(VENV)
	@if [ ! -f $@ ] && [ -f $(VENV)/.installed ]; then echo '$(TORCH)' > $@ && touch -r $(VENV)/.installed $@; \
	else echo '$(TORCH)' | cmp -s - $@ || echo '$(TORCH)' > $@; fi

# each word of TORCH quoted on its own: options pass through, and "torch>=2.3" is no redirection.
# A changed TORCH uninstalls torch first: pip would keep any installed build of the same version.
$(VENV)/.installed: pyproject.toml $(VENV)/.torch-req
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(filter $(VENV)/.torch-req,$?),$(PY) -m pip uninstall -y -q torch 2>/dev/null || true)
	$(PY) -m pip install -q $(foreach w,$(TORCH),'$(w)')
	$(PY) -m pip install -q -e ".[all]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m hinas_lib demo --preset tiny --task denoise --out runs/demo $(if $(THREADS),--threads $(THREADS))

# the notebooks are checked even when the library's tests fail; make fails at the end
test: setup
	@status=0; \
	$(PY) -m pytest -q tests || { status=$$?; echo "make test: the library's tests failed (exit $$status); checking the notebooks anyway"; }; \
	HINAS_FAST=1 HINAS_THREADS=$${HINAS_THREADS:-1} $(PY) -m pytest -q --nbval-lax --nbval-current-env notebooks \
	  || { s=$$?; echo "make test: the notebooks failed (exit $$s)"; [ $$status != 0 ] || status=$$s; }; \
	exit $$status

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
comma := ,
SCALING_VARIANTS = $(if $(AUTHORS_SRC),default$(comma)authors-code,default)
PREVIOUS ?=
RESTORE_VARIANTS = $(if $(PREVIOUS),--variants previous$(comma)eager$(comma)after --previous $(PREVIOUS),--variants eager$(comma)after)

bench: setup
	$(PY) -m benchmarks.search_step --preset paper-denoise --threads 2 $(AUTHORS) --json benchmarks/results/search_step_denoise.json
	$(PY) -m benchmarks.report

# every CPU benchmark behind benchmarks/RESULTS.md (about an hour on 2 cores)
bench-all: setup
	$(PY) -m benchmarks.search_step --preset paper-denoise --threads 2 --iters 3 --warmup 1 $(AUTHORS) --json benchmarks/results/search_step_denoise.json
	# (the unoptimised SR worker is left out: with the authors' ~10 GiB beside it, 24 GiB runs out)
	$(PY) -m benchmarks.search_step --preset paper-sr --threads 2 --iters 3 --warmup 1 $(AUTHORS) --variants default,checkpoint,full-backward,authors-code --json benchmarks/results/search_step_sr.json
	$(PY) -m benchmarks.profile_step --preset paper-denoise --threads 1 --json benchmarks/results/profile_step_denoise.json
	$(PY) -m benchmarks.profile_step --preset paper-denoise --threads 2 --json benchmarks/results/profile_step_denoise_t2.json
	# thread scaling, ours against the authors' code interleaved, per preset and thread count
	for t in 1 2; do \
	  $(PY) -m benchmarks.search_step --preset paper-denoise --threads $$t --iters 3 --warmup 1 $(AUTHORS) --variants $(SCALING_VARIANTS) --json benchmarks/results/search_step_denoise_t$$t.json && \
	  $(PY) -m benchmarks.search_step --preset paper-sr --threads $$t --iters 3 --warmup 1 $(AUTHORS) --variants $(SCALING_VARIANTS) --json benchmarks/results/search_step_sr_t$$t.json || exit 1; done
	$(PY) -m benchmarks.restore_speed --model denoise-s50 --size 1600x1200 --threads 1 2 --variants before,eager,after,compiled --json benchmarks/results/restore_speed.json
	$(PY) -m benchmarks.restore_speed --model denoise-s50 --size 4000x3000 --threads 2 --variants eager,after --json benchmarks/results/restore_speed_12mp.json
	# PREVIOUS=DIR (a checkout, e.g. git worktree add /tmp/previous REV) adds its restore path side by side
	$(PY) -m benchmarks.restore_speed --size 1600x1200 --threads 1 2 --repeats 2 $(RESTORE_VARIANTS) --json benchmarks/results/restore_speed_s30_f48.json
	$(PY) -m benchmarks.restore_speed --size 4000x3000 --threads 2 $(RESTORE_VARIANTS) --json benchmarks/results/restore_speed_12mp_s30.json
	$(PY) -m benchmarks.train_step --model denoise-s30 --threads 1 2 --repeats 2 $(if $(PREVIOUS),--previous $(PREVIOUS),) --json benchmarks/results/train_step_s30.json
	$(PY) -m benchmarks.train_step --model denoise-s50 --threads 1 2 --repeats 2 $(if $(PREVIOUS),--previous $(PREVIOUS),) --json benchmarks/results/train_step_s50.json
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

# JupyterLab on this machine only, on working copies of the notebooks in $(LAB)/ (copied
# once; a notebook missing there is copied again), so that autosave never touches notebooks/.
# The server's root is the repository, so that a notebook's ../zoo/curves.png is served.
# As root (a container) Jupyter refuses to start without --allow-root. THREADS=N (or
# HINAS_THREADS=N) fixes the kernels' torch threads; OpenMP spins briefly (GOMP_SPINCOUNT).
lab: setup
	@mkdir -p $(LAB) && cp -n notebooks/0*.ipynb $(LAB)/ && echo "notebooks: $(LAB)/ (your working copies, git-ignored; delete one to get the committed version again)"
	$(if $(THREADS),HINAS_THREADS=$(THREADS)) env $$( [ -n "$$OMP_WAIT_POLICY$$GOMP_SPINCOUNT" ] || echo GOMP_SPINCOUNT=10000 ) \
	  $(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/$(LAB) --ip 127.0.0.1 \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# re-run every notebook in fast mode (1 thread) and normalise it for committing
notebooks: setup
	HINAS_FAST=1 HINAS_THREADS=$${HINAS_THREADS:-1} $(PY) scripts/normalize_notebooks.py --execute notebooks/0*.ipynb

clean:
	rm -rf runs .pytest_cache
