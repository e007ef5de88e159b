#!/usr/bin/env bash
# Install everything nestml-registry needs on a Debian machine (run as root, or with sudo rights):
# the C++ toolchain NESTML's generated code is compiled with, bubblewrap and an unprivileged user
# (nestml-build) for the build sandbox, and a virtual environment in .venv with the project and its
# Python dependencies (NEST 3.10 and NESTML 9 from PyPI).
#   scripts/setup.sh          runtime only
#   scripts/setup.sh test     plus the test tools
#   scripts/setup.sh mpi      plus NEST built with MPI in .venv-mpi, a second toolchain (scripts/nest-mpi.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

apt_packages=(cmake g++ make libboost-dev libgsl-dev libltdl-dev ccache python3-venv python3-dev bubblewrap
              util-linux)
# the fault tests run PostgreSQL servers of their own (which they stop and start) with Debian's binaries
[ "$extra" = "test" ] && apt_packages+=(postgresql)
# the web pages' tests drive a real headless browser (Debian's chromium and its chromedriver)
[ "$extra" = "test" ] && apt_packages+=(chromium chromium-driver fonts-dejavu-core)
# the systemd units are checked with systemd's own systemd-analyze; the reverse proxy example runs in nginx
[ "$extra" = "test" ] && apt_packages+=(systemd nginx-light)
# the documentation's pictures (Sphinx's graphviz extension runs dot)
[ "$extra" = "test" ] && apt_packages+=(graphviz)
bash scripts/apt-install.sh "${apt_packages[@]}"

# build steps never run as root: a service started as root switches them to this user
sandbox_user="${NESTML_REGISTRY_SANDBOX_USER:-nestml-build}"
if ! id "$sandbox_user" >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    echo "creating the build sandbox user $sandbox_user"
    $sudo_cmd useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$sandbox_user"
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# setuptools 77 or newer builds this project (pyproject.toml): also what `pip wheel --no-build-isolation`
# needs for the air-gapped wheelhouse (docs/guides/lab-admin.md)
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=77"
if [ "$extra" = "test" ]; then
    .venv/bin/python -m pip install -q -e ".[test]"
else
    .venv/bin/python -m pip install -q -e .
fi
echo "ready: $(pwd)/.venv/bin/nestml-registry"
if [ "$extra" = "mpi" ]; then
    bash scripts/nest-mpi.sh
fi
