#!/usr/bin/env bash
# Debian packages the tests need, installed once (idempotent; run as root or with sudo).
#   chromium: the real browser the report tests drive through Playwright (Playwright's own
#             browser download is not used: tests launch /usr/bin/chromium)
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ((${#need[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
