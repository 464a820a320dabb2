#!/usr/bin/env bash
# \brief Idempotent set-up: apt-install what is missing, then configure and build dfcl.
#
# Usage: launch/setup.sh [--deps-only] [--cuda] [--build-dir DIR] [--type Release|Debug]
#   --deps-only   install packages and stop
#   --cuda        also configure the CUDA kernels (needs nvcc; CUDA_HOME or /usr/local/cuda)
# Environment: DFCL_JOBS (build parallelism, default: nproc), Torch_DIR (another LibTorch).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$root/build"
build_type=Release
deps_only=0
cuda=OFF
while [ $# -gt 0 ]; do
  case "$1" in
    --deps-only) deps_only=1 ;;
    --cuda) cuda=ON ;;
    --build-dir) build_dir=$2; shift ;;
    --type) build_type=$2; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Packages: see docs/building.md. --no-install-recommends keeps libtorch-dev at ~560 MiB.
pkgs=(build-essential cmake ninja-build ccache pkg-config git
      libtorch-dev libgloo-dev libopenblas0-pthread
      libopenmpi-dev openmpi-bin
      libhdf5-dev libdeflate-dev zlib1g-dev
      libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libfmt-dev
      libgtest-dev libbenchmark-dev libglpk-dev slurmctld slurmd slurm-client munge
      python3-h5py python3-numpy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ $deps_only -eq 1 ] && exit 0

# ccache is wired in by CMakeLists.txt (DFCL_CCACHE) with CCACHE_BASEDIR, so a CI clone reuses this cache.
jobs=${DFCL_JOBS:-$(nproc)}
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
  -DDFCL_CUDA="$cuda" ${Torch_DIR:+-DTorch_DIR="$Torch_DIR"} >/dev/null
cmake --build "$build_dir" -j "$jobs"
