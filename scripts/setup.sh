#!/usr/bin/env bash
# Installs the Debian packages macemu builds and tests with. Safe to run again.
#   nasm            openh264's assembly (2-2.5x faster H.264 encode)
#   cmake           opus and libsamplerate
#   clang           bindgen for the media -sys crates
#   gcc-m68k-linux-gnu  rebuilding and checking the demo ROM
#   chromium, iproute2, python3, curl   end-to-end browser tests (network namespace + DevTools)
#   ffmpeg          decoding our stream in tests
#   gstreamer1.0-*, python3-gi, gir1.2-*   a non-browser WHEP player in tests (webrtcbin, avdec_h264)
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential pkg-config cmake nasm clang libclang-dev \
  gcc-m68k-linux-gnu binutils-m68k-linux-gnu \
  chromium iproute2 python3 curl ffmpeg ca-certificates \
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-nice \
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-bad-1.0
if command -v rustup >/dev/null; then rustup component add rustfmt clippy >/dev/null 2>&1 || true; fi
