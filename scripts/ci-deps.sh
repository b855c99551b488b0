#!/usr/bin/env sh
# System packages the tests need: a PostgreSQL server (the history and warehouse tests start a
# throwaway cluster on 127.0.0.1). Installs only what is missing; a no-op on a ready machine.
set -eu
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
