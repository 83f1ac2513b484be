#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser tests if it is missing. Browser
# downloads by test tools (`npx playwright install`) do not work here; the distribution
# package does.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
echo "Installing chromium (Debian package) for the end-to-end tests…"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
