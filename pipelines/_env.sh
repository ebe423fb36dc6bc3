# Sourced by the pipelines/*.sh scripts: finds the clipclassify plugin and the model, and says
# plainly what to do when either is missing. Not meant to be run on its own.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Use the plugin built in this checkout (meson setup build && meson compile -C build) unless one
# is installed system-wide; CLIPCLASSIFY_BUILD_DIR picks another build directory.
build=${CLIPCLASSIFY_BUILD_DIR:-$root/build}
if [ -d "$build/gst" ]; then
  export GST_PLUGIN_PATH="$build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
fi
if ! gst-inspect-1.0 clipclassify >/dev/null 2>&1; then
  echo "The clipclassify GStreamer element is not found. Build it first:" >&2
  echo "  meson setup build && meson compile -C build     (in $root)" >&2
  echo "or set CLIPCLASSIFY_BUILD_DIR to your build directory." >&2
  exit 1
fi

# The element's own default, spelled out so the scripts can check it before starting.
model=${CLIPCLASSIFY_MODEL:-${XDG_DATA_HOME:-$HOME/.local/share}/clipclassify/models/clip-vit-base-patch16}
if [ ! -f "$model/model.safetensors" ]; then
  echo "No CLIP model in $model. Fetch it with:" >&2
  echo "  $root/scripts/download-model.sh" >&2
  echo "or point CLIPCLASSIFY_MODEL at a model directory." >&2
  exit 1
fi
export CLIPCLASSIFY_MODEL="$model"

# Prints the clipclassify results of `gst-launch-1.0 -m` one readable line each; every other
# line passes through unchanged.
show_results () {
  /usr/bin/python3 "$root/pipelines/show-results.py" "$@"
}

# gst-launch-1.0 parses property values itself and eats one level of backslashes: double them
# so the element receives the labels exactly as typed ("salt\, pepper" stays one label, as it
# would with g_object_set).
launch_escape () {
  printf '%s' "${1//\\/\\\\}"
}
