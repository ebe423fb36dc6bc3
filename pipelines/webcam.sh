#!/bin/bash
# Live zero-shot classification of a webcam, shown in a window with the top labels drawn on it,
# the results printed in the terminal.
#
#   pipelines/webcam.sh [LABELS] [DEVICE]
#     LABELS  comma-separated (default "a person,a dog,a cat,an empty room")
#     DEVICE  V4L2 device (default /dev/video0)
#
# Ctrl-C stops. Needs a display (autovideosink); on a headless machine use file.sh instead.
set -euo pipefail
source "$(dirname "$0")/_env.sh"

labels=$(launch_escape "${1:-a person,a dog,a cat,an empty room}")
device=${2:-/dev/video0}
[ -e "$device" ] || { echo "No camera at $device (pass another device as the second argument)" >&2; exit 1; }

gst-launch-1.0 -e -m \
  v4l2src device="$device" ! videoconvert \
  ! clipclassify labels="$labels" overlay=true \
  ! videoconvert ! autovideosink \
  | show_results
