#!/usr/bin/env bash
# The lab deployment, exercised: installs Debian's docker.io and docker-compose (and starts the engine if
# none runs), makes a local Debian bookworm root offline (debootstrap from Debian's packages, docker
# import), and on it the base with Debian's Python and PostgreSQL 15 from Debian's package
# (docker/postgres; tagged by the hash of its files, reused while they stay the same), builds the
# project's image from a wheelhouse (docker build --network host), validates docker/compose.yaml, and
# runs tests/test_docker_lab.py (the API and two workers as containers with host networking against this
# machine's PostgreSQL, one shared artifact volume) and tests/test_compose_lab.py (docker/compose.yaml
# itself, up and down, on those images). Leaves the images; removes its containers, volumes and databases.
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

# the root: a Debian bookworm made by debootstrap, for the images below (kept: delete it to rebuild)
root=nestml-registry-debian:bookworm
need_root() {
    docker image inspect "$root" >/dev/null 2>&1 && return
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
             | head -n 1)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d /tmp/nestml-registry-rootfs.XXXXXX)
    say "debootstrap bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
    tar -C "$rootfs" -c . | docker import - "$root" >/dev/null
    rm -rf "$rootfs"
}

# the base: the official python:3.11-slim-bookworm needs an image registry; this builds a stand-in from Debian's
# packages (an image that exists already is kept: delete it to rebuild)
base=nestml-registry-python:bookworm
if ! docker image inspect "$base" >/dev/null 2>&1; then
    need_root
    say "building $base"
    docker build -q --network host --build-arg ROOT="$root" -t "$base" - <docker/base.Dockerfile >/dev/null
fi

# PostgreSQL for the compose file's db service (postgres:15-bookworm needs an image registry), tagged by its files
postgres=nestml-registry-postgres:15-$(cat docker/postgres/* | sha256sum | cut -c1-12)
if ! docker image inspect "$postgres" >/dev/null 2>&1; then
    need_root
    say "building $postgres"
    started=$(date +%s)
    docker build -q --network host --build-arg ROOT="$root" -t "$postgres" docker/postgres >/dev/null
    say "$postgres built in $(( $(date +%s) - started )) s"
fi
export NESTML_REGISTRY_POSTGRES_IMAGE=$postgres

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
POSTGRES_PASSWORD=validate docker-compose -f docker/compose.yaml config -q

say "the lab topology (tests/test_docker_lab.py); image ready after $(( $(date +%s) - start )) s"
if [ -z "${NESTML_REGISTRY_TEST_POSTGRES_URL:-}" ]; then
    NESTML_REGISTRY_TEST_POSTGRES_URL=$(bash scripts/postgres.sh | tail -n 1)
    export NESTML_REGISTRY_TEST_POSTGRES_URL
fi
NESTML_REGISTRY_DOCKER_TEST=1 .venv/bin/python -m pytest -p no:cacheprovider tests/test_docker_lab.py \
    tests/test_compose_lab.py "$@"
say "done in $(( $(date +%s) - start )) s"
