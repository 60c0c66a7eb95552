#!/bin/sh
# make check-slurm: xfer-train-meta slurm on a real Slurm. Starts a
# single-node cluster from Debian's packages (munged, slurmctld and slurmd
# on localhost, a slurm.conf with the CPUs and memory `slurmd -C` reports,
# state, spool and logs in a temporary directory, as root), submits a 3-task
# CPU array of the tiny protocol, requeues one task mid-run with
# `scontrol requeue`, sends another the time limit's SIGUSR1 (it requeues
# itself), waits for the merge job and checks the merged
# database: every planned run exactly once, complete curves, results equal
# to one uninterrupted worker's. Then bad input: a partition that does not
# exist, a merge job with a missing and a corrupt shard. Every daemon it
# started is stopped by process id, on failure too. KEEP=1 keeps the
# temporary directory.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$top/bin}
GEN=${GEN:-$top/build/tests/gen-fixtures}
start=$(date +%s)
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL [slurm] $*"
}
expect_eq() { [ "$1" = "$2" ] && ok || bad "$3: got '$1', expected '$2'"; }
say() { echo "slurm: $(($(date +%s) - start)) s: $*"; }

for c in munged mungekey slurmctld slurmd sbatch scancel scontrol squeue sinfo sqlite3 setsid; do
    if ! command -v $c >/dev/null 2>&1; then
        echo "slurm: '$c' not found (make deps installs Slurm and MUNGE)"
        exit 1
    fi
done
if [ "$(id -u)" != 0 ]; then
    echo "slurm: needs root (slurmd starts the jobs as their users)"
    exit 1
fi

W=$(mktemp -d /tmp/xfer-slurm.XXXXXX)
chmod 755 "$W" # munged wants its socket's directory open to all
export SLURM_CONF=$W/slurm.conf
daemons=""

# stop_all: the jobs first (their steps outlive slurmd), then the daemons
# this script started, newest first, by process id
stop_all() {
    if [ -n "$daemons" ] && scontrol ping >/dev/null 2>&1; then
        jobs=$(squeue -h -o %A 2>/dev/null)
        [ -z "$jobs" ] || scancel $jobs 2>/dev/null
        w=0
        while [ -n "$(squeue -h -o %A 2>/dev/null)" ] && [ $w -lt 60 ]; do
            sleep 1
            w=$((w + 1))
        done
    fi
    for p in $daemons; do
        kill -TERM "$p" 2>/dev/null
        w=0
        while kill -0 "$p" 2>/dev/null && [ $w -lt 100 ]; do
            sleep 0.1
            w=$((w + 1))
        done
        kill -KILL "$p" 2>/dev/null
    done
    daemons=""
    if [ "${KEEP:-0}" = 1 ]; then
        echo "slurm: kept $W"
    else
        rm -rf "$W"
    fi
}
trap stop_all EXIT
trap 'exit 1' INT TERM HUP

# logs DAEMON...: the ends of the daemons' logs, after a failure
logs() {
    for d in "$@"; do
        echo "--- $d"
        tail -n 15 "$W/$d.log" 2>/dev/null
    done
}

