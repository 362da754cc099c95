# Two commands do everything on a fresh clone (see README.md):
#   make book   set up .venv and build the rendered book in _build/html, executing every chapter
#   make test   set up .venv and run the unit tests and every chapter under nbval
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# CPU installs pin torch so pip takes the CPU wheel rather than several GB of CUDA packages.
TORCH ?= torch==2.13.0
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup book test unit notebooks bench model clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[render,book,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: setup
	$(VENV)/bin/jupyter-book build --all .
	@echo "open _build/html/index.html"

unit: setup
	$(PY) -m pytest tests

notebooks: setup
	$(PY) -m pytest --nbval-lax chapters

test: unit notebooks

bench: setup
	$(PY) -m hmr_core.bench smpl

model: setup
	$(PY) -m hmr_core.open_body_model build

clean:
	rm -rf _build .pytest_cache
