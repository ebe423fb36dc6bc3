#!/bin/bash
# Classifies every sampled frame of a video (or image) file and prints the results, as fast as
# the CPU allows: mode=sync, so each analysed frame waits for its own result and nothing is
# skipped.
#
#   pipelines/file.sh FILE [LABELS] [INTERVAL]
#     LABELS    comma-separated (default "a person,a dog,a cat,a car,an empty room")
#     INTERVAL  analyse every Nth frame (default 10)
#
# SHOW=1 also displays the video with the labels drawn on it (needs a display). RAW=1 prints
# gst-launch's own message lines instead of the one-line summaries.
set -euo pipefail
source "$(dirname "$0")/_env.sh"

[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
file=$1
labels=$(launch_escape "${2:-a person,a dog,a cat,a car,an empty room}")
interval=${3:-10}
[ -r "$file" ] || { echo "Cannot read $file" >&2; exit 1; }
uri=$(/usr/bin/python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' "$file")

if [ "${SHOW:-0}" = 1 ]; then
  sink=(videoconvert ! autovideosink)
  overlay=true
else
  sink=(fakesink sync=false)
  overlay=false
fi

filter=show_results
[ "${RAW:-0}" = 1 ] && filter=cat

gst-launch-1.0 -m \
  uridecodebin uri="$uri" ! videoconvert \
  ! clipclassify mode=sync interval="$interval" labels="$labels" overlay="$overlay" \
  ! "${sink[@]}" \
  | $filter
