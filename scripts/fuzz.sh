#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz/ with clang (AddressSanitizer + UndefinedBehavior-
# Sanitizer, errors fatal) into build-fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [--seconds N] [TARGET...] [-- LIBFUZZER_OPTION...]
#   scripts/fuzz.sh --build-only | --list
#
# Targets: safetensors config tokenizer tokenize image (default: all, one after the other, N
# seconds each; default 60, or $FUZZ_SECONDS). Each starts from its seed corpus
# (tests/fuzz/corpus/NAME, never written) with its dictionary (tests/fuzz/dict/NAME.dict) and
# keeps the inputs it finds in build-fuzz/corpus/NAME; a crashing, leaking or hanging input is
# saved in build-fuzz/crashes/NAME/ (reproduce: build-fuzz/tests/fuzz/fuzz-NAME FILE; make it a
# regression case by adding it to tests/fuzz/regressions/NAME/). One line per target reports
# runs, time, coverage and findings; the last line is "fuzz: N passed, N failed" (.ci/run reads
# it). Exit status 1 when a target found something, 77 when clang or libFuzzer is missing
# (scripts/install-deps.sh installs them).
set -eu
cd "$(dirname "$0")/.."

ALL_TARGETS="safetensors config tokenizer tokenize image"
seconds=${FUZZ_SECONDS:-60}
targets=""
build_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --seconds=*) seconds=${1#--seconds=}; shift ;;
    --build-only) build_only=1; shift ;;
    --list) echo "$ALL_TARGETS"; exit 0 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -eu/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets="$targets $1"; shift ;;
  esac
done
[ -n "$targets" ] || targets=$ALL_TARGETS

CC_FUZZ=${CC_FUZZ:-clang}
if ! command -v "$CC_FUZZ" >/dev/null 2>&1 \
   || ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){return 0;}' \
        | "$CC_FUZZ" -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null; then
  echo "fuzz.sh: $CC_FUZZ with libFuzzer and the sanitizers is missing (apt-get install clang libclang-rt-dev)" >&2
  exit 77
fi

if [ ! -f build-fuzz/build.ninja ]; then
  CC=$CC_FUZZ meson setup build-fuzz -Dfuzzing=true -Dgstreamer=disabled \
    -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all >/dev/null
fi
ninja -C build-fuzz $(for t in $targets; do printf 'tests/fuzz/fuzz-%s ' "$t"; done) >/dev/null
[ "$build_only" -eq 0 ] || exit 0

# A crash, a leak, an UBSan report, a GLib critical, an input slower than 10 s or using more
# than 2 GiB: each is a finding.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1
status=0
passed=0
failed=0
for t in $targets; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/crashes/$t"
  log="build-fuzz/fuzz-$t.log"
  before=$(find "build-fuzz/crashes/$t" -type f | wc -l)
  rc=0
  "build-fuzz/tests/fuzz/fuzz-$t" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
    -dict="tests/fuzz/dict/$t.dict" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="build-fuzz/crashes/$t/" -print_final_stats=1 "$@" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  last=$(sed -n '/^#[0-9]/p' "$log" | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
  found=$(( $(find "build-fuzz/crashes/$t" -type f | wc -l) - before ))
  if [ "$rc" -ne 0 ]; then
    status=1
    failed=$((failed + 1))
    echo "fuzz-$t: FAILED (exit $rc) after ${runs:-?} runs: see $log; inputs in build-fuzz/crashes/$t/"
    sed -n -E '/^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*CRITICAL|.*ERROR:)/p' "$log" | head -n 5
  else
    passed=$((passed + 1))
    echo "fuzz-$t: ${runs:-?} runs in ${took:-$seconds} s, coverage ${cov:-?} edges / ${ft:-?} features, corpus ${corp:-?} inputs, findings $found"
  fi
done
echo "fuzz: $passed passed, $failed failed"
exit $status
