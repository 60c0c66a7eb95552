# xfer-train-meta slurm without a cluster: the collection directory it
# writes; its array tasks run by hand as Slurm runs them (one straight
# through, one stopped by SIGUSR1 and resumed, one killed with SIGKILL and
# resumed from its last periodic save); the merge job (every shard, then a
# missing and a corrupt one); bad input. tests/slurm/run.sh does the same
# on a real Slurm (make check-slurm).
tm() { run train-meta "$@"; }
coll="--dataset c --sample 8 --seed 5 --tasks 3 --protocol tiny --set epochs=5"

"$GEN" --cifar10-tarball "$T/c10.tar.gz" 200 || bad "generating the task"
run ingest --db "$T/main.db" add "$T/c10.tar.gz" --name c
expect_rc 0
cp "$T/main.db" "$T/ref.db"
tm --db "$T/main.db" slurm $coll --shared "$T/coll" --local "$T/local"
expect_rc 0
expect_out "{\"dir\":\"$T/coll\",\"array_script\":\"$T/coll/array.sbatch\",\"merge_script\":\"$T/coll/merge.sbatch\",\"tasks\":3,\"archs\":8,\"runs\":8}"
expect_eq "$(head -n 1 "$err")" "xfer-train-meta: slurm: 3 tasks (8 runs) written to '$T/coll'; submit with" \
    "slurm's message"
expect_eq "$(cat "$T"/coll/archs/task-*.jsonl | sort -u | wc -l)" 8 "distinct archs over the tasks"
expect_eq "$(cat "$T"/coll/archs/task-0.jsonl | wc -l) $(cat "$T"/coll/archs/task-1.jsonl | wc -l) $(cat "$T"/coll/archs/task-2.jsonl | wc -l)" \
    "3 3 2" "archs per task"
bash -n "$T/coll/array.sbatch" && bash -n "$T/coll/merge.sbatch" && ok || bad "the scripts are not valid bash"
expect_eq "$(grep '^#SBATCH' "$T/coll/array.sbatch" | tr '\n' ' ')" \
    "#SBATCH --job-name=xfer-c #SBATCH --array=0-2 #SBATCH --requeue #SBATCH --signal=B:USR1@300 #SBATCH --output=$T/coll/logs/task-%a.log #SBATCH --open-mode=append " \
    "the array's sbatch options"

# the reference: the same archs trained by one uninterrupted worker
results() {
    sqlite3 "$1" "SELECT a.arch, r.seed, r.status, r.valid_acc, r.test_acc, r.params, r.flops, c.epoch, c.train_loss,
        c.train_acc, c.valid_loss, c.valid_acc, c.lr FROM runs r JOIN archs a ON a.id = r.arch_id
        LEFT JOIN curves c ON c.run_id = r.id ORDER BY a.arch, r.seed, c.epoch"
}
cat "$T"/coll/archs/task-*.jsonl | "$BIN/xfer-train-meta" --db "$T/ref.db" plan --dataset c --protocol tiny \
    --set epochs=5 2>/dev/null
"$BIN/xfer-train-meta" --db "$T/ref.db" work --threads 1 >/dev/null 2>&1
expect_eq "$(sqlite3 "$T/ref.db" "SELECT count(*) FROM runs WHERE status = 'done'")" 8 "reference runs"
ref=$(results "$T/ref.db")

# a task as Slurm starts it (saves every second, leases of 2 s)
export XFER_SAVE_EVERY=1 XFER_LEASE=2
task() { SLURM_ARRAY_TASK_ID=$1 bash "$T/coll/array.sbatch" >>"$T/task-$1.log" 2>&1; }
# running DB [EPOCHS]: runs in progress (with EPOCHS done, default 1) in a shard
running() {
    sqlite3 "$1" "SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done >= ${2:-1}" 2>/dev/null
}
# until_running DB PID: waits (up to 60 s) until DB has a run past its first epoch
until_running() {
    w=0
    while [ "$(running "$1")" != 1 ] && kill -0 "$2" 2>/dev/null && [ $w -lt 600 ]; do
        sleep 0.1
        w=$((w + 1))
    done
}

