# The two commands of the README: `make docs` (build the documentation) and `make test` (run every check).
# Both create .venv on first use; nothing has to be installed by hand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv docs pdf test lint check-figures compat quant snapshots mutation system-deps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the browser and LaTeX tests use; installed only when missing, and only where we are root.
system-deps:
	@bash tools/system-deps.sh

docs: venv
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "The site is built: open docs/_build/html/index.html"

# The docs as a PDF, as Read the Docs builds its PDF download: the LaTeX builder, then latexmk with pdflatex.
# A character pdflatex has no glyph for stops it (docs/conf.py declares the ones the docs use).
pdf: venv system-deps
	$(PY) -m sphinx -W --keep-going -b latex docs docs/_build/latex
	$(MAKE) -C docs/_build/latex LATEXOPTS="-interaction=nonstopmode -halt-on-error"
	@echo "The PDF is built: docs/_build/latex/sphinx-modelvis.pdf"

lint: venv
	$(PY) -m ruff check src tests bench noxfile.py
	$(PY) -m ruff format --check src tests bench noxfile.py
	$(PY) -m mypy

# The README's figures (listed in docs/readme/figures.txt) must still be what the code draws.
check-figures: venv
	$(VENV)/bin/modelvis --check --manifest docs/readme/figures.txt

# The compatibility matrix (noxfile.py): the tests marked compat (the Sphinx and MkDocs tutorial builds, rendering)
# against the oldest, a middle and the newest supported Sphinx, docutils, MyST-Parser, MkDocs, rich and Pillow,
# each session in its own virtualenv under .nox/ (kept between runs).
compat: venv
	$(PY) -m nox --sessions oldest sphinx8 newest

# The quantization libraries' tests (torchao, bitsandbytes), in a virtualenv of their own under .nox/: the main one
# leaves them out, since with them `import peft` imports both and every figure's worker pays for it.
quant: venv
	$(PY) -m nox --sessions quant

test: venv system-deps lint check-figures pdf compat quant
	$(PY) -m pytest -n 2 --dist loadfile

# Mutation testing of the core modules against their fast tests ([tool.mutmut] in pyproject.toml lists both); not part
# of `make test`. Resumes where it stopped (state under mutants/); `make clean` starts it over. One thread per torch
# process, so two mutants at a time use two cores.
mutation: venv
	$(PY) -m pip install --quiet -c constraints.txt -e '.[mutation]'
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m mutmut run --max-children $(or $(MUTATION_JOBS),2)
	$(PY) -m mutmut results

# Rewrites the expected outputs under tests/snapshots/ from the current code; review the diff before committing.
snapshots: venv
	MODELVIS_UPDATE_SNAPSHOTS=1 $(PY) -m pytest -n 2 tests -k snapshot

clean:
	rm -rf docs/_build .pytest_cache .mypy_cache .ruff_cache .modelvis_cache .nox mutants
