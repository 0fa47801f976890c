# Two commands, each working on a fresh machine: `make train` (the main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: train test lint bench mutate clean notebooks

$(BIN)/activate: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(BIN)/activate

train: $(BIN)/activate
	$(BIN)/python -m rnn_manual train

lint: $(BIN)/activate
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -W error -m pytest -n auto --dist worksteal

# The notebooks (notebooks/*.ipynb), written anew from docs/walkthrough.md and exercises/*.py;
# tests/test_notebooks.py fails while a committed one differs from what its source makes now.
notebooks: $(BIN)/activate
	$(BIN)/python -m notebooks

bench: $(BIN)/activate
	$(BIN)/python -m benchmarks

# Mutation testing of the math and the training rules ([tool.mutmut] in pyproject.toml):
# slow, so not part of `make test`. Starts afresh in mutants/ (mutmut's copy of the project,
# with its log in mutants/run.log), runs two workers of one BLAS and OpenMP thread each,
# then prints the score per module and the survivors not listed in tests/mutants_equivalent.md.
mutate: $(BIN)/activate
	rm -rf mutants && mkdir mutants
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		$(BIN)/mutmut run --max-children 2 > mutants/run.log 2>&1 || (tail -40 mutants/run.log; false)
	$(BIN)/python tests/mutation_score.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis mutants
