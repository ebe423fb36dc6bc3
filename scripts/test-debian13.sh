#!/bin/bash
# Builds clipclassify and runs its whole test suite in a fresh Debian 13 (trixie, GStreamer 1.26)
# root made with debootstrap: the build with GstAnalytics (ODMtd regions, ClsMtd results, the
# tests that read them back from C and Python and the pipeline through objectdetectionoverlay),
# which Debian 12's GStreamer 1.22 cannot have. CI keeps running Debian 12 (.ci/run).
#
#   sudo scripts/test-debian13.sh [MESON TEST ARGS]     (default: --no-suite slow)
#
# Tests what is committed (HEAD); CLIP_DEBIAN13_WORKTREE=1 tests the working tree instead
# (tracked and untracked files, less what git ignores). Needs root (debootstrap, chroot, mounts)
# and Debian's apt mirror, read from this machine's apt sources. The debootstrapped base is kept
# as a tarball (CLIP_DEBIAN13_CACHE, default /var/tmp/clipclassify-trixie-base.tar) and every
# run starts from a fresh copy of it, removed afterwards (CLIP_DEBIAN13_KEEP=1 keeps it). The
# whole log is written to CLIP_DEBIAN13_LOG (default /var/tmp/clipclassify-trixie.log).
set -euo pipefail

cd "$(dirname "$0")/.."
project=$(pwd)
cache=${CLIP_DEBIAN13_CACHE:-/var/tmp/clipclassify-trixie-base.tar}
log=${CLIP_DEBIAN13_LOG:-/var/tmp/clipclassify-trixie.log}
test_args=("$@")
[ ${#test_args[@]} -gt 0 ] || test_args=(--no-suite slow)

[ "$(id -u)" -eq 0 ] || { echo "test-debian13.sh: run as root (debootstrap, chroot)" >&2; exit 2; }

# The mirror this machine's apt uses (deb822 sources first, then the one-line format).
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
         || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' \
                             /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

if ! command -v debootstrap >/dev/null; then
  echo "== installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# --- the base root, made once ----------------------------------------------------------------
if [ ! -f "$cache" ]; then
  base=$(mktemp -d "${TMPDIR:-/var/tmp}/clipclassify-trixie-base.XXXXXX")
  echo "== debootstrap trixie from $mirror (once; kept in $cache)"
  keyring=()
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] \
    && keyring=(--keyring /usr/share/keyrings/debian-archive-keyring.gpg)
  if ! debootstrap --variant=minbase "${keyring[@]}" --include=ca-certificates trixie "$base" \
       "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log"
    rm -rf "$base"
    echo "test-debian13.sh: debootstrap failed (log: $log)" >&2
    exit 1
  fi
  rm -f "$base/etc/apt/sources.list"
  cat >"$base/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  tar -C "$base" -cf "$cache.partial" . && mv "$cache.partial" "$cache"
  rm -rf "$base"
fi

# --- a fresh root for this run ---------------------------------------------------------------
root=$(mktemp -d "${TMPDIR:-/var/tmp}/clipclassify-trixie.XXXXXX")
cleanup() {
  for m in dev sys proc; do
    mountpoint -q "$root/$m" && umount -R -l "$root/$m"
  done
  if [ "${CLIP_DEBIAN13_KEEP:-0}" = 1 ]; then
    echo "== kept $root"
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT
tar -C "$root" -xf "$cache"
mkdir -p "$root/root/project"
if [ "${CLIP_DEBIAN13_WORKTREE:-0}" = 1 ]; then
  git ls-files -z -co --exclude-standard | tar -C "$project" --null -T - -cf - \
    | tar -C "$root/root/project" -xf -
  echo "== testing the working tree of $project"
else
  git archive HEAD | tar -C "$root/root/project" -xf -
  echo "== testing $(git log -1 --format='%h %s' HEAD)"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"

# Debian 12's dependencies (scripts/install-deps.sh works on 13 too), plus the analytics
# library and objectdetectionoverlay (gst-plugins-bad) and their introspection data. The
# analytics build is required (-Danalytics=enabled): a build that quietly left it out would
# test nothing new.
inner=$(cat <<EOF
set -eu
cd /root/project
echo "== dependencies"
scripts/install-deps.sh
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  libgstreamer-plugins-bad1.0-dev gstreamer1.0-plugins-bad gir1.2-gst-plugins-bad-1.0 >/dev/null
echo "== GStreamer \$(pkg-config --modversion gstreamer-1.0), analytics \$(pkg-config --modversion gstreamer-analytics-1.0)"
meson setup build -Dwerror=true -Danalytics=enabled
meson compile -C build
meson test -C build --print-errorlogs ${test_args[*]}
EOF
)
echo "== building and testing in Debian 13 (log: $log)"
set +e
chroot "$root" /bin/bash -lc "$inner" >"$log" 2>&1
rc=$?
set -e
grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout):" "$log" \
  || tail -n 30 "$log"
echo "test-debian13.sh: Debian 13 $( [ $rc -eq 0 ] && echo passed || echo "FAILED (rc=$rc)" )"
exit $rc