# two free TCP ports in a row (none listening in /proc/net/tcp*)
listening() {
    awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
port=$((20000 + ($$ % 10000) * 2))
while listening $port || listening $((port + 1)); do
    port=$((port + 2))
done

# MUNGE with its own key and socket
mungekey --create --keyfile="$W/munge.key" || exit 1
munged --foreground --key-file="$W/munge.key" --socket="$W/munge.sock" --pid-file="$W/munged.pid" \
    --seed-file="$W/munged.seed" --log-file="$W/munged.log" >"$W/munged.out" 2>&1 &
daemons="$! $daemons"

# slurm.conf: this machine as one node, as slurmd -C sees it
node=$(slurmd -C | head -n 1)
host=${node#NodeName=}
host=${host%% *}
mkdir -p "$W/state" "$W/spool"
cat >"$SLURM_CONF" <<EOF
ClusterName=xfertest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$W/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/slurmctld.log
SlurmdLogFile=$W/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=20
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
w=0
until [ -S "$W/munge.sock" ] || [ $w -gt 100 ]; do
    sleep 0.1
    w=$((w + 1))
done
if [ ! -S "$W/munge.sock" ]; then
    bad "munged did not start: $(tail -n 1 "$W/munged.out")"
    exit 1
fi
slurmctld -D -f "$SLURM_CONF" >"$W/slurmctld.out" 2>&1 &
daemons="$! $daemons"
slurmd -D -f "$SLURM_CONF" >"$W/slurmd.out" 2>&1 &
daemons="$! $daemons"
w=0
until [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] || [ $w -gt 30 ]; do
    sleep 1
    w=$((w + 1))
done
if [ "$(sinfo -h -o %T 2>/dev/null)" != idle ]; then
    bad "the cluster did not come up (node state '$(sinfo -h -o %T 2>&1)')"
    logs munged slurmctld slurmd
    exit 1
fi
say "cluster up: $node, ports $port and $((port + 1))"

# a task as t08 makes it, and a copy of the database for the reference
"$GEN" --cifar10-tarball "$W/c10.tar.gz" 200 || exit 1
"$BIN/xfer-ingest" --db "$W/main.db" add "$W/c10.tar.gz" --name c >/dev/null 2>&1 || exit 1
cp "$W/main.db" "$W/ref.db"

# the collection: 9 archs of 8 epochs in 3 tasks (a save every 2 s)
cd "$W" || exit 1
XFER_SAVE_EVERY=2 XFER_LEASE=5 "$BIN/xfer-train-meta" --db "$W/main.db" slurm --dataset c --sample 9 --seed 5 \
    --tasks 3 --protocol tiny --set epochs=8 --partition debug --shared "$W/coll" --local "$W/local" --submit \
    >"$W/submit.out" 2>"$W/submit.err"
rc=$?
expect_eq $rc 0 "slurm --submit exit status"
aj=$(sed -n 's/.*"array_job":\([0-9]*\).*/\1/p' "$W/submit.out")
mj=$(sed -n 's/.*"merge_job":\([0-9]*\).*/\1/p' "$W/submit.out")
if [ -z "$aj" ] || [ -z "$mj" ]; then
    bad "no job ids: $(cat "$W/submit.out" "$W/submit.err")"
    exit 1
fi
expect_eq "$(cat "$W/submit.err")" \
    "xfer-train-meta: slurm: array job $aj (3 tasks, 9 runs) and merge job $mj after it; '$W/coll'" "submit message"
say "array job $aj, merge job $mj"

# in_run K: waits (up to 2 minutes) until task K is past epoch 2 of a run
in_run() {
    w=0
    until [ "$(sqlite3 "$W/local/xfer-$aj-$1/shard.db" \
        "SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done >= 2" 2>/dev/null)" = 1 ] ||
        [ $w -gt 1200 ]; do
        sleep 0.1
        w=$((w + 1))
    done
    if [ $w -gt 1200 ]; then
        bad "task $1 never got into a run"
        logs slurmctld slurmd
        cat "$W/coll/logs/task-$1.log"
        exit 1
    fi
}
# restart K: a requeued job waits two minutes before it may start again:
# not here
restart() {
    w=0
    # pending on its begin time: Slurm has finished taking the old
    # instance down (bringing it forward earlier makes slurmd refuse the
    # launch, "already killed", and the task is lost)
    until [ "$(squeue -h -j "${aj}_$1" -o '%T %r' 2>/dev/null)" = "PENDING BeginTime" ] || [ $w -gt 600 ]; do
        sleep 0.1
        w=$((w + 1))
    done
    sleep 2
    scontrol update JobId="${aj}_$1" StartTime=now
    expect_eq $? 0 "task $1's start time brought forward"
}

# task 1 in the middle of a run: requeued by Slurm (its SIGTERM; the task
# saves, exits, starts again and resumes from what it saved)
in_run 1
scontrol requeue "${aj}_1"
expect_eq $? 0 "scontrol requeue"
say "task 1 requeued"
restart 1
# task 0 in the middle of a run: SIGUSR1 to the batch shell, as --signal
# sends it ahead of the time limit (the task saves and requeues itself)
in_run 0
scancel --batch --signal=USR1 "${aj}_0"
expect_eq $? 0 "scancel --batch --signal=USR1"
say "task 0 signalled"
restart 0

w=0
state=
while [ $w -lt 600 ]; do
    state=$(scontrol show job -o "$mj" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
    case $state in PENDING | RUNNING | CONFIGURING | COMPLETING | "") ;; *) break ;; esac
    sleep 0.5
    w=$((w + 1))
done
say "merge job $state"
expect_eq "$state" COMPLETED "the merge job's state"
expect_eq "$(scontrol show job -o "$mj" | sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p')" 0:0 "the merge job's exit code"
expect_eq "$(tail -n 1 "$W/coll/logs/merge.log")" \
    "xfer-train-meta slurm: merge: all 3 shards merged into '$W/main.db'" "the merge job's last line"
log1=$W/coll/logs/task-1.log
grep -q "task 1: stopped; shard and checkpoints saved into '$W/coll/state/task-1'$" "$log1" && ok ||
    bad "task 1 did not save when requeued"
grep -q "task 1: starting on .* restart 1)" "$log1" && ok || bad "task 1 did not start again"
grep -q "task 1: resuming from '$W/coll/state/task-1'$" "$log1" && ok || bad "task 1 did not resume"
grep -q "interrupted (the current run was given back)" "$log1" && ok || bad "task 1 was not in a run when requeued"
log0=$W/coll/logs/task-0.log
if grep -q "task 0: requeued ahead of the time limit$" "$log0"; then ok; else
    bad "task 0 did not requeue itself"
    cat "$log0"
fi
grep -q "task 0: starting on .* restart 1)" "$log0" && ok || bad "task 0 did not start again"
grep -q "task 0: resuming from '$W/coll/state/task-0'$" "$log0" && ok || bad "task 0 did not resume"

# the merged database: each planned run once, done, with every epoch
q() { sqlite3 "$W/main.db" "$1"; }
expect_eq "$(q "PRAGMA integrity_check")" ok "integrity"
expect_eq "$(q "SELECT count(*), count(DISTINCT arch_id || ':' || seed), sum(status = 'done') FROM runs")" "9|9|9" \
    "runs, distinct runs, runs done"
expect_eq "$(q "SELECT a.arch FROM runs r JOIN archs a ON a.id = r.arch_id ORDER BY a.arch")" \
    "$(sed 's/.*"arch":"\([^"]*\)".*/\1/' "$W"/coll/archs/task-*.jsonl | LC_ALL=C sort)" "the runs are the planned archs"
expect_eq "$(q "SELECT count(*) FROM runs r WHERE (SELECT count(*) || ':' || min(epoch) || ':' || max(epoch)
    FROM curves WHERE run_id = r.id) != '8:1:8'")" 0 "runs with incomplete curves"
expect_eq "$(find "$W/coll/state" "$W/local" -mindepth 1 | wc -l)" 0 "states and local shards left"

# results equal to one uninterrupted worker's on the same archs
results() {
    sqlite3 "$1" "SELECT a.arch, r.seed, r.status, r.valid_acc, r.test_acc, r.params, r.flops, c.epoch, c.train_loss,
        c.train_acc, c.valid_loss, c.valid_acc, c.lr FROM runs r JOIN archs a ON a.id = r.arch_id
        LEFT JOIN curves c ON c.run_id = r.id ORDER BY a.arch, r.seed, c.epoch"
}
cat "$W"/coll/archs/task-*.jsonl | "$BIN/xfer-train-meta" --db "$W/ref.db" plan --dataset c --protocol tiny \
    --set epochs=8 2>/dev/null
"$BIN/xfer-train-meta" --db "$W/ref.db" work --threads 1 >/dev/null 2>&1
expect_eq "$(results "$W/main.db")" "$(results "$W/ref.db")" "results against one uninterrupted worker"
say "merged database checked"

# bad input: a partition that does not exist (nothing written)
"$BIN/xfer-train-meta" --db "$W/main.db" slurm --dataset c --sample 9 --tasks 3 --partition nope \
    --shared "$W/nope" --submit >"$W/out" 2>"$W/err"
expect_eq $? 1 "exit status with an unknown partition"
expect_eq "$(cat "$W/err")" "xfer-train-meta: --partition: partition 'nope' does not exist (sinfo knows: debug)" \
    "unknown partition message"
[ ! -e "$W/nope" ] && ok || bad "'$W/nope' written for an unknown partition"

# the merge job with a missing and a corrupt shard: both named, exit 1, the
# database as it was
mv "$W/coll/shards/shard-1.db" "$W/shard-1.db"
printf 'not a database at all, just text that goes on for a while.....................' >"$W/coll/shards/shard-2.db"
before=$(sqlite3 "$W/main.db" .dump)
timeout 300 sbatch --wait --quiet "$W/coll/merge.sbatch"
expect_eq $? 1 "sbatch --wait exit status of a merge job that missed shards"
grep -q "^xfer-train-meta slurm: merge: task 1 left no shard '$W/coll/shards/shard-1.db'" "$W/coll/logs/merge.log" && ok ||
    bad "the missing shard is not named"
grep -q "^xfer-train-meta: shard '$W/coll/shards/shard-2.db': .*; skipped$" "$W/coll/logs/merge.log" && ok ||
    bad "the corrupt shard is not named"
expect_eq "$(tail -n 1 "$W/coll/logs/merge.log")" \
    "xfer-train-meta slurm: merge: 1 of 3 shards merged into '$W/main.db'; 1 missing, 1 not merged (reported above)" \
    "the merge job's last line"
expect_eq "$(sqlite3 "$W/main.db" .dump)" "$before" "database after a missing and a corrupt shard"

[ $fail -eq 0 ] || logs slurmctld slurmd
say "$pass passed, $fail failed"
[ $fail -eq 0 ]
