# Entry points; each creates .venv on first use and installs the project into it.
#   make demo   run the main job on an embedded dataset (digits, offline)
#   make test   run the full test suite (-rs: the reason of every skipped test), 2 processes
#   make test-matrix   make test again on every other supported Python (PYTHONS), one .venv<XY> each
#   make lint   ruff over the tree, mypy over the typed modules (MYPY_FILES)
#   make docs   build the API reference (Sphinx, warnings are errors) into docs/_build/html
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deapnn-installed
DOCS_STAMP := $(VENV)/.deapnn-docs-installed

.PHONY: demo test test-matrix lint bench docs clean

# the modules mypy checks (`make lint`); extend this list as more of deapnn gains annotations
MYPY_FILES := deapnn/config.py deapnn/sgd.py deapnn/deprecation.py deapnn/evaluation.py deapnn/algorithms/ \
	deapnn/fastpath.py deapnn/compiled.py deapnn/fastcheck.py \
	deapnn/environment.py deapnn/imports.py deapnn/data/user.py deapnn/data/user_file.py deapnn/models/user.py \
	deapnn/operators/lexicase.py deapnn/operators/lexicase_engine.py deapnn/operators/lexicase_deap.py \
	deapnn/operators/lexicase_util.py deapnn/operators/dalex.py deapnn/paired.py deapnn/comparison_classes.py \
	deapnn/operators/lexicase_exact.py deapnn/operators/plexicase.py \
	deapnn/operators/lexicase_variants.py \
	deapnn/operators/lexicase_batch.py deapnn/operators/lexicase_informed.py \
	deapnn/operators/lexicase_informed_deap.py

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo
	@echo "== Gradient Lexicase Selection vs SGD, cnn on digits (3 seeds)"
	$(VENV)/bin/deapnn gls --dataset digits --model cnn --population-size 4 --epochs 10 --compare sgd --seeds 0,1,2 --out runs/demo/gls
	@echo "== Neural loss function search on computational graphs (short run)"
	$(VENV)/bin/deapnn nlfs --dataset digits --population-size 10 --pool 20 --cycles 40 --sample-size 3 --budget 150 --seeds 0-2 --final-steps 450 --out runs/demo/nlfs
	@echo "== EvoMAL on diabetes (short run)"
	$(VENV)/bin/deapnn evomal --dataset diabetes --population-size 6 --generations 2 --meta-steps 10 --fitness-steps 100 --rejection-steps 200 --final-steps 500 --hidden 32,32 --seeds 0-2 --out runs/demo/evomal

# pytest-xdist: TEST_WORKERS test processes, each test module whole on one of them (--dist
# loadfile: a module's fixtures, e.g. test_multihost's network namespace, exist once)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -rs -n $(TEST_WORKERS) --dist loadfile tests

# The Python versions deapnn supports. One truth: pyproject.toml's "Programming Language ::
# Python :: 3.X" classifiers (tests/test_python_versions.py checks requires-python, ruff's and
# mypy's target and the README against them). test-matrix runs make test on each of MATRIX_PYTHONS
# (default: all but the version .venv runs, which make test covers) in its own .venv<XY>, made from
# pyenv's interpreter and reused while up to date; a missing interpreter fails unless
# ALLOW_MISSING_PYTHONS=1 (.ci/test-matrix). E.g. make test-matrix MATRIX_PYTHONS="3.10 3.13"
PYTHONS ?= $(shell sed -n 's/^ *"Programming Language :: Python :: \(3\.[0-9][0-9]*\)",.*/\1/p' pyproject.toml)
MATRIX_PYTHONS ?= $(filter-out $(shell $(if $(wildcard $(PY)),$(PY),$(PYTHON)) -c \
	'import sys; print("%d.%d" % sys.version_info[:2])'),$(PYTHONS))
test-matrix:
	.ci/test-matrix $(MATRIX_PYTHONS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(MYPY_FILES)

$(DOCS_STAMP): $(STAMP) pyproject.toml setup.py
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
	@echo "API reference: docs/_build/html/index.html"

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	for b in $(filter-out bench/cuda_check.py,$(wildcard bench/*.py)); do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf runs .pytest_cache build *.egg-info docs/_build
