#!/usr/bin/env bash
# \brief Run dfcl under Open MPI's mpirun with binding, threads per rank, root and oversubscription handled.
#
# Usage: launch/mpirun.sh [OPTIONS] [--] DFCL_ARGS...
#   launch/mpirun.sh -n 2 train -c configs/train.yaml --set train.epochs=1
#   launch/mpirun.sh -n 8 --hostfile hosts -- -q train -c configs/train.yaml --json run.json
#
# Options (the first argument that is not one of these starts the dfcl arguments; `--` also ends them):
#   -n, --np N           ranks (default: $DFCL_NP, else the number of GPUs nvidia-smi lists, else 2)
#   -t, --threads T      OpenMP/intra-op threads per rank (default: $OMP_NUM_THREADS if set, else
#                        physical cores per rank, at least 1)
#   --bind MODE          auto (default) | core | none. auto: --bind-to core --map-by socket:PE=T when every
#                        rank gets T whole cores, else --bind-to none
#   --hostfile FILE      passed to mpirun (the core count used for T is this machine's: run it on a node
#                        like the others)
#   --mpirun-arg ARG     one extra mpirun argument (repeatable), e.g. --mpirun-arg --report-bindings
#   --dry-run            print the command (and the environment it sets) instead of running it
#   -h, --help           this text
# Environment: DFCL (the dfcl binary; default build/src/cli/dfcl, else dfcl on PATH), MPIRUN (default mpirun),
#   MPIRUN_ARGS (extra mpirun arguments, split on spaces), DFCL_NP. As root, OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)=1
#   are set; with more ranks than cores, --oversubscribe is added. OMP_NUM_THREADS and every NCCL_*, DFCL_*,
#   UCX_* variable set here are exported to all ranks (-x). docs/launch.md explains each choice.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed -e 's/^# \{0,1\}//' -e 's/^\\brief //'; }
die() { echo "mpirun.sh: $*" >&2; exit 2; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ]; }

np=${DFCL_NP:-}
threads=${OMP_NUM_THREADS:-}
bind=auto
dry_run=0
extra=()
[ -n "${MPIRUN_ARGS:-}" ] && read -r -a extra <<<"$MPIRUN_ARGS"
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--np|-np) [ $# -ge 2 ] || die "$1 needs a value"; np=$2; shift ;;
    --np=*) np=${1#*=} ;;
    -t|--threads) [ $# -ge 2 ] || die "$1 needs a value"; threads=$2; shift ;;
    --threads=*) threads=${1#*=} ;;
    --bind) [ $# -ge 2 ] || die "$1 needs a value"; bind=$2; shift ;;
    --bind=*) bind=${1#*=} ;;
    --hostfile) [ $# -ge 2 ] || die "$1 needs a value"; extra+=(--hostfile "$2"); shift ;;
    --mpirun-arg) [ $# -ge 2 ] || die "$1 needs a value"; extra+=("$2"); shift ;;
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
  shift
done
[ $# -gt 0 ] || die "no dfcl arguments (e.g. 'train -c configs/train.yaml'; see --help)"
case "$bind" in auto|core|none) ;; *) die "--bind must be auto, core or none (got '$bind')" ;; esac

# The binary: $DFCL, else the default build, else PATH.
dfcl=${DFCL:-}
if [ -z "$dfcl" ]; then
  if [ -x "$root/build/src/cli/dfcl" ]; then dfcl="$root/build/src/cli/dfcl"
  elif command -v dfcl >/dev/null 2>&1; then dfcl=$(command -v dfcl)
  else die "no dfcl binary: build it (launch/setup.sh) or set DFCL=/path/to/dfcl"; fi
fi
[ -x "$dfcl" ] || die "DFCL=$dfcl is not an executable file"
mpirun=${MPIRUN:-mpirun}
command -v "$mpirun" >/dev/null 2>&1 || die "'$mpirun' not found (apt-get install openmpi-bin, or set MPIRUN)"

# Ranks: one per GPU when there are GPUs, else 2.
if [ -z "$np" ]; then
  gpus=0
  command -v nvidia-smi >/dev/null 2>&1 && gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  np=$(( gpus > 0 ? gpus : 2 ))
fi
is_uint "$np" || die "-n must be a positive integer (got '$np')"

# Physical cores and sockets of this machine (Open MPI binds and counts slots by core, not hardware thread).
cores=$(lscpu -p=CORE,SOCKET 2>/dev/null | grep -v '^#' | sort -u | wc -l || true)
sockets=$(lscpu -p=SOCKET 2>/dev/null | grep -v '^#' | sort -u | wc -l || true)
[ "${cores:-0}" -ge 1 ] || cores=$(nproc)
[ "${sockets:-0}" -ge 1 ] || sockets=1
# Cores the process may use (a cgroup/affinity mask can be smaller than the machine).
avail=$(nproc)
[ "$avail" -lt "$cores" ] && cores=$avail
[ "$sockets" -gt "$cores" ] && sockets=1

# --map-by socket deals ranks round-robin over sockets: the fullest socket holds ceil(np/sockets) ranks.
per_socket=$(( (np + sockets - 1) / sockets ))
fit=$(( cores / sockets / per_socket ))       # whole cores per rank on the fullest socket (0: oversubscribed)
if [ -z "$threads" ]; then
  threads=$(( fit > 0 ? fit : 1 ))
fi
is_uint "$threads" || die "-t must be a positive integer (got '$threads')"

args=(-np "$np")
oversubscribed=0
[ "$np" -gt "$cores" ] && oversubscribed=1
if [ "$bind" = none ] || { [ "$bind" = auto ] && { [ $oversubscribed -eq 1 ] || [ $(( per_socket * threads )) -gt $(( cores / sockets )) ]; }; }; then
  args+=(--bind-to none)
else
  # --bind core, or auto with room: each rank gets T cores on one socket, its threads stay on them.
  args+=(--bind-to core --map-by "socket:PE=$threads")
fi
[ $oversubscribed -eq 1 ] && args+=(--oversubscribe)

export OMP_NUM_THREADS=$threads
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Forward the variables that matter on other hosts too (mpirun forwards nothing to remote nodes by default).
args+=(-x OMP_NUM_THREADS)
for name in $(compgen -e); do
  case "$name" in NCCL_*|DFCL_*|UCX_*|CUDA_VISIBLE_DEVICES) args+=(-x "$name") ;; esac
done

cmd=("$mpirun" "${args[@]}" ${extra[@]+"${extra[@]}"} "$dfcl" "$@")
if [ $dry_run -eq 1 ]; then
  env_line="OMP_NUM_THREADS=$OMP_NUM_THREADS"
  [ "$(id -u)" -eq 0 ] && env_line+=" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
  printf '%s' "$env_line"; printf ' %q' "${cmd[@]}"; printf '\n'
  exit 0
fi
echo "mpirun.sh: $np rank(s) x $threads thread(s) on $cores core(s): ${cmd[*]}" >&2
exec "${cmd[@]}"
