# Quick start on a fresh machine with only Python:  make demo   /   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed-stamp

# nbgrader runs `alembic` as a subprocess: the virtualenv's bin/ must be on PATH.
export PATH := $(BIN):$(PATH)
# One BLAS thread per process: the checks make many small linear-algebra calls, which
# multi-threaded BLAS slows down badly on small machines; parallelism comes from processes.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: setup build check-build demo test test-fast browser bench bench-grading data clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[interactive,advi,instructor,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	touch $(STAMP)

# Regenerate reference modules, visible fixtures and released notebooks from solutions/*/*.ipynb.
build: setup
	$(BIN)/python -m autograder.build

check-build: setup
	$(BIN)/python -m autograder.build --check

# Build the release, then grade the bundled example submissions and a small generated class (one
# student per corpus author, planted copies, a pasted answer key: benchmarks/synthetic_class.py
# --demo, the same files every time): the score table on the terminal, and a gradebook (CSV, JSON,
# one HTML report per student with pictures, the class report and the similarity report) in
# build/demo-gradebook/.
demo: build
	rm -rf build/demo-class
	$(BIN)/python benchmarks/synthetic_class.py --demo build/demo-class > /dev/null
	$(BIN)/python -m autograder grade --assignment gmm --format table --gradebook build/demo-gradebook --no-resume --similarity examples/gmm build/demo-class
	@echo "gradebook and per-student HTML reports: build/demo-gradebook/index.html"
	@echo "class report: build/demo-gradebook/class.html   similarity: build/demo-gradebook/similarity.html"

# Two pytest workers (one per core), a test file per worker: a corpus module grades its files up
# front in its own worker processes, which must not run twice.
test: setup browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Headless Chromium + chromedriver for tests/test_browser.py (apt-get when missing and possible;
# without them the browser tests skip and say why).
browser:
	.ci/install-chromium

test-fast: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow and not browser and not nbgrader"

bench: setup
	$(BIN)/python benchmarks/bench_gmm.py
	$(BIN)/python benchmarks/bench_prankster.py
	$(BIN)/python benchmarks/bench_student_checks.py
	$(BIN)/python benchmarks/bench_similarity.py

# 300 gmm notebooks graded by the CLI and by nbgrader autograde (long: nbgrader runs every notebook).
bench-grading: setup
	$(BIN)/python benchmarks/bench_grading.py

# Rewrite the shipped data files from their seeded generators (identical bytes on every machine).
data: setup
	$(BIN)/python -m autograder.datasets

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info gradebook.db