task 0
rc=$?
expect_rc 0
grep -q "task 0: finished: '$T/coll/shards/shard-0.db'$" "$T/task-0.log" && ok || bad "task 0 did not finish"

# SIGUSR1 (the time limit is near): the workers checkpoint, the shard and the
# checkpoints are saved, exit 3 (scontrol is missing or has no cluster here);
# run again, the task resumes from the saved state
SLURM_ARRAY_TASK_ID=1 bash "$T/coll/array.sbatch" >>"$T/task-1.log" 2>&1 &
pid=$!
until_running "$T/local/xfer-0-1/shard.db" $pid
kill -USR1 $pid
wait $pid
rc=$?
if [ $rc -eq 0 ]; then
    echo "SKIP [$name] task 1 was done before SIGUSR1 (a fast machine)"
else
    expect_rc 3
    grep -q "task 1: stopped; shard and checkpoints saved into '$T/coll/state/task-1'$" "$T/task-1.log" && ok ||
        bad "task 1: no save after SIGUSR1"
    ls "$T/coll/state/task-1/shard.db.ckpt/"run-*.ckpt >/dev/null 2>&1 && ok || bad "task 1: no checkpoint saved"
    expect_absent "$T/coll/shards/shard-1.db"
    task 1
    rc=$?
    expect_rc 0
    grep -q "task 1: resuming from '$T/coll/state/task-1'$" "$T/task-1.log" && ok || bad "task 1 did not resume"
fi

# SIGKILL of the task and its workers (a node lost) while a periodic save
# holds a run in progress: the task resumes from that save
setsid sh -c "SLURM_ARRAY_TASK_ID=2 exec bash '$T/coll/array.sbatch' >>'$T/task-2.log' 2>&1" &
pid=$!
pg=$(ps -o pgid= -p $pid | tr -d ' ')
held=0
w=0
while [ $held = 0 ] && kill -0 $pid 2>/dev/null && [ $w -lt 600 ]; do
    # the task's script stopped (not its workers), no save begins or ends
    # meanwhile: the saved state (or the old one while they are swapped)
    # can be looked at
    kill -STOP $pid
    s=$T/coll/state/task-2
    [ -d "$s" ] || s=$s.old
    rm -f "$T/look.db" "$T/look.db-wal"
    if [ -e "$s/shard.db" ] && cp "$s/shard.db" "$T/look.db" 2>/dev/null; then
        [ ! -e "$s/shard.db-wal" ] || cp "$s/shard.db-wal" "$T/look.db-wal"
        [ "$(running "$T/look.db" 0)" = 1 ] && held=1
    fi
    if [ $held = 1 ]; then
        kill -KILL -"$pg"
    else
        kill -CONT $pid
        sleep 0.1
    fi
    w=$((w + 1))
done
wait $pid 2>/dev/null
task 2
rc=$?
expect_rc 0
if [ $held = 1 ]; then
    grep -q "task 2: resuming from '$T/coll/state/task-2'$" "$T/task-2.log" && ok || bad "task 2 did not resume"
    expect_eq "$(sqlite3 "$T/coll/shards/shard-2.db" "SELECT count(*) FROM runs WHERE attempts = 2")" 1 \
        "runs task 2 took over from its killed worker"
else
    echo "SKIP [$name] task 2 was done before a save held a run in progress (a fast machine)"
fi

# the merge job: every shard, results as the uninterrupted worker's
run_merge() {
    bash "$T/coll/merge.sbatch" >"$out" 2>"$err"
    rc=$?
}
run_merge
expect_rc 0
expect_eq "$(tail -n 1 "$err")" "xfer-train-meta slurm: merge: all 3 shards merged into '$T/main.db'" "merge's last line"
grep -q '^total: 0 planned, 0 running, 8 done, 0 failed' "$out" && ok || bad "merge prints no status"
expect_eq "$(results "$T/main.db")" "$ref" "merged results"
expect_eq "$(find "$T/coll/state" "$T/local" -mindepth 1 | wc -l)" 0 "states and local shards left"
task 0
expect_eq "$(tail -n 1 "$T/task-0.log" | sed 's/^[^ ]* //')" \
    "xfer-train-meta slurm: task 0: finished already: '$T/coll/shards/shard-0.db'" "a finished task started again"

