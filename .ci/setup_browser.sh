#!/usr/bin/env bash
# Installs Debian's Chromium for the browser (e2e) tests when it is missing.
# Idempotent; run as root. Does nothing when /usr/bin/chromium already exists.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  echo "setup_browser.sh: /usr/bin/chromium is missing and this is not root; skipping" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Without recommends: about half the packages. fonts-liberation
# is the one font headless pages need to render text (it also satisfies fontconfig's font need).
if [[ "${SLUICE_CI_APT_UPDATED:-}" != 1 ]]; then
  apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends chromium fonts-liberation
