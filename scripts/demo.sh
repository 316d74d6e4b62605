#!/usr/bin/env bash
# The demo, from nothing: stores the real photos in ../shared/photos untouched as a dataset
# (serially with their licences, and through the Ray curation pipeline), inspects, verifies
# and plots it, cuts its high-resolution subset, previews the scale-aware patches that
# training sees, and trains the tiny GAN for a few hundred images. Output: demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
photos=${1:-../shared/photos}
out=demo-out
shards=.venv/bin/anyres-shards
[ -d "$photos" ] || { echo "demo: no photo folder at $photos (pass one as the first argument)" >&2; exit 2; }
rm -rf "$out" && mkdir -p "$out"

set -x
attribution=()
[ "$photos" = ../shared/photos ] && attribution=(--attribution scripts/demo-photos.csv)
"$shards" pack "$photos" "$out/photos" --shard-size 8MB --name demo-photos "${attribution[@]}"
"$shards" info "$out/photos"
.venv/bin/anyres-curate folder "$photos" --out "$out/curated" --min-side 1024
"$shards" verify "$out/curated" --deep
root=$("$shards" info "$out/photos" --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["root_hash"])')
"$shards" verify "$out/photos" --deep --expect "$root"   # pinned: exactly the dataset announced
"$shards" ls "$out/photos" --limit 5
"$shards" plot "$out/photos" -o "$out/photos-sizes.png"
"$shards" grid "$out/photos" -o "$out/photos-grid.png" --n 15 --thumb 320
"$shards" subset "$out/photos" "$out/photos-2k" --min-side 2000 --shard-size 16MB
"$shards" info "$out/photos-2k"
"$shards" show "$out/photos-2k" "$("$shards" ls "$out/photos-2k" --limit 1 | cut -f1)" -o "$out"
.venv/bin/anyres-train preview --data "$out/photos" --stream patch --n 36 --seed 0 --out "$out/preview"
OMP_NUM_THREADS=1 .venv/bin/anyres-train train --data "$out/photos" --out "$out/run" --preset tiny \
    --kimg 0.32 --tick-kimg 0.16
set +x
echo "demo: done; look at $out/photos-sizes.png, $out/photos-grid.png, $out/preview/contact_sheet.png"
echo "      and the first minute of GAN training in $out/run (curves.png, samples-*.png)"
