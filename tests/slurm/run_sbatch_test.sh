#!/usr/bin/env bash
# \brief Starts a throw-away single-node Slurm on loopback, submits launch/slurm/train.sbatch (2 tasks), checks it.
#
# Usage: tests/slurm/run_sbatch_test.sh [--keep] DFCL_BINARY
#   ctest -R slurm_sbatch --output-on-failure      (the binary comes from $<TARGET_FILE:dfcl>)
# Everything lives in one temp dir: munged (own key and socket), slurmctld and slurmd (generated slurm.conf,
# free ports, state/spool/logs/pids there), all in the foreground as children of this script, torn down by a
# trap on every exit. Jobs: a smoke job (`srun --mpi=pmix -n 2 hostname` and a 2-rank in-memory `dfcl generate`),
# then train.sbatch with 2 tasks on the CPU (1 epoch in memory), whose train.json and out/last.ckpt are checked.
# Exit codes: 0 pass; 1 fail; 77 skip (Slurm/munge not installed, not root, or the daemons cannot start: the
# reason is printed; ctest shows the test as skipped).
# Environment:
#   DFCL_SLURM_TASKS         ranks of the train.sbatch job (default 2)
#   DFCL_SLURM_EXPECT_WORLD  world_size train.json must report (default: the task count; 0 or empty: not checked)
#   DFCL_SLURM_START_TIMEOUT seconds for the node to become idle (default 60)
#   DFCL_SLURM_TIMEOUT       seconds for the whole test before it cancels its jobs and fails (default 240, under
#                            ctest's TIMEOUT 300 so the trap, not ctest's kill, tears the cluster down)
#   DFCL_SLURM_KEEP=1        (or --keep) keep the temp dir (logs, slurm.conf, run dir) after the test
# docs/launch.md describes the design and the times measured.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed -e 's/^# \{0,1\}//' -e 's/^\\brief //'; }
keep=${DFCL_SLURM_KEEP:-0}
dfcl=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --keep) keep=1 ;;
    -*) echo "run_sbatch_test.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) [ -z "$dfcl" ] || { echo "run_sbatch_test.sh: one binary only (see --help)" >&2; exit 2; }; dfcl=$1 ;;
  esac
  shift
done
[ -n "$dfcl" ] || { echo "run_sbatch_test.sh: give the dfcl binary (see --help)" >&2; exit 2; }
[ -x "$dfcl" ] || { echo "run_sbatch_test.sh: '$dfcl' is not an executable file" >&2; exit 1; }
dfcl=$(cd "$(dirname "$dfcl")" && pwd)/$(basename "$dfcl")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
sbatch_script=$root/launch/slurm/train.sbatch
tasks=${DFCL_SLURM_TASKS:-2}
expect_world=${DFCL_SLURM_EXPECT_WORLD-$tasks}
start_timeout=${DFCL_SLURM_START_TIMEOUT:-60}
total_timeout=${DFCL_SLURM_TIMEOUT:-240}
t_begin=$(date +%s)

