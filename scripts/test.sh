#!/usr/bin/env bash
# Install everything (Debian packages, .venv, NEST with MPI in .venv-mpi, a PostgreSQL server if none
# answers) and run the whole test suite: lint (ruff), type check (mypy), the documentation (Sphinx, warnings
# as errors), then pytest against real NEST,
# real compiles, real mpirun, SQLite and PostgreSQL, then the lab deployment in Docker (scripts/docker-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# NEST with MPI in .venv-mpi for the cluster tests (built once per version and options, then cached)
bash scripts/nest-mpi.sh test
if [ -z "${NESTML_REGISTRY_TEST_POSTGRES_URL:-}" ]; then
    NESTML_REGISTRY_TEST_POSTGRES_URL=$(bash scripts/postgres.sh | tail -n 1)
    export NESTML_REGISTRY_TEST_POSTGRES_URL
fi
# the whole suite: a PostgreSQL that does not answer fails its tests (pytest -m "not slow" alone skips them)
export NESTML_REGISTRY_TEST_POSTGRES_REQUIRED=1
# and the MPI tests fail without .venv-mpi (nest-mpi.sh above made it)
export NESTML_REGISTRY_TEST_MPI_REQUIRED=1
.venv/bin/ruff check .
bash scripts/typecheck.sh
bash scripts/docs.sh
.venv/bin/python -m pytest "$@"
# the lab deployment in Docker: the image built and run (NESTML_REGISTRY_SKIP_DOCKER=1 leaves it out)
if [ "${NESTML_REGISTRY_SKIP_DOCKER:-0}" != "1" ]; then
    bash scripts/docker-test.sh "$@"
fi
