#!/bin/bash
# From a fresh Debian 12 to classifications on screen: installs the dependencies, builds, fetches
# the CLIP model (unless it is already there), then runs a real pipeline and prints what CLIP
# sees in a few GStreamer test pictures.
#
#   scripts/quickstart.sh
#
# Needs root or sudo for the packages, and access to huggingface.co for the model (about 600 MB;
# see scripts/download-model.sh for proxies, mirrors and copying the files by hand).
# Environment: CLIPCLASSIFY_MODEL (use this model directory; nothing is downloaded if it holds
# a model), CLIPCLASSIFY_SKIP_DEPS=1 (do not run apt-get), CLIPCLASSIFY_BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ -t 1 ]; then
  step () { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  step () { printf '\n== %s\n' "$*"; }
fi

# --- 1. dependencies -------------------------------------------------------------------------
if [ "${CLIPCLASSIFY_SKIP_DEPS:-0}" != 1 ]; then
  step "Installing build and runtime dependencies (apt-get)"
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "Run this as root, or install sudo, or install the packages listed in" >&2
    echo "scripts/install-deps.sh yourself and run again with CLIPCLASSIFY_SKIP_DEPS=1." >&2
    exit 1
  fi
  scripts/install-deps.sh
fi

# --- 2. build ----------------------------------------------------------------------------------
build=${CLIPCLASSIFY_BUILD_DIR:-build}
step "Building in $build/"
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build"

# --- 3. model ----------------------------------------------------------------------------------
default_model=${XDG_DATA_HOME:-$HOME/.local/share}/clipclassify/models/clip-vit-base-patch16
model=${CLIPCLASSIFY_MODEL:-$default_model}
if [ -n "${CLIPCLASSIFY_MODEL:-}" ] && [ -f "$model/model.safetensors" ]; then
  step "Using the model in $model (CLIPCLASSIFY_MODEL)"
else
  step "Fetching the CLIP model into $model"
  scripts/download-model.sh "$model"
fi
export CLIPCLASSIFY_MODEL="$model"

# --- 4. a real pipeline ------------------------------------------------------------------------
export GST_PLUGIN_PATH="$root/$build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
gst-inspect-1.0 clipclassify >/dev/null \
  || { echo "The clipclassify element did not load; see: GST_DEBUG=2 gst-inspect-1.0 clipclassify" >&2; exit 1; }

labels="television color bars,television static noise,a checkerboard,a white ball on a black background,a plain green screen"
step "Classifying GStreamer test pictures with CLIP"
echo "labels: $labels"
echo
for pattern in smpte snow checkers-8 ball green; do
  printf '%-11s -> ' "$pattern"
  # mode=sync: the one frame waits for its result, which is posted on the bus before EOS.
  gst-launch-1.0 -m \
    videotestsrc pattern="$pattern" num-buffers=1 ! video/x-raw,width=320,height=240 \
    ! videoconvert ! clipclassify mode=sync top-k=2 labels="$labels" ! fakesink \
    | /usr/bin/python3 pipelines/show-results.py --quiet --no-time
done

cat <<EOF

Done. Next:
  pipelines/webcam.sh "a person,a dog,an empty room"    live camera, labels drawn on the video
  pipelines/file.sh VIDEO "a cat,a dog"                 a video file, one line per result
  pipelines/README.md                                   RTSP cameras and servers, relabeling
  gst-inspect-1.0 clipclassify                          every property (GST_PLUGIN_PATH=$root/$build/gst)
EOF