say() { echo "slurm-test: $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- can Slurm run here at all? (skip with the reason, never a silent pass) ----
skip() { say "SKIPPED: $*"; exit 77; }
missing=()
for c in munged munge unmunge slurmctld slurmd sbatch srun sinfo scontrol squeue scancel; do
  command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
[ ${#missing[@]} -eq 0 ] || skip "not installed: ${missing[*]} (apt-get install --no-install-recommends slurmctld slurmd slurm-client munge)"
[ "$(id -u)" -eq 0 ] || skip "slurmd must run as root (this runs as uid $(id -u))"
[ -f "$sbatch_script" ] || { say "FAILED: $sbatch_script is missing"; exit 1; }

# A Slurm job around this test (a real cluster's CI) must not leak into the test cluster's clients.
for v in $(compgen -e); do case "$v" in SLURM_*|SBATCH_*|SRUN_*|SALLOC_*|SQUEUE_*|SINFO_*) unset "$v" ;; esac; done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dfcl-slurm.XXXXXX")
chmod 755 "$tmp"   # munged insists that every directory above its socket be searchable by all
pids=()            # daemons, in start order
sbatch_pid=""      # the sbatch --wait in flight

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [ -n "$sbatch_pid" ] && kill -TERM "$sbatch_pid" 2>/dev/null
  if [ -n "${SLURM_CONF:-}" ] && [ ${#pids[@]} -ge 2 ] && kill -0 "${pids[1]}" 2>/dev/null; then
    # Jobs first (their slurmstepd outlives slurmd), then the daemons.
    if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
      say "cancelling the jobs still in the queue"
      scancel --user="$(id -un)" 2>/dev/null
      for _ in $(seq 1 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
    fi
  fi
  local i pid
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    for f in "$tmp"/*.out "$tmp"/log/slurmctld.log "$tmp"/log/slurmd.log; do
      [ -s "$f" ] && { echo "---- $(basename "$f") (last 25 lines) ----"; tail -n 25 "$f"; }
    done
  fi
  if [ "$keep" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- munged: its own key, socket, pid and seed files ----
mkdir -p "$tmp/munge" "$tmp/log" "$tmp/state" "$tmp/spool" "$tmp/tmpfs" "$tmp/run"
chmod 755 "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
sock=$tmp/munge/munge.socket
t0=$(now)
munged -F --socket="$sock" --key-file="$tmp/munge/munge.key" --pid-file="$tmp/munge/munged.pid" \
  --seed-file="$tmp/munge/munged.seed" >"$tmp/log/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 40); do [ -S "$sock" ] && break; kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.25; done
if ! munge -n -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1; then
  skip "munged did not start: $(tail -n 3 "$tmp/log/munged.log" | tr '\n' ' ')"
fi

# ---- slurm.conf ----
node=$(hostname -s)
cpus=$(nproc)
port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
pick_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 30000 ))
    port_free "$p" && port_free $((p + 1)) && { echo "$p"; return; }
  done
  echo 0
}
write_conf() {   # $1: slurmctld port (slurmd uses $1+1)
  cat >"$tmp/slurm.conf" <<EOF
# Generated by tests/slurm/run_sbatch_test.sh: single node on loopback, everything under $tmp.
ClusterName=dfcltest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$1
SlurmdPort=$(( $1 + 1 ))
SlurmUser=root
SlurmdUser=root
MailProg=/bin/true
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
TmpFS=$tmp/tmpfs
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=20
InactiveLimit=0
KillWait=5
# sbatch --wait polls every 2 s only while 2 < MinJobAge/2 fails (else 2, 8, 32 s...): keep it small.
MinJobAge=4
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}
export SLURM_CONF=$tmp/slurm.conf

# ---- slurmctld + slurmd (a port taken between the check and the bind: retry with others) ----
started=0
for attempt in 1 2 3; do
  port=$(pick_port)
  [ "$port" -ne 0 ] || skip "no free TCP port pair found"
  write_conf "$port"
  rm -rf "${tmp:?}/state/"* "${tmp:?}/spool/"*
  slurmctld -D -c -f "$SLURM_CONF" >"$tmp/log/slurmctld.stderr.log" 2>&1 &
  pids[1]=$!
  slurmd -D -f "$SLURM_CONF" -N "$node" >"$tmp/log/slurmd.stderr.log" 2>&1 &
  pids[2]=$!
  deadline=$(( $(date +%s) + start_timeout ))
  state=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    kill -0 "${pids[1]}" 2>/dev/null || break
    kill -0 "${pids[2]}" 2>/dev/null || break
    state=$(sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n 1 || true)
    case "$state" in idle) started=1; break ;; drain*|down*|inval*|fail*) ;; esac
    sleep 0.25
  done
  [ $started -eq 1 ] && break
  if grep -qs 'Address already in use' "$tmp"/log/slurm*.log; then
    say "attempt $attempt: port $port or $((port + 1)) was taken; retrying"
    for i in 2 1; do kill -TERM "${pids[i]}" 2>/dev/null; wait "${pids[i]}" 2>/dev/null || true; done
    unset 'pids[2]' 'pids[1]'
    continue
  fi
  break
done
if [ $started -ne 1 ]; then
  why="node $node is '${state:-unknown}' after ${start_timeout}s"
  kill -0 "${pids[1]:-0}" 2>/dev/null || why="slurmctld exited"
  kill -0 "${pids[2]:-0}" 2>/dev/null || why="slurmd exited"
  reason=$(scontrol show node "$node" 2>/dev/null | grep -o 'Reason=.*' || true)
  errs=$(grep -hiE 'error|fatal' "$tmp"/log/slurm*.log 2>/dev/null | tail -n 4 | tr '\n' ' ' || true)
  skip "Slurm did not start: $why. ${reason} ${errs}"
fi
mpis=$(srun --mpi=list 2>&1 || true)
grep -q pmix <<<"$mpis" || skip "this Slurm has no mpi/pmix plugin (srun --mpi=list: $(tr '\n' ' ' <<<"$mpis"))"
t_daemons=$(since "$t0")
say "munged + slurmctld + slurmd up, node $node idle ($cpus CPUs, ports $port/$((port + 1))) after ${t_daemons}s"

# ---- jobs: 2 tasks on the one node; -O (overcommit) where the node has fewer CPUs than tasks ----
overcommit=()
[ "$cpus" -ge 2 ] && [ "$cpus" -ge "$tasks" ] || overcommit=(--overcommit)
fail() { say "FAILED: $*"; exit 1; }
job_state() { scontrol show job "$1" 2>/dev/null | grep -oE 'JobState=[A-Z_]+|ExitCode=[0-9:]+' | tr '\n' ' '; }
# submit OUTFILE SBATCH_ARGS...: `sbatch --parsable --wait`, in the background so that a signal is handled at
# once (bash runs traps only between commands; `wait` is one), bounded by what is left of DFCL_SLURM_TIMEOUT.
# Sets job_rc and job_id; OUTFILE gets sbatch's own output.
submit() {
  local out=$1 left
  shift
  left=$(( total_timeout - ($(date +%s) - t_begin) ))
  [ "$left" -ge 5 ] || fail "no time left for the job (DFCL_SLURM_TIMEOUT=${total_timeout}s)"
  timeout "$left" sbatch --parsable --wait "$@" >"$out" 2>&1 &
  sbatch_pid=$!
  job_rc=0
  wait "$sbatch_pid" || job_rc=$?
  sbatch_pid=""
  job_id=$(grep -oE '^[0-9]+' "$out" | head -n 1 || true)
  [ "$job_rc" -ne 124 ] || echo "(timed out after ${left}s: DFCL_SLURM_TIMEOUT=${total_timeout})" >>"$out"
}

# 1. Smoke: srun + PMIx + the binary, without train.sbatch.
t1=$(now)
submit "$tmp/smoke.sbatch.log" -J dfcl-smoke -N 1 -n 2 -c 1 ${overcommit[@]+"${overcommit[@]}"} \
  --time=5 -D "$tmp/run" -o "$tmp/smoke.out" --wrap "set -e
srun --mpi=pmix -n 2 hostname
srun --mpi=pmix -n 2 $(printf %q "$dfcl") -q generate --set generate.in_memory=true --set generate.rct_rows=1000 --set generate.observational_rows=0"
t_smoke=$(since "$t1")
smoke_id=$job_id
[ $job_rc -eq 0 ] || fail "smoke job ${smoke_id:-?} (rc $job_rc after ${t_smoke}s; $(job_state "${smoke_id:-0}")): $(cat "$tmp/smoke.sbatch.log")"
[ "$(grep -cx "$node" "$tmp/smoke.out" || true)" -eq 2 ] || fail "smoke job: expected 2 lines '$node' from srun hostname"
grep -q '"rows": 1000' "$tmp/smoke.out" || fail "smoke job: no '\"rows\": 1000' from dfcl generate"
say "smoke job $smoke_id (srun --mpi=pmix hostname + dfcl generate, 2 tasks): submit -> finish ${t_smoke}s"

# 2. launch/slurm/train.sbatch: $tasks (2) ranks on the CPU, a small in-memory training.
run=$tmp/run/train
t2=$(now)
DFCL="$dfcl" DFCL_CONFIG="" DFCL_RUN_DIR="$run" DFCL_FLAGS="-q" DFCL_DEVICE=cpu \
  submit "$tmp/train.sbatch.log" -J dfcl-slurm-test -N 1 --ntasks-per-node="$tasks" --gpus-per-node=0 -c 1 \
  ${overcommit[@]+"${overcommit[@]}"} --time=10 -D "$tmp/run" -o "$tmp/train.out" "$sbatch_script" \
  --set train.generate=true --set generate.rct_rows=4000 --set generate.observational_rows=0 \
  --set generate.features=5 --set train.epochs=1 --set train.batch_size=256
t_train=$(since "$t2")
train_id=$job_id
[ $job_rc -eq 0 ] || fail "train.sbatch job ${train_id:-?} (rc $job_rc after ${t_train}s; $(job_state "${train_id:-0}")): $(cat "$tmp/train.sbatch.log")"
[ -s "$run/train.json" ] || fail "$run/train.json is missing or empty"
[ -f "$run/out/last.ckpt" ] || fail "$run/out/last.ckpt is missing"
[ -f "$run/job.env" ] || fail "$run/job.env is missing"
if [ -n "$expect_world" ] && [ "$expect_world" != 0 ]; then
  grep -qE "\"world_size\": *$expect_world([^0-9]|\$)" "$run/train.json" ||
    fail "train.json has no \"world_size\": $expect_world (found: $(grep -o '"world_size": *[0-9]*' "$run/train.json" || echo none)); set DFCL_SLURM_EXPECT_WORLD=0 to skip this check"
  world_msg="world_size $expect_world"
else
  world_msg="world_size not checked (DFCL_SLURM_EXPECT_WORLD=0)"
fi
say "train.sbatch job $train_id ($tasks tasks, 1 epoch): submit -> finish ${t_train}s; train.json ($world_msg) and out/last.ckpt present"
say "PASSED: daemons ${t_daemons}s, smoke job ${t_smoke}s, train job ${t_train}s, total $(since "$t0")s"
