#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 for the test suite, and print the URL
# the tests should use as their last line. Where one already answers with trust auth (the
# machines here), that is used; otherwise Debian's postgresql package is installed and started,
# and a password-authenticated superuser for the tests is made.
set -euo pipefail
host=127.0.0.1
port=5432
trust_url="postgresql+psycopg://postgres@${host}:${port}/postgres"
test_url="postgresql+psycopg://nestml_test:nestml_test@${host}:${port}/postgres"

answers() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }
can_login() { PGPASSWORD="${2:-}" psql -h "$host" -p "$port" -U "$1" -d postgres -tAc "select 1" >/dev/null 2>&1; }

if ! command -v pg_isready >/dev/null || ! answers; then
    command -v pg_ctlcluster >/dev/null || bash "$(dirname "$0")/apt-install.sh" postgresql
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main start
    for _ in $(seq 1 30); do answers && break; sleep 1; done
fi
answers || { echo "PostgreSQL does not answer on ${host}:${port}" >&2; exit 1; }

if can_login postgres; then
    echo "$trust_url"
elif can_login nestml_test nestml_test; then
    echo "$test_url"
else
    su postgres -c "psql -q -c \"CREATE ROLE nestml_test LOGIN SUPERUSER PASSWORD 'nestml_test'\"" >&2
    echo "$test_url"
fi
