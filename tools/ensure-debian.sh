#!/usr/bin/env bash
# Installs the few Debian packages the project needs, only when they are missing.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing Debian packages: ${missing[*]}"
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"; } >/tmp/oml-apt.log 2>&1; then
  echo "setup: could not install ${missing[*]} (see /tmp/oml-apt.log); frontend browser tests need chromium" >&2
  exit 1
fi
