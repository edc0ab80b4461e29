#!/usr/bin/env bash
# Debian's headless Chromium, for the browser test of `hicra report`'s HTML page. Idempotent; where
# apt-get cannot be used (no root, no sudo, not Debian) it says so and the browser test is skipped,
# unless HICRA_REQUIRE_BROWSER=1 (as in CI), which makes that test fail instead.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "install_chromium: not root and no sudo: skipping (the browser test will be skipped)"; exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no apt-get: install chromium yourself for the browser test"; exit 0
fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
