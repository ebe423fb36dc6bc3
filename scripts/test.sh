#!/bin/sh
# Builds clipclassify in ./build (warnings are errors) and runs the whole test suite.
# Extra arguments go to `meson test` (e.g. --suite engine, or --no-suite slow).
set -eu
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
meson compile -C build
meson test -C build --print-errorlogs "$@"
