#!/usr/bin/env bash
# Install nestml-registry's systemd units for this checkout (after scripts/setup.sh): the API
# (nestml-registry.service) and compile workers (nestml-registry-worker@N.service), run as the unprivileged
# user nestml-registry with their state in /var/lib/nestml-registry and their settings in
# /etc/nestml-registry/env.
#   bash scripts/systemd-units.sh               install into /etc/systemd/system (as root), then:
#       systemctl enable --now nestml-registry nestml-registry-worker@1 nestml-registry-worker@2
#   bash scripts/systemd-units.sh DIR           only write the units, with this checkout's path, into DIR
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
dest="${1:-/etc/systemd/system}"
if [ ! -x .venv/bin/nestml-registry ]; then
    echo "no .venv/bin/nestml-registry here: run scripts/setup.sh first" >&2
    exit 2
fi
mkdir -p "$dest"
for unit in systemd/*.service; do
    sed "s|@ROOT@|$root|g" "$unit" > "$dest/$(basename "$unit")"
done
echo "wrote $(ls systemd/*.service | wc -l) units into $dest"
if [ $# -eq 0 ]; then
    if ! id nestml-registry >/dev/null 2>&1; then
        useradd --system --user-group --home-dir /var/lib/nestml-registry --no-create-home \
            --shell /usr/sbin/nologin nestml-registry
    fi
    mkdir -p /etc/nestml-registry
    if [ ! -e /etc/nestml-registry/env ]; then
        printf '%s\n' "# NESTML_REGISTRY_* settings of the API and its workers (docs/reference/settings.md)" \
            "# NESTML_REGISTRY_DATABASE_URL=postgresql+psycopg://registry@127.0.0.1:5432/registry" \
            "# NESTML_REGISTRY_HOST=0.0.0.0" "# NESTML_REGISTRY_ALLOWED_HOSTS=registry.lab,localhost" \
            > /etc/nestml-registry/env
        chmod 0640 /etc/nestml-registry/env
        chgrp nestml-registry /etc/nestml-registry/env
    fi
    systemctl daemon-reload 2>/dev/null || echo "systemd is not running here: the units take effect at its next start"
    echo "next: systemctl enable --now nestml-registry nestml-registry-worker@1"
fi
