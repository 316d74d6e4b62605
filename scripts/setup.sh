#!/usr/bin/env bash
# Creates .venv with everything anyres needs, from nothing; a second run only checks.
# torch goes in first: the CPU build where there is no CUDA device, since a bare `torch`
# requirement pulls a multi-GB CUDA build. Set ANYRES_TORCH_INDEX to choose where pip finds
# it (e.g. https://download.pytorch.org/whl/cpu); by default pip's configured sources are used.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_version=${ANYRES_TORCH_VERSION:-2.13.0}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  index=()
  [ -n "${ANYRES_TORCH_INDEX:-}" ] && index=(--index-url "$ANYRES_TORCH_INDEX")
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: CUDA device found, installing torch"
    "${pip[@]}" install "torch>=2.2" "${index[@]}"
  else
    echo "setup: no CUDA device, installing the CPU build of torch $torch_version"
    "${pip[@]}" install "torch==$torch_version" "${index[@]}"
  fi
fi

# Editable install with the test tools; quiet, and a no-op when nothing changed.
"${pip[@]}" install -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither" || true
.venv/bin/python -c "import shards, curation, training, torch" || {
  echo "setup: the environment is incomplete (see the pip output above)" >&2
  exit 1
}
echo "setup: ready (.venv)"
