# Set-up and entry points. `make demo` installs everything and runs the whole loop on the virtual board;
# `make test` installs everything and runs the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
PYTEST_ARGS ?=

.PHONY: setup system-packages python-packages demo test test-fast clean

setup: system-packages python-packages

system-packages:
	@missing=""; \
	command -v arm-none-eabi-gcc >/dev/null || missing="yes"; \
	command -v qemu-system-arm >/dev/null || missing="yes"; \
	[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -f /usr/lib/arm-none-eabi/lib/libc.a ] || missing="yes"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	  else \
	    echo "tinydeploy needs the ARM toolchain and QEMU. Run:"; \
	    echo "  sudo apt-get install -y --no-install-recommends $(APT_PACKAGES)"; \
	    exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[convert,dev]'
	$(PY) -m pip install -q --no-deps "tf-keras~=$$($(PY) -c 'import tensorflow as tf; print(tf.__version__.rsplit(".", 1)[0])').0"
	touch $@

python-packages: $(VENV)/.installed

demo: setup
	$(PY) examples/sine_model.py build/demo/sine.keras build/demo/sine_calib.npy
	$(VENV)/bin/tinydeploy flash build/demo/sine.keras --calib build/demo/sine_calib.npy --board virtual \
		--out build/demo/sine-virtual

HIL_OUT := build/hil

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)
	$(PY) -m pytest hil/ --junitxml=$(HIL_OUT)/junit.xml --td-metrics=$(HIL_OUT)/metrics.txt --td-log-dir=$(HIL_OUT)/logs
	@grep -q 'name="td_latency_us_median"' $(HIL_OUT)/junit.xml || { echo "no latency metrics in $(HIL_OUT)/junit.xml"; exit 1; }

clean:
	rm -rf build .pytest_cache
