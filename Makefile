# Set-up and entry points. `make demo` installs everything and runs the whole loop on the virtual board;
# `make test` installs everything and runs the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
# Debian's Chromium and its driver: the HTML report test opens the page in a real headless browser.
APT_TEST_PACKAGES := chromium chromium-driver
# The CPU build of PyTorch (PyPI's default build pulls CUDA, several GB) for the PyTorch conversion tests.
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=

.PHONY: setup system-packages python-packages demo test test-fast clean

setup: system-packages python-packages

system-packages:
	@missing=""; \
	command -v arm-none-eabi-gcc >/dev/null || missing="yes"; \
	command -v qemu-system-arm >/dev/null || missing="yes"; \
	[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -f /usr/lib/arm-none-eabi/lib/libc.a ] || missing="yes"; \
	command -v chromium >/dev/null || missing="yes"; \
	command -v chromedriver >/dev/null || missing="yes"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	      $(APT_PACKAGES) $(APT_TEST_PACKAGES); \
	  else \
	    echo "tinydeploy needs the ARM toolchain and QEMU (and Chromium for its tests). Run:"; \
	    echo "  sudo apt-get install -y --no-install-recommends $(APT_PACKAGES) $(APT_TEST_PACKAGES)"; \
	    exit 1; \
	  fi; \
	fi

# torch first, pinned to its CPU build; tf-keras (Keras 2: the LSTM conformance cases and onnx2tf) of TensorFlow's
# own version, without deps so it does not add `tensorflow` (a second, larger TensorFlow) over tensorflow-cpu.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[convert,dev,farm,onnx,torch]'
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
