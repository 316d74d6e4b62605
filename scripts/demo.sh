#!/usr/bin/env bash
# The demo, from nothing to a trained any-resolution model:  bash scripts/demo.sh [PHOTOS] [--quick]
#
# Curates PHOTOS (default ../shared/photos, kept at native resolution) through the Ray pipeline,
# inspects the dataset (info, size plot, contact sheet, card with attribution), trains the tiny
# GAN's stage 1 (whole canvases at R = 32) and stage 2 (patches at scales up to the photos'
# native sides), renders images at 1x, 2x, 4x and 8x R and a zoom, scores them (KID at R, and
# at 4R the any-resolution rendering against the R image upsampled), and writes the run report.
# About 15 minutes on 2 CPU cores, no GPU, no network beyond the package registries.
# --quick (or ANYRES_DEMO_QUICK=1): the same steps and files in about 3 minutes (the tests run it).
# Output: demo-out/ (or $ANYRES_DEMO_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."

photos=../shared/photos
quick=${ANYRES_DEMO_QUICK:-0}
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "demo: unknown option $arg (give --quick, or a folder of photos)" >&2; exit 2 ;;
    *) photos=$arg ;;
  esac
done
[ -d "$photos" ] || { echo "demo: no photo folder at $photos (pass one as the first argument)" >&2; exit 2; }

bash scripts/setup.sh
out=${ANYRES_DEMO_OUT:-demo-out}
bin=.venv/bin
if [ "$quick" = 1 ]; then
  kimg1=0.32 kimg2=0.16 tick=0.16 n=16 frames=6 zoom_to=256   # every step, every file: minutes
else
  kimg1=5 kimg2=2 tick=0.32 n=64 frames=48 zoom_to=1024      # photo-like colours and layouts
fi
# Tiny networks run fastest on one thread per process on 2 cores (docs/BENCHMARKS.md).
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
started=$SECONDS
step() {
  local t=$((SECONDS - started))
  printf '\n\033[1m== demo %s/8 (%dm%02ds): %s\033[0m\n' "$1" $((t / 60)) $((t % 60)) "$2"
}
# Start afresh; a folder given by ANYRES_DEMO_OUT is removed only if an earlier demo made it.
if [ "$out" != demo-out ] && [ -n "$(ls -A "$out" 2>/dev/null)" ] && [ ! -f "$out/.anyres-demo" ]; then
  echo "demo: $out exists and is not an earlier demo's output; move it away or set ANYRES_DEMO_OUT" >&2
  exit 2
fi
rm -rf "$out" && mkdir -p "$out" && touch "$out/.anyres-demo"
data=$out/photos run1=$out/stage1 run=$out/run

step 1 "curate $photos through the Ray pipeline (originals untouched, licences attached)"
attribution=()
[ "$photos" = ../shared/photos ] && attribution=(--attribution scripts/demo-photos.csv)
"$bin/anyres-curate" folder "$photos" --out "$data" --name demo-photos "${attribution[@]}"
"$bin/anyres-shards" verify "$data" --deep

step 2 "inspect the dataset: info, size plot, contact sheet, card and attribution, training's patches"
"$bin/anyres-shards" info "$data"
"$bin/anyres-shards" plot "$data" -o "$out/photos-sizes.png"
"$bin/anyres-shards" grid "$data" -o "$out/photos-grid.png" --n 15 --thumb 320
"$bin/anyres-shards" card "$data"
"$bin/anyres-train" preview --data "$data" --stream patch --n 36 --seed 0 --out "$out/preview"

step 3 "train stage 1: whole canvases at R = 32 ($kimg1 kimg)"
"$bin/anyres-train" train --data "$data" --out "$run1" --preset tiny --kimg "$kimg1" --tick-kimg "$tick"

step 4 "train stage 2: patches at S from 2R to the native sides, taught by stage 1 ($kimg2 kimg)"
"$bin/anyres-train" train --data "$data" --out "$run" --preset tiny --stage patch --teacher "$run1/checkpoint.pt" \
    --s-min 64 --kimg "$kimg2" --tick-kimg "$tick"

step 5 "generate: seeds 0-3 at 1x, 2x, 4x and 8x R, and a zoom"
for k in 1 2 4 8; do
  "$bin/anyres-generate" "$run/checkpoint.pt" --out "$run/generated/${k}x" --seeds 0-3 --size $((32 * k))
done
"$bin/anyres-generate" "$run/checkpoint.pt" --out "$run/generated" --zoom --seeds 0 --frame-size 64 \
    --zoom-to "$zoom_to" --frames "$frames" --fps 12

step 6 "score: KID at R, and at 4R the any-resolution rendering against the R image upsampled (KID, spectra)"
"$bin/anyres-eval" "$run/checkpoint.pt" --data "$data" --metrics kid -n "$n"
"$bin/anyres-eval" "$run/checkpoint.pt" --data "$data" \
    --metrics kid-patch,kid-patch-up,hf-patch,hf-patch-up,spectrum-patch,spectrum-patch-up --s-min 128 --s-max 128 -n "$n"

step 7 "write the run reports"
"$bin/anyres-train" report "$run1"
"$bin/anyres-train" report "$run"

step 8 "done in $(((SECONDS - started) / 60)) min"
cat <<EOF
demo: everything is in $out/
  the dataset        $data (verified; card: $data/CARD.md, attribution: $data/ATTRIBUTION.md)
  its plots          $out/photos-sizes.png, $out/photos-grid.png, $out/preview/contact_sheet.png
  stage 1            $run1 (report.html, samples-*.png, curves.png, checkpoint.pt)
  stage 2            $run (report.html, samples-*.png, curves.png, checkpoint.pt)
  images 1x to 8x    $run/generated/{1x,2x,4x,8x}/seed000*.png
  the zoom           $run/generated/zoom-seed0000.webp (frames in $run/generated/zoom-seed0000/)
  the scores         $run/metrics.jsonl (spectra at 4R: $run/spectrum.png)
open $run/report.html in a browser: it holds all of the above on one page, offline.
EOF
