#!/usr/bin/env bash
# The lab deployment, exercised: installs Debian's docker.io (and starts its engine if none runs), makes a
# local Debian bookworm base image offline-capable (debootstrap from Debian's packages, docker import, then
# Debian's Python where the image expects it), builds the project's image from a wheelhouse
# (docker build --network host), validates docker/compose.yaml, and runs tests/test_docker_lab.py: the
# API and two workers as containers with host networking against this machine's PostgreSQL (a fresh
# database), one shared artifact volume. Leaves the image tagged nestml-registry:latest; removes its
# containers, volume and database.
#   scripts/docker-test.sh            (as root on Debian; scripts/setup.sh test first, or this runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "docker-test: $*"; }
[ -x .venv/bin/python ] || bash scripts/setup.sh test
start=$(date +%s)

bash scripts/apt-install.sh docker.io debootstrap docker-compose
if ! docker info >/dev/null 2>&1; then
    say "starting the Docker engine (log: /var/log/nestml-registry-dockerd.log)"
    (setsid dockerd >/var/log/nestml-registry-dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { say "the Docker engine did not start; see its log"; exit 1; }
fi

# the base: the official python:3.11-slim-bookworm needs an image registry; this builds a stand-in from Debian's
# packages (an image that exists already is kept: delete it to rebuild)
base=nestml-registry-python:bookworm
if ! docker image inspect "$base" >/dev/null 2>&1; then
    if ! docker image inspect nestml-registry-debian:bookworm >/dev/null 2>&1; then
        mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
                 | head -n 1)
        mirror=${mirror:-http://deb.debian.org/debian}
        rootfs=$(mktemp -d /tmp/nestml-registry-rootfs.XXXXXX)
        say "debootstrap bookworm from $mirror"
        debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
        tar -C "$rootfs" -c . | docker import - nestml-registry-debian:bookworm >/dev/null
        rm -rf "$rootfs"
    fi
    say "building $base"
    docker build -q --network host -t "$base" -f docker/base.Dockerfile docker >/dev/null
fi

say "wheelhouse (docker/wheels) and image nestml-registry:latest"
find docker/wheels -name '*.whl' -delete
wheel_log=$(mktemp)
if ! .venv/bin/python -m pip wheel -q --no-build-isolation . -w docker/wheels >"$wheel_log" 2>&1; then
    grep -v "^WARNING: Location" "$wheel_log" >&2
    say "pip wheel failed (above)"
    exit 1
fi
rm -f "$wheel_log"
docker build -q --network host --build-arg BASE="$base" -t nestml-registry:latest -f docker/Dockerfile . >/dev/null

say "validating docker/compose.yaml"
docker-compose -f docker/compose.yaml config -q

say "the lab topology (tests/test_docker_lab.py); image ready after $(( $(date +%s) - start )) s"
if [ -z "${NESTML_REGISTRY_TEST_POSTGRES_URL:-}" ]; then
    NESTML_REGISTRY_TEST_POSTGRES_URL=$(bash scripts/postgres.sh | tail -n 1)
    export NESTML_REGISTRY_TEST_POSTGRES_URL
fi
NESTML_REGISTRY_DOCKER_TEST=1 .venv/bin/python -m pytest -p no:cacheprovider tests/test_docker_lab.py "$@"
say "done in $(( $(date +%s) - start )) s"
