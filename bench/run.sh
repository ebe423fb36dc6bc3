#!/bin/bash
# Engine benchmark on a B/16-shaped random checkpoint: clip-bench (ours, with the sgemm floor
# measured in the same run), then two peers on the same image tower and the same weights, right
# after: PyTorch (Debian's python3-torch) and ONNX Runtime (onnxruntime-node from npm, on the tower
# exported to ONNX by that torch). Prints JSON: clip-bench's object, one line per peer run, and a
# closing summary line (ours against each peer, ms per image, per thread count).
#
#   bench/run.sh [BUILD_DIR] [--iterations N] [--threads 1,2]
#
# The checkpoint (600 MB, random weights in exact HF layout) is generated once into
# $CLIPCLASSIFY_BENCH_MODEL (default /tmp/clipclassify-bench/b16). The ONNX export of its image
# tower and the npm install of onnxruntime-node are done once into $CLIPCLASSIFY_BENCH_ORT_CACHE
# (default: ort/ beside the checkpoint). A peer whose tools are missing (torch; node and npm) is
# skipped with a line on stderr. Set OPENBLAS_CORETYPE where OpenBLAS misdetects the CPU
# (clip-bench's "blas_hint" says so).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$1; shift; fi
model=${CLIPCLASSIFY_BENCH_MODEL:-/tmp/clipclassify-bench/b16}
[ -f "$model/model.safetensors" ] || /usr/bin/python3 tests/reference/make_checkpoint.py "$model" --preset b16 >/dev/null
threads=1,2
iterations=10
prev=""
for arg in "$@"; do
  [ "$prev" = "--threads" ] && threads=$arg
  [ "$prev" = "--iterations" ] && iterations=$arg
  prev=$arg
done
out=$(mktemp -d "${TMPDIR:-/tmp}/clipclassify-bench-run.XXXXXX")
trap 'rm -rf "$out"' EXIT

"$build/tools/clip-bench" --model "$model" "$@" | tee "$out/ours.json"

have_torch=0
/usr/bin/python3 -c 'import torch' 2>/dev/null && have_torch=1
if [ $have_torch = 1 ]; then
  /usr/bin/python3 bench/peer_torch.py "$model" --threads "$threads" --iterations "$iterations" | tee "$out/torch.json"
else
  echo "bench/run.sh: PyTorch peer skipped: /usr/bin/python3 has no torch (Debian: apt-get install python3-torch)" >&2
fi

# The ONNX Runtime peer. Every failure here is reported on stderr and skips the peer only.
ort_peer() {
  local cache=${CLIPCLASSIFY_BENCH_ORT_CACHE:-$(dirname "$model")/ort}
  local onnx=$cache/onnx node_dir=$cache/node skip="bench/run.sh: ONNX Runtime peer skipped:"
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "$skip node and npm are needed (Debian: apt-get install nodejs npm)" >&2
    return 0
  fi
  # Export once per checkpoint: the stamp names the checkpoint file (path, size, mtime) and the
  # export script, so a regenerated checkpoint or a changed script exports again.
  local weights stamp
  weights=$(realpath "$model/model.safetensors")
  stamp="$weights $(stat -c '%s %Y' "$weights") $(sha256sum < bench/ort-peer/export_onnx.py | cut -c1-16)"
  if [ ! -f "$onnx/clip_vision.onnx" ] || [ "$(cat "$onnx/stamp" 2>/dev/null)" != "$stamp" ]; then
    if [ $have_torch = 0 ]; then
      echo "$skip exporting the model to ONNX needs /usr/bin/python3 with torch (Debian: apt-get install python3-torch)" >&2
      return 0
    fi
    echo "bench/run.sh: exporting the image tower of $model to $onnx (once)" >&2
    rm -f "$onnx/stamp"
    if ! /usr/bin/python3 bench/ort-peer/export_onnx.py "$model" "$onnx" >&2; then
      echo "$skip the ONNX export failed" >&2
      return 0
    fi
    echo "$stamp" > "$onnx/stamp"
  fi
  # Install onnxruntime-node once (its CPU build ships inside the package; =skip skips the
  # optional GPU download of its install script).
  if ! cmp -s bench/ort-peer/package.json "$node_dir/package.json" \
     || [ ! -f "$node_dir/node_modules/onnxruntime-node/package.json" ]; then
    echo "bench/run.sh: installing onnxruntime-node into $node_dir (once)" >&2
    mkdir -p "$node_dir"
    cp bench/ort-peer/package.json "$node_dir/package.json"
    if ! (cd "$node_dir" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund >&2); then
      rm -f "$node_dir/package.json"
      echo "$skip npm install onnxruntime-node failed" >&2
      return 0
    fi
  fi
  local n
  for n in ${threads//,/ }; do
    NODE_PATH="$node_dir/node_modules" node bench/ort-peer/bench_ort.js "$onnx" "$n" "$iterations" \
      || echo "bench/run.sh: ONNX Runtime peer failed at $n threads" >&2
  done
}
ort_peer | tee "$out/ort.json"

/usr/bin/python3 bench/summary.py "$out/ours.json" "$out/torch.json" "$out/ort.json"
