# Two entry points; each creates .venv on first use and installs the project into it.
#   make demo   run the main job on an embedded dataset (digits, offline)
#   make test   run the full test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deapnn-installed

.PHONY: demo test bench clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo
	$(VENV)/bin/deapnn train --dataset digits --model cnn --epochs 20 --seed 0 --out runs/demo/train

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf runs .pytest_cache build *.egg-info
