# Two commands do everything on a fresh clone (see README.md):
#   make book   set up .venv and build the rendered book in _build/html, executing every chapter
#   make test   set up .venv and run the unit tests, every chapter under nbval, and every chapter again
#               from the installed wheel in an empty folder (as Colab runs it)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# CPU installs pin torch so pip takes the CPU wheel rather than several GB of CUDA packages.
TORCH ?= torch==2.13.0
# Every other package's version comes from constraints.txt (refresh it with `make pins`); torch is not
# in it, so a GPU install (TORCH=torch) keeps its CUDA build.
CONSTRAINTS := constraints.txt
EXTRAS := render,book,test,pretrained
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup book test unit notebooks installed-test bench model pins book-url clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) "$(TORCH)"
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: setup
	$(VENV)/bin/jupyter-book build --all .
	@echo "open _build/html/index.html"

unit: setup
	$(PY) -m pytest tests

notebooks: setup
	$(PY) -m pytest --nbval-lax chapters

# The chapters as a Colab reader runs them: the wheel installed into a fresh environment, every chapter
# executed in an empty folder outside the checkout.
installed-test:
	TORCH="$(TORCH)" EXTRAS="$(EXTRAS)" bash .ci/installed_book.sh

test: unit notebooks installed-test

bench: setup
	$(PY) -m hmr_core.bench smpl

model: setup
	$(PY) -m hmr_core.open_body_model build

# Refresh constraints.txt: resolve everything afresh in a throw-away environment and freeze it (without
# torch and its CUDA packages, and without hmr_core itself).
pins:
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install --quiet "$(TORCH)"; \
	"$$tmp/venv/bin/python" -m pip install --quiet -e ".[$(EXTRAS)]"; \
	{ echo "# Versions that make, .ci/run and environment.yml install (pip install -c constraints.txt)."; \
	  echo "# Resolved with Python $$("$$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())') on $$(date -u +%F) by \`make pins\`; torch is not pinned here."; \
	  "$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable \
	    | grep -viE '^(torch|triton|pytorch-triton)==|^(nvidia|cuda)-|^hmr[-_]core\b'; } > "$$tmp/constraints.txt"; \
	mv "$$tmp/constraints.txt" $(CONSTRAINTS)
	@echo "wrote $(CONSTRAINTS); review with git diff $(CONSTRAINTS)"

# Write the repository URL of _config.yml into every chapter's install cell.
book-url: setup
	$(PY) .ci/book_url.py

clean:
	rm -rf _build .pytest_cache