# the next night: archs whose runs are finished in the database are left out
tm --db "$T/main.db" slurm $coll --shared "$T/next"
expect_rc 0
expect_out_empty
expect_eq "$(cat "$err")" "xfer-train-meta: slurm: 8 archs left out: their runs are finished in '$T/main.db'
xfer-train-meta: slurm: nothing to collect; nothing written" "a collection of finished archs"
expect_absent "$T/next"
tm --db "$T/main.db" slurm --dataset c --sample 10 --seed 5 --tasks 3 --protocol tiny --set epochs=5 --shared "$T/next"
expect_rc 0
expect_eq "$(head -n 2 "$err")" "xfer-train-meta: slurm: 8 archs left out: their runs are finished in '$T/main.db'
xfer-train-meta: slurm: 2 tasks for the 2 archs left" "a collection of two new archs"
grep -q '"tasks":2,"archs":2,"runs":2}$' "$out" && ok || bad "two new archs, two tasks"
expect_eq "$(cat "$T"/next/archs/task-*.jsonl "$T"/coll/archs/task-*.jsonl | sort -u | wc -l)" 10 "the two new archs"

# the merge job with a missing and a corrupt shard: both named, the rest
# merged, exit 1, the database as it was
mv "$T/coll/shards/shard-1.db" "$T/shard-1.db"
printf 'not a database at all, just text that goes on for a while.....................' >"$T/coll/shards/shard-2.db"
before=$(sqlite3 "$T/main.db" .dump)
run_merge
expect_rc 1
grep -q "^xfer-train-meta slurm: merge: task 1 left no shard '$T/coll/shards/shard-1.db' (its log: '$T/coll/logs/task-1.log')$" \
    "$err" && ok || bad "the missing shard is not named"
grep -q "^xfer-train-meta: shard '$T/coll/shards/shard-2.db': .*; skipped$" "$err" && ok || bad "the corrupt shard is not named"
expect_eq "$(tail -n 1 "$err")" \
    "xfer-train-meta slurm: merge: 1 of 3 shards merged into '$T/main.db'; 1 missing, 1 not merged (reported above)" \
    "merge's last line with a missing and a corrupt shard"
expect_eq "$(sqlite3 "$T/main.db" .dump)" "$before" "database after a missing and a corrupt shard"

# submission through stand-ins for sbatch, sinfo and scancel that record
# their arguments
mkdir -p "$T/fake"
cat >"$T/fake/sbatch" <<'EOF'
#!/bin/sh
echo "sbatch $*" >>"$FAKE_LOG"
case "$*" in
*merge.sbatch)
    if [ -n "${FAKE_MERGE_FAILS:-}" ]; then
        echo "sbatch: error: Batch job submission failed: Job dependency problem" >&2
        exit 1
    fi
    echo 43
    ;;
*) echo "42;xfertest" ;;
esac
EOF
printf '#!/bin/sh\necho debug\necho gpu\n' >"$T/fake/sinfo"
printf '#!/bin/sh\necho "scancel $*" >>"$FAKE_LOG"\n' >"$T/fake/scancel"
chmod +x "$T/fake/sbatch" "$T/fake/sinfo" "$T/fake/scancel"
export FAKE_LOG="$T/fake.log"
new="--dataset c --sample 3 --seed 99 --tasks 3 --protocol tiny --set epochs=5"
PATH="$T/fake:$PATH" "$BIN/xfer-train-meta" --db "$T/main.db" slurm $new --partition gpu --shared "$T/s1" --submit \
    >"$out" 2>"$err"
