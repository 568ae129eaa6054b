#!/usr/bin/env bash
# GPU check (issue 18): on one H100/H200, under 8 minutes, nothing downloaded. Runs the gsplat
# parity test the CPU skips, then benchmarks/gpu_check.py: a bf16 rollout + update round of a random
# full-size Wan 2.1 1.3B (on_policy_ratio_deviation, seconds and peak memory per stage, MFU of the
# transformer forward) and a DA3-GIANT-architecture reconstruct of one of its videos.
#   benchmarks/gpu_check.sh [--sizes 81x480x832,49x480x832]    (JSON to $OUT/gpu-check.json, OUT=. by default)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
echo "== gsplat's CUDA rasteriser against the pure-torch one (tests/test_raster.py)"
parity=0
"$PY" -m pytest -q -p no:xdist -p no:cacheprovider tests/test_raster.py -k gsplat -rs || parity=$?
echo "== Wan 2.1 1.3B round (random weights, bf16), transformer MFU, DA3-GIANT reconstruct"
"$PY" benchmarks/gpu_check.py --out "${OUT:-.}/gpu-check.json" "$@"
if [ "$parity" -ne 0 ]; then echo "gsplat parity test FAILED (exit $parity)"; exit "$parity"; fi
