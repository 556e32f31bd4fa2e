#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the approvals web-page test
# (tests/tests/approvals_ui.rs), only when they are missing. Needs root and
# Debian's package registry (both present on CI machines).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "chromium and chromedriver present: $(/usr/bin/chromium --version 2>/dev/null || true)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version
