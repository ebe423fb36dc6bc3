#!/bin/bash
# Engine benchmark on a B/16-shaped random checkpoint: clip-bench (ours, with the sgemm floor
# measured in the same run) and, when Debian's python3-torch is installed, the same image tower in
# PyTorch on the same weights, right after. Prints JSON.
#
#   bench/run.sh [BUILD_DIR] [--iterations N] [--threads 1,2]
#
# The checkpoint (600 MB, random weights in exact HF layout) is generated once into
# $CLIPCLASSIFY_BENCH_MODEL (default /tmp/clipclassify-bench/b16). Set OPENBLAS_CORETYPE where
# OpenBLAS misdetects the CPU (clip-bench's "blas_hint" says so).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$1; shift; fi
model=${CLIPCLASSIFY_BENCH_MODEL:-/tmp/clipclassify-bench/b16}
[ -f "$model/model.safetensors" ] || /usr/bin/python3 tests/reference/make_checkpoint.py "$model" --preset b16 >/dev/null
"$build/tools/clip-bench" --model "$model" "$@"
threads=1,2
prev=""
for arg in "$@"; do [ "$prev" = "--threads" ] && threads=$arg; prev=$arg; done
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  /usr/bin/python3 bench/peer_torch.py "$model" --threads "${threads:-1,2}"
fi
