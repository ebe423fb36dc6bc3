#!/bin/sh
# Builds clipclassify in ./build (warnings are errors) and runs the whole test suite.
# Installs the Debian packages first if any is missing (scripts/install-deps.sh, root or sudo).
# Extra arguments go to `meson test` (e.g. --suite engine, or --no-suite slow).
set -eu
cd "$(dirname "$0")/.."
if ! command -v meson >/dev/null 2>&1 || ! [ -x /usr/bin/python3 ] \
   || ! pkg-config --exists json-glib-1.0 gstreamer-video-1.0 pangocairo libpng libjpeg 2>/dev/null \
   || ! /usr/bin/python3 -c 'import numpy, PIL, regex, gi' 2>/dev/null; then
  scripts/install-deps.sh
fi
[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
meson compile -C build
meson test -C build --print-errorlogs "$@"
