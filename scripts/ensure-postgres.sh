#!/usr/bin/env bash
# Make sure PostgreSQL server binaries are present for the database-credential tests.
# Installs Debian's package when missing and we are root; otherwise says how.
set -euo pipefail

if [ -n "${PG_BIN:-}" ] && [ -x "${PG_BIN}/initdb" ]; then exit 0; fi
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then exit 0; fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL (Debian package postgresql) for the database tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    # The package starts a cluster of its own; the tests run private ones.
    (command -v service >/dev/null && service postgresql stop >/dev/null 2>&1) || true
else
    echo "PostgreSQL server binaries not found: install Debian's postgresql package" \
         "(sudo apt-get install -y postgresql) or set PG_BIN to their directory" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
