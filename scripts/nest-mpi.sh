#!/usr/bin/env bash
# NEST with MPI, as a second toolchain: Debian's OpenMPI, NEST built from its PyPI source distribution
# with -Dwith-mpi=ON (and the wheel's GSL, Boost and OpenMP), installed with mpi4py, BMTK and this
# project into .venv-mpi. Called by `scripts/setup.sh mpi`.
#
# Building NEST takes long on a small machine (docs/guides/cluster.md), so the built wheel is kept in
# $NESTML_REGISTRY_BUILD_CACHE (default /var/cache/nestml-registry) under a key made of everything it
# was built from (source sha256, CMake options, Python, compiler and OpenMPI versions) and reused when
# present: a second clone, or a new .venv-mpi, installs it in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

nest_version=3.10.0
nest_sdist_sha256=8fbd7df4a3e941784d4b1d5825ded234bdc915238faac0982c62e4cb80134d52
nest_sdist_url="https://files.pythonhosted.org/packages/0c/f0/32302457ea87020dd295cbf8049f41ec21ba4ffafbe354d6683974434049/nest_simulator-${nest_version}.tar.gz"
# NEST's built-in models: all 136 take most of the build, so by default the ones BMTK PointNet networks use
# (its generators, recorders and synapses, and the common point neurons); NESTML models come from the
# registry. NEST_MPI_MODELS=full (or a NEST modelset name, or a ';'-separated list) builds others.
default_models="iaf_psc_alpha;iaf_psc_exp;iaf_psc_delta;iaf_cond_alpha;iaf_cond_exp;izhikevich;aeif_cond_exp"
default_models+=";parrot_neuron;spike_generator;poisson_generator;dc_generator;step_current_generator"
default_models+=";noise_generator;spike_recorder;multimeter;weight_recorder;static_synapse;stdp_synapse"
default_models+=";tsodyks_synapse;tsodyks2_synapse"
models="${NEST_MPI_MODELS:-$default_models}"
if [[ "$models" == *";"* ]]; then model_option="with-models=$models"; else model_option="with-modelset=$models"; fi
# the wheel's own options (pyproject.toml) plus MPI
cmake_options=(with-mpi=ON with-optimize=-O2 with-python=ON with-boost=ON with-gsl=ON with-openmp=ON
               with-warning=OFF with-hdf5=OFF "$model_option")
cache_root="${NESTML_REGISTRY_BUILD_CACHE:-/var/cache/nestml-registry}"

apt_packages=(openmpi-bin libopenmpi-dev cmake g++ make libboost-dev libgsl-dev libltdl-dev python3-venv python3-dev)
bash scripts/apt-install.sh "${apt_packages[@]}"

python="${PYTHON:-python3}"
if [ ! -x .venv-mpi/bin/python ]; then
    "$python" -m venv .venv-mpi
fi
.venv-mpi/bin/python -m pip install -q --upgrade pip

py_tag=$(.venv-mpi/bin/python -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
key_text="nest=${nest_version} sdist=${nest_sdist_sha256} options=${cmake_options[*]} python=${py_tag}
cxx=$(g++ -dumpfullversion) mpi=$(dpkg-query -W -f='${Version}' libopenmpi-dev) arch=$(uname -m)"
key=$(printf '%s' "$key_text" | sha256sum | cut -c1-16)
wheel_dir="${cache_root}/nest-mpi/${nest_version}-${key}"
wheel=$(ls "$wheel_dir"/nest_simulator-*.whl 2>/dev/null | head -n 1 || true)

if [ -z "$wheel" ]; then
    echo "building NEST ${nest_version} with MPI into ${wheel_dir} (long: see docs/guides/cluster.md)"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    curl -fsSL --retry 3 -o "$work/nest.tar.gz" "$nest_sdist_url"
    echo "${nest_sdist_sha256}  $work/nest.tar.gz" | sha256sum -c --quiet
    settings=()
    for opt in "${cmake_options[@]}"; do settings+=(-C "cmake.define.${opt}"); done
    start=$(date +%s)
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv-mpi/bin/python -m pip wheel -q --no-deps \
        "${settings[@]}" -w "$work/wheel" "$work/nest.tar.gz" > "$work/build.log" 2>&1 \
        || { tail -n 40 "$work/build.log" >&2; echo "building NEST with MPI failed (log above)" >&2; exit 1; }
    mkdir -p "$wheel_dir"
    printf '%s\nbuilt in %s s on %s\n' "$key_text" "$(( $(date +%s) - start ))" "$(date -u +%FT%TZ)" \
        > "$work/wheel/BUILD-INFO"
    # into place in one rename: a cache folder is either complete or absent
    tmp_dir="${wheel_dir}.tmp$$"
    mv "$work/wheel" "$tmp_dir"
    mv -T "$tmp_dir" "$wheel_dir"
    wheel=$(ls "$wheel_dir"/nest_simulator-*.whl | head -n 1)
    echo "NEST with MPI: $(tail -n 2 "$wheel_dir/BUILD-INFO" | head -n 1)"
fi

.venv-mpi/bin/python -m pip install -q --force-reinstall --no-deps "$wheel"
# mpi4py built against this machine's OpenMPI (the binary wheels on PyPI bring their own MPI)
.venv-mpi/bin/python -m pip install -q "$wheel" --no-binary mpi4py mpi4py
if [ "${1:-}" = "test" ]; then
    .venv-mpi/bin/python -m pip install -q -e ".[test]"
else
    .venv-mpi/bin/python -m pip install -q -e .
fi
have_mpi=$(.venv-mpi/bin/python -c 'import nest; print(nest.build_info["have_mpi"])' 2>/dev/null | tail -n 1)
if [ "$have_mpi" != "True" ]; then
    echo "the NEST in .venv-mpi has no MPI (build_info have_mpi=$have_mpi): remove ${wheel_dir} and run again" >&2
    exit 1
fi
echo "ready: $(pwd)/.venv-mpi/bin/nestml-registry (NEST ${nest_version} with MPI, $(mpirun --version | head -n 1))"
