#!/usr/bin/env bash
# Make sure the Debian packages the tests use are present: PostgreSQL server binaries (the
# database-credential tests), buildah with mmdebstrap (the e2e image tests) and prometheus,
# which brings promtool (the alert-rule tests and the e2e monitoring test). Installs the
# missing ones when we are root on Debian; otherwise says how, and on CI fails.
set -euo pipefail

missing=()
have_postgres() {
    { [ -n "${PG_BIN:-}" ] && [ -x "${PG_BIN}/initdb" ]; } || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
have_postgres || missing+=(postgresql)
command -v buildah >/dev/null || missing+=(buildah)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (Debian packages) for the tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    # The postgresql package starts a cluster of its own; the tests run private ones.
    (command -v service >/dev/null && service postgresql stop >/dev/null 2>&1) || true
    # So does prometheus (where an init system runs it); the tests run their own on loopback.
    (command -v service >/dev/null && service prometheus stop >/dev/null 2>&1) || true
else
    echo "missing Debian packages for the tests: ${missing[*]} (sudo apt-get install -y ${missing[*]});" \
         "PostgreSQL may instead come from PG_BIN (its bin directory)" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
