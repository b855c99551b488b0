#!/usr/bin/env sh
# Debian packages the tests need, installed only when missing (a no-op on a ready machine; run as
# root or with sudo):
#   postgresql  the history and warehouse tests start a throwaway cluster on 127.0.0.1
#   chromium    the real browser the report tests drive through Playwright (Playwright's own
#               browser download is not used: the tests launch /usr/bin/chromium)
set -eu
need=""
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1
then
    need="$need postgresql"
fi
command -v chromium >/dev/null 2>&1 || need="$need chromium"
[ -n "$need" ] || exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
