#!/usr/bin/env bash
# Prepare this checkout: Debian packages + a Python venv in .venv.
#   scripts/setup.sh run    packages, and this checkout installed editable with the extras to build the
#                           default model and run the UI and the RTSP server: .[ui,serve,quantize] (default)
#   scripts/setup.sh test   the above plus the fleet and test-only deps: .[dev] (chromium, mosquitto, pytest...)
# Dependencies live in pyproject.toml only; the console scripts (yolovino, yolovino-quantize, yolovino-fleet)
# land in .venv/bin.
# Idempotent: the second run only checks dpkg and a hash stamp, and takes about a second.
set -euo pipefail

mode=${1:-run}
case "$mode" in
  run)  extras=ui,serve,quantize ;;   # the default model is built from a .pt, so the quantize extra is needed
  test) extras=dev ;;
  *) echo "usage: $0 [run|test]" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "setup[$mode]: $*"; }

# --- 1. Debian packages -------------------------------------------------------------------------
# ffmpeg: publish/probe test streams; GStreamer + python3-gi: the local RTSP test server.
# The app's built-in RTSP server: GStreamer's RTSP server + x264enc (plugins-ugly), and what pip needs to
# build PyGObject in the venv (libgirepository1.0-dev, libcairo2-dev, pkg-config).
apt_pkgs=(ffmpeg gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base
          gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-tools
          libgirepository1.0-dev libcairo2-dev pkg-config)
# test only: headless browser for the Playwright UI tests; a real MQTT broker for the event tests
if [ "$mode" = test ]; then apt_pkgs+=(chromium mosquitto); fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${apt_pkgs[@]}"; do
    [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" == ii* ]] || missing+=("$p")
  done
else
  say "dpkg-query not found (not Debian/Ubuntu?): install the equivalents of: ${apt_pkgs[*]}"
fi

if [ ${#missing[@]} -eq 0 ]; then
  say "apt packages: all present"
elif [ "$(id -u)" -eq 0 ]; then
  say "apt packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  say "WARNING: missing Debian packages: ${missing[*]}"
  say "  install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  say "  (continuing; features and tests that need them will not work or will be skipped)"
fi

# --- 2. Python venv -----------------------------------------------------------------------------
if command -v python3.11 >/dev/null 2>&1; then py=python3.11; else py=python3; fi
# The local torch/torchvision wheels exist only for Python 3.11.
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $py ($("$py" --version 2>&1))"
  "$py" -m venv .venv
fi
"$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
  say "WARNING: $py is not Python 3.11; torch wheels may not be available for it"

# Stamp = hash of pyproject.toml's [build-system] and [project*] tables (dependencies, extras, scripts) + Python.
hash=$( { sed -n '1,/^\[tool\./p' pyproject.toml; .venv/bin/python --version 2>&1; } | sha256sum | cut -d' ' -f1)
up_to_date() { [ -f ".venv/.stamp-$1" ] && [ "$(cat ".venv/.stamp-$1")" = "$hash" ]; }

# The dev extra includes the run extras, so a current test stamp also covers run.
if up_to_date "$mode" || { [ "$mode" = run ] && up_to_date test; }; then
  say "venv: up to date (.venv, .[$extras])"
else
  say "venv: pip install -e '.[$extras]' (first time: several minutes)"
  start=$SECONDS
  .venv/bin/python -m pip install --quiet --progress-bar off -e ".[$extras]"
  echo "$hash" > ".venv/.stamp-$mode"
  say "venv: done in $((SECONDS - start)) s"
fi
