#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): 20 bf16 steps of each stage of sg3t-256 on one CUDA device,
# with step time, s/kimg, images/s and peak memory as JSON; fails loudly on NaN, dtype errors and
# snapshots that do not load back. Meant for a machine with one GPU and 10 minutes:
#   bash bench/gpu_check.sh [PHOTOS]     (default ../shared/photos; results also in $OUT/gpu_check.json)
# It uses the Python that holds a CUDA torch: $PYTHON, else the project's .venv, else python3.
# A device machine that sees only the repository needs the photos inside it: copy them into an
# ignored folder of the checkout (e.g. .photos/) and pass that. Extra arguments go to gpu_check.py
# (e.g. --resample dense to compare the two filter forms; --preset tiny tests this on a CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
photos=${1:-../shared/photos}
[ -d "$photos" ] || { echo "gpu_check: no photo folder at $photos (pass one as the first argument)" >&2; exit 2; }
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ] && .venv/bin/python -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
        python=.venv/bin/python
    else
        python=python3
    fi
fi
"$python" -c 'import torch, sys; print("gpu_check: torch", torch.__version__, "cuda", torch.cuda.is_available()); sys.exit(not torch.cuda.is_available())' \
    || { echo "gpu_check: no CUDA device visible to $python" >&2; exit 2; }
export PYTHONUNBUFFERED=1
exec "$python" bench/gpu_check.py --photos "$photos" "${@:2}"
