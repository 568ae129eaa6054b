# The two set-up commands of the README: `make repro` (the main job) and `make test`.
# Both create .venv and install the project into it first, on a fresh machine too.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# A GPU user picks the torch build for their CUDA here, e.g. make repro TORCH="torch==2.9.1 torchvision==0.24.1".
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: repro test

repro: $(STAMP)
	PATH="$(BIN):$$PATH" dvc repro

# Two workers with one torch thread each, a file per unit, in the order tests/conftest.py gives
# (xdist would reorder them by their number of tests): on two cores the suite runs in about 55% of
# the time one worker takes.
test: $(STAMP)
	PATH="$(BIN):$$PATH" python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q $(TORCH)
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps depth-anything-3==0.1.1
	touch $(STAMP)
