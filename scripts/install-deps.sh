#!/bin/sh
# Installs what clipclassify needs to build, test and run on Debian 12 (run as root, or with sudo).
# clang, its sanitizer/libFuzzer runtimes and LLVM's OpenMP: scripts/fuzz.sh and
# scripts/test.sh --sanitize=thread (the gcc build and --sanitize need only build-essential), from
# Debian's default LLVM (14 on Debian 12, 19 on Debian 13).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential meson ninja-build pkg-config ca-certificates curl \
  libglib2.0-dev libjson-glib-dev libopenblas-openmp-dev \
  libpng-dev libjpeg-dev \
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
  libpango1.0-dev libcairo2-dev fonts-dejavu-core \
  python3 python3-numpy python3-pil python3-regex python3-gi python3-gst-1.0 \
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
  clang libclang-rt-dev libomp-dev \
  >/dev/null
