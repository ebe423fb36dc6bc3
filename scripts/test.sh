#!/bin/sh
# Builds clipclassify in ./build (warnings are errors) and runs the whole test suite.
# Installs the Debian packages first if any is missing (scripts/install-deps.sh, root or sudo).
# Extra arguments go to `meson test` (e.g. --suite engine, or --no-suite slow).
#
#   scripts/test.sh --sanitize           the same in ./build-sanitize with AddressSanitizer +
#                                        UndefinedBehaviorSanitizer (gcc); every test but the
#                                        `slow` suite, element and Python tests included
#   scripts/test.sh --sanitize=thread    ThreadSanitizer (gcc, LLVM's OpenMP runtime with
#                                        Archer) in ./build-tsan: the engine's thread test and
#                                        the element tests
# A sanitizer report fails its test. Suppressions: tests/sanitizers/.
set -eu
cd "$(dirname "$0")/.."
mode=normal
case "${1:-}" in
  --sanitize|--sanitize=address) mode=address; shift ;;
  --sanitize=thread) mode=thread; shift ;;
  --sanitize=*) echo "test.sh: unknown sanitizer ${1#--sanitize=} (address or thread)" >&2; exit 2 ;;
esac
if ! command -v meson >/dev/null 2>&1 || ! [ -x /usr/bin/python3 ] \
   || ! pkg-config --exists json-glib-1.0 gstreamer-video-1.0 pangocairo libpng libjpeg 2>/dev/null \
   || ! /usr/bin/python3 -c 'import numpy, PIL, regex, gi' 2>/dev/null \
   || { [ "$mode" = thread ] && ! command -v clang >/dev/null 2>&1; }; then
  scripts/install-deps.sh
fi

case $mode in
normal)
  [ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
  meson compile -C build
  meson test -C build --print-errorlogs "$@"
  ;;
address)
  # -O1 keeps the run short and the reports exact; UBSan's float-cast-overflow is not in gcc's
  # -fsanitize=undefined; every UBSan report stops the program.
  flags='-O1 -fno-omit-frame-pointer -fsanitize=float-cast-overflow -fno-sanitize-recover=all'
  [ -f build-sanitize/build.ninja ] || meson setup build-sanitize -Dwerror=true \
    -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args="$flags" -Dc_link_args="$flags" >/dev/null
  meson compile -C build-sanitize
  meson test -C build-sanitize --print-errorlogs --no-suite slow --timeout-multiplier 4 "$@"
  ;;
thread)
  # gcc's ThreadSanitizer, with LLVM's OpenMP runtime in place of libgomp: libomp (whose GOMP_*
  # entry points serve gcc's OpenMP code) tells ThreadSanitizer about fork, join and barriers
  # through Archer (OMP_TOOL_LIBRARIES, set by tests/meson.build); libgomp tells it nothing,
  # and every team's work would be reported as a race. (clang 14's own shared ThreadSanitizer
  # runtime, which python3 would need preloaded, crashes at start.)
  llvmlib=$(dirname "$(dirname "$(clang -print-resource-dir)")")
  flags="-O1 -fno-omit-frame-pointer"
  [ -f build-tsan/build.ninja ] || meson setup build-tsan -Dwerror=true \
    -Dbuildtype=debug -Db_sanitize=thread -Db_lundef=false \
    -Dc_args="$flags" -Dc_link_args="$flags -L$llvmlib -Wl,-rpath,$llvmlib" >/dev/null
  meson compile -C build-tsan
  meson test -C build-tsan --print-errorlogs --timeout-multiplier 4 "$@" \
    threads overlay element element-python pipelines soak
  ;;
esac
