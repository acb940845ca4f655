#!/usr/bin/env bash
# Set up ganlab in a virtual environment (default .venv) on a fresh machine.
#
# torch: an importable torch is left alone. Otherwise, on a machine without an NVIDIA GPU the CPU
# build is installed (never the multi-GB CUDA build); with one, the default (CUDA) build. To bring
# your own torch, install it first, or set GANLAB_TORCH to the pip requirement you want
# (e.g. GANLAB_TORCH="torch==2.5.1"), or use GANLAB_PYTHON to install into an existing
# environment that has it.
set -euo pipefail
VENV=${1:-.venv}
TORCH_VERSION=${GANLAB_TORCH_VERSION:-2.13.0}

if [ -n "${GANLAB_PYTHON:-}" ]; then
  PY=$GANLAB_PYTHON
else
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  PY=$VENV/bin/python
fi

if "$PY" -c "import torch" 2>/dev/null; then
  echo "install: keeping torch $("$PY" -c 'import torch; print(torch.__version__)')"
elif [ -n "${GANLAB_TORCH:-}" ]; then
  "$PY" -m pip install -q "$GANLAB_TORCH"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "$PY" -m pip install -q "torch==$TORCH_VERSION"
else
  # The CPU build carries the local version label +cpu; it is found where pip is configured to
  # look (a local wheel folder, a mirror) or on PyTorch's CPU wheel index.
  "$PY" -m pip install -q "torch==$TORCH_VERSION+cpu" 2>/dev/null \
    || "$PY" -m pip install -q "torch==$TORCH_VERSION+cpu" \
         --extra-index-url "${GANLAB_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
fi

"$PY" -m pip install -q -e ".[dev]"
"$PY" -c "import torch, ganlab; print(f'install: ganlab {ganlab.__version__} with torch {torch.__version__} ready')"
