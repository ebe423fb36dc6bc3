#!/bin/bash
# Live classification of an RTSP camera (any codec decodebin can decode), shown with the top
# labels drawn on the picture and printed in the terminal.
#
#   pipelines/rtsp-camera.sh URL [LABELS]
#     URL     e.g. rtsp://user:password@192.168.1.20:554/stream1
#     LABELS  comma-separated (default "a person,a car,a bicycle,an empty street")
#
# HEADLESS=1 prints the results without opening a window. LATENCY sets the jitter buffer in ms
# (default 200). mode=async: video is never held back by inference; frames that arrive while
# the model is busy are passed through unanalysed (and counted).
set -euo pipefail
source "$(dirname "$0")/_env.sh"

[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
url=$1
labels=$(launch_escape "${2:-a person,a car,a bicycle,an empty street}")

if [ "${HEADLESS:-0}" = 1 ]; then
  sink=(fakesink sync=true)
else
  sink=(videoconvert ! autovideosink sync=false)
fi

gst-launch-1.0 -e -m \
  rtspsrc location="$url" latency="${LATENCY:-200}" ! decodebin ! videoconvert \
  ! clipclassify labels="$labels" overlay=true \
  ! "${sink[@]}" \
  | show_results