rc=$?
expect_rc 0
grep -q '"tasks":3,"archs":3,"runs":3,"array_job":42,"merge_job":43}$' "$out" && ok || bad "submitted: the job ids"
expect_err_line "xfer-train-meta: slurm: array job 42 (3 tasks, 3 runs) and merge job 43 after it; '$T/s1'"
expect_eq "$(cat "$FAKE_LOG")" "sbatch --parsable $T/s1/array.sbatch
sbatch --parsable --dependency=afterany:42 --export=ALL,XFER_ARRAY_JOB=42 $T/s1/merge.sbatch" "sbatch's arguments"
grep -q '^#SBATCH --partition=gpu$' "$T/s1/array.sbatch" && grep -q '^#SBATCH --partition=gpu$' "$T/s1/merge.sbatch" &&
    ok || bad "no partition in the scripts"
rm -f "$FAKE_LOG"
PATH="$T/fake:$PATH" "$BIN/xfer-train-meta" --db "$T/main.db" slurm $new --partition nope --shared "$T/s2" --submit \
    >"$out" 2>"$err"
rc=$?
expect_rc 1
expect_err_line "xfer-train-meta: --partition: partition 'nope' does not exist (sinfo knows: debug gpu)"
expect_absent "$T/s2" "$FAKE_LOG"
PATH="$T/fake:$PATH" FAKE_MERGE_FAILS=1 "$BIN/xfer-train-meta" --db "$T/main.db" slurm $new --shared "$T/s3" --submit \
    >"$out" 2>"$err"
rc=$?
expect_rc 1
expect_err_line "xfer-train-meta: array job 42 cancelled: sbatch '$T/s3/merge.sbatch' failed (exit 1): Batch job submission failed: Job dependency problem"
expect_eq "$(tail -n 1 "$FAKE_LOG")" "scancel 42" "the array cancelled when its merge job was refused"
expect_absent "$T/s3"

# bad input: nothing written
env PATH=/nonexistent "$BIN/xfer-train-meta" --db "$T/main.db" slurm $coll --shared "$T/b1" --submit >"$out" 2>"$err"
rc=$?
expect_rc 1
expect_err_line "xfer-train-meta: --submit: sbatch not found on PATH (not a Slurm submit host?); without --submit the scripts are written for submitting elsewhere"
tm --db "$T/main.db" slurm $coll --shared "$T/b2" --time 8h
expect_rc 2
expect_err_line "xfer-train-meta: --time: '8h' is not [D-]HH:MM:SS"
tm --db "$T/main.db" slurm --dataset c --sample 8 --shared "$T/b3"
expect_rc 2
expect_err_line "xfer-train-meta: slurm: --tasks T is required (see 'xfer-train-meta --help')"
tm --db "$T/main.db" slurm --dataset c --sample 8 --tasks 9 --shared "$T/b4"
expect_rc 2
expect_err_line "xfer-train-meta: --tasks 9 for 8 archs: every task needs an arch"
tm --db "$T/main.db" slurm $coll --shared "$T/b 5"
expect_rc 2
expect_err_line "xfer-train-meta: --shared: '$T/b 5': the character ' ' cannot go into a Slurm script"
tm --db "$T/main.db" slurm $coll --shared "$T/b6" --partition 'gpu;rm'
expect_rc 2
expect_err_line "xfer-train-meta: --partition: 'gpu;rm': the character ';' cannot go into a Slurm script"
tm --db "$T/main.db" slurm --dataset nope --sample 8 --tasks 3 --shared "$T/b7"
expect_rc 1
expect_err_line "xfer-train-meta: unknown dataset 'nope' in '$T/main.db' ('xfer-ingest list' shows the stored ones)"
tm --db "$T/main.db" slurm $coll --shared "$T/b8" --set epochs=0
expect_rc 2
expect_err_match "xfer-train-meta: protocol epochs*"
expect_absent "$T/b1" "$T/b2" "$T/b3" "$T/b4" "$T/b 5" "$T/b6" "$T/b7" "$T/b8"
tm --db "$T/main.db" slurm $coll --shared "$T/coll"
expect_rc 1
expect_err_line "xfer-train-meta: '$T/coll' holds a collection already (submit its scripts again, or give another --shared)"
