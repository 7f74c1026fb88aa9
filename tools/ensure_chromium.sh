#!/usr/bin/env bash
# The HTML report's tests open it in a real headless Chromium (Debian's `chromium` package).
# Installs it when missing: as root, or through sudo; TRANSFER_RUNNER_CHROMIUM may name one.
set -euo pipefail
if [[ -n "${TRANSFER_RUNNER_CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1 \
    || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(id -u)" == 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "chromium is missing and neither root nor sudo can install it:" \
       "apt-get install chromium, or set TRANSFER_RUNNER_CHROMIUM" >&2
  exit 1
fi
echo "installing chromium (apt-get) for the HTML report's browser tests" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
