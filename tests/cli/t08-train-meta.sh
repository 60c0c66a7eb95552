# xfer-train-meta: planning, the worker, status, SIGTERM, SIGKILL at random
# moments, several workers on one database, the pipe form, shard merges,
# and bad input. Runs use the tiny protocol on a 900-image 32x32 task
# (about a second a run), 1 thread each
# (results are deterministic for a thread count, so they can be compared).
tm() { run train-meta "$@"; }
plan="--dataset c --protocol tiny --set epochs=4"
work1="--threads 1 --lease 1 --max-attempts 1000"

"$GEN" --cifar10-tarball "$T/c10.tar.gz" 200 || bad "generating the task"
run ingest --db "$T/base.db" add "$T/c10.tar.gz" --name c
expect_rc 0
tm --db "$T/base.db" plan $plan --sample 6 --seed 3
expect_rc 0
expect_err_line "xfer-train-meta: planned 6 new runs on 'c' (0 already in the queue)"
tm --db "$T/base.db" plan $plan --sample 6 --seed 3
expect_rc 0
expect_err_line "xfer-train-meta: planned 0 new runs on 'c' (6 already in the queue)"
expect_eq "$(sqlite3 "$T/base.db" "SELECT count(*) FROM runs WHERE status = 'planned'")" 6 "planned runs"

# copies of the planned queue (the task directory is named after the file)
clone() { cp "$T/base.db" "$T/$1.db" && cp -r "$T/base.db.tasks" "$T/$1.db.tasks"; }
# the content a run must have, without timings or worker names
results() {
    sqlite3 "$1" "SELECT a.arch, r.seed, r.status, r.valid_acc, r.test_acc, r.params, r.flops, c.epoch, c.train_loss,
        c.train_acc, c.valid_loss, c.valid_acc, c.lr FROM runs r JOIN archs a ON a.id = r.arch_id
        LEFT JOIN curves c ON c.run_id = r.id ORDER BY a.arch, r.seed, c.epoch"
}

# the reference: one worker, never interrupted
clone ref
tm --db "$T/ref.db" work --threads 1
expect_rc 0
expect_eq "$(wc -l <"$out")" 6 "JSON lines from one worker"
expect_eq "$(sqlite3 "$T/ref.db" "SELECT count(*) FROM runs WHERE status = 'done' AND attempts = 1")" 6 "done once"
expect_eq "$(sqlite3 "$T/ref.db" "SELECT count(*) FROM curves")" 24 "curve points"
grep -q '"curve":\[{"epoch":1,' "$out" && ok || bad "no curve in the JSON line"
expect_absent "$T/ref.db.ckpt/run-1.ckpt"
ref=$(results "$T/ref.db")
tm --db "$T/ref.db" work --threads 1
expect_rc 0
expect_out_empty
expect_err_line "xfer-train-meta: 0 runs done, 0 failed"
tm --db "$T/ref.db" status
expect_rc 0
grep -q '^c  *tiny  *[0-9a-f]\{12\}  *0  *0  *6  *0  *0$' "$out" && ok || bad "status table"

# until_running DB PID: waits (up to 60 s) until the worker PID holds a run,
# so signals land in training, however slowly the machine starts processes
until_running() {
    w=0
    while [ "$(sqlite3 "$1" "SELECT count(*) FROM runs WHERE status = 'running'" 2>/dev/null)" = 0 ] &&
        kill -0 "$2" 2>/dev/null && [ $w -lt 600 ]; do
        sleep 0.1
        w=$((w + 1))
    done
}

# SIGTERM: the run is given back (exit 3), then resumed to the same result
clone term
"$BIN/xfer-train-meta" --db "$T/term.db" work $work1 >"$out" 2>"$err" &
pid=$!
until_running "$T/term.db" $pid
sleep 0.3
kill -TERM $pid
wait $pid
rc=$?
if [ $rc -eq 0 ]; then
    echo "SKIP [$name] the queue was done before SIGTERM (a fast machine)"
else
    expect_rc 3
    tail -n 1 "$err" | grep -q "xfer-train-meta: interrupted" && ok || bad "no 'interrupted' message"
    expect_eq "$(sqlite3 "$T/term.db" "SELECT count(*) FROM runs WHERE status = 'running'")" 0 "runs held after SIGTERM"
fi
tm --db "$T/term.db" work --threads 1
expect_rc 0
expect_eq "$(results "$T/term.db")" "$ref" "results after SIGTERM and resume"

# SIGKILL at random moments, then restarts until the queue is empty
clone kill
i=0
while [ $i -lt 12 ]; do
    "$BIN/xfer-train-meta" --db "$T/kill.db" work $work1 >/dev/null 2>&1 &
    pid=$!
    # every other round from the first claim on, the others from the start
    [ $((i % 2)) -eq 0 ] && until_running "$T/kill.db" $pid
    sleep "0.$(awk -v s=$i 'BEGIN { srand(s + 7); printf "%02d", 5 + int(rand() * 60) }')"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    i=$((i + 1))
done
i=0
while [ "$(sqlite3 "$T/kill.db" "SELECT count(*) FROM runs WHERE status != 'done'")" != 0 ] && [ $i -lt 20 ]; do
    sleep 1.1 # leases of killed workers run out
    "$BIN/xfer-train-meta" --db "$T/kill.db" work $work1 >/dev/null 2>"$err"
    i=$((i + 1))
done
[ "$(sqlite3 "$T/kill.db" "SELECT count(*) FROM runs WHERE attempts > 1")" -gt 0 ] && ok ||
    bad "no run was killed mid-way: the fault test tested nothing"
expect_eq "$(sqlite3 "$T/kill.db" "PRAGMA integrity_check")" ok "integrity after SIGKILLs"
expect_eq "$(sqlite3 "$T/kill.db" "SELECT count(*) FROM runs WHERE status = 'done'")" 6 "runs done after SIGKILLs"
expect_eq "$(sqlite3 "$T/kill.db" "SELECT count(*) FROM runs r WHERE (SELECT count(*) FROM curves WHERE run_id = r.id) != 4
    OR (SELECT max(epoch) FROM curves WHERE run_id = r.id) != 4")" 0 "curves with gaps"
expect_eq "$(results "$T/kill.db")" "$ref" "results after SIGKILLs"
expect_eq "$(ls "$T/kill.db.ckpt" | wc -l)" 0 "checkpoints left"

# three workers on one database: no run claimed twice
clone many
for w in 1 2 3; do
    "$BIN/xfer-train-meta" --db "$T/many.db" work --threads 1 >"$T/w$w.out" 2>"$T/w$w.err" &
done
wait
expect_eq "$(cat "$T"/w?.out | wc -l)" 6 "JSON lines from three workers"
expect_eq "$(cat "$T"/w?.out | sed 's/.*"run":\([0-9]*\).*/\1/' | sort -u | wc -l)" 6 "distinct runs"
expect_eq "$(sqlite3 "$T/many.db" "SELECT count(*) FROM runs WHERE status = 'done' AND attempts = 1")" 6 "claimed once"
expect_eq "$(results "$T/many.db")" "$ref" "results of three workers"

# --jobs: several runs at once is for the CUDA backend; on the CPU it is a
# usage error that claims nothing
clone jobs
before=$(sqlite3 "$T/jobs.db" .dump)
tm --db "$T/jobs.db" work --device cpu --jobs 2
expect_rc 2
expect_err_line "xfer-train-meta: --jobs 2: training several runs at once needs the CUDA backend, and this worker has the CPU (start more workers instead)"
expect_eq "$(sqlite3 "$T/jobs.db" .dump)" "$before" "database after a refused --jobs"
tm --db "$T/jobs.db" work --jobs 0
expect_rc 2
expect_err_match "*--jobs*"

# merge: overlapping shards give what one worker gives; twice changes nothing
clone half
tm --db "$T/half.db" work --threads 1 --max-runs 3
expect_rc 0
expect_eq "$(wc -l <"$out")" 3 "--max-runs 3"
clone main
tm --db "$T/main.db" merge "$T/ref.db" "$T/half.db"
expect_rc 0
expect_eq "$(results "$T/main.db")" "$ref" "merged shards"
before=$(sqlite3 "$T/main.db" .dump)
tm --db "$T/main.db" merge "$T/half.db" "$T/ref.db"
expect_rc 0
grep -q "^xfer-train-meta: merged '$T/ref.db': 0 runs added, 0 updated, 6 already there$" "$err" && ok ||
    bad "second merge message"
expect_eq "$(sqlite3 "$T/main.db" .dump)" "$before" "a second merge"
tm merge "$T/ref.db" --into "$T/new.db"
expect_rc 0
expect_eq "$(results "$T/new.db")" "$ref" "merge into a new database"
printf 'not a database at all, just text that goes on for a while.....................' >"$T/bad.db"
before=$(sqlite3 "$T/main.db" .dump)
tm --db "$T/main.db" merge "$T/bad.db"
expect_rc 1
grep -q "shard '$T/bad.db'" "$err" && ok || bad "corrupt shard not named"
expect_eq "$(sqlite3 "$T/main.db" .dump)" "$before" "database after a corrupt shard"

# the pipe form: input fields kept, a finished run printed, not retrained
printf '%s\n' '{"arch":"|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|","tag":"a"}' \
    'not json' '{"space":"nb201","arch":"|bogus~0|"}' >"$T/in.jsonl"
"$BIN/xfer-train-meta" --db "$T/ref.db" run $plan --threads 1 <"$T/in.jsonl" >"$out" 2>"$err"
rc=$?
expect_rc 1
expect_eq "$(wc -l <"$out")" 1 "pipe output lines"
grep -q '"tag":"a".*"status":"done"' "$out" && ok || bad "pipe output lacks the input field or the result"
grep -q "^xfer-train-meta: stdin:2: not a JSON object$" "$err" && ok || bad "bad line 2 not reported"
grep -q "^xfer-train-meta: stdin:3: invalid nb201 arch" "$err" && ok || bad "bad line 3 not reported"
first=$(cat "$out")
"$BIN/xfer-train-meta" --db "$T/ref.db" run $plan --threads 1 <"$T/in.jsonl" >"$out" 2>"$err"
expect_eq "$(cat "$out")" "$first" "the pipe form run again"
expect_eq "$(sqlite3 "$T/ref.db" "SELECT max(attempts) FROM runs")" 1 "attempts after a repeated pipe run"

# bad input
tm --db "$T/ref.db" plan --dataset nope --sample 1
expect_rc 1
expect_err_line "xfer-train-meta: unknown dataset 'nope' in '$T/ref.db' ('xfer-ingest list' shows the stored ones)"
tm --db "$T/ref.db" plan --dataset c --sample 1 --protocol huge
expect_rc 2
expect_err_line "xfer-train-meta: unknown protocol 'huge' (presets: cheap, nb201, tiny)"
tm --db "$T/ref.db" plan --dataset c --sample 1 --set epochs=0
expect_rc 2
expect_err_match "xfer-train-meta: protocol epochs*"
tm --db "$T/ref.db" plan --dataset c --sample 1 --set colour=red
expect_rc 2
expect_err_match "xfer-train-meta: --set: unknown protocol key 'colour'*"
tm --db "$T/ref.db" work --device cuda
expect_rc 1
# without the CUDA backend, or with it but no GPU: one line saying which
expect_err_match "xfer-train-meta: --device cuda: *"
grep -q "this build has no CUDA backend (use cpu or auto)\|no usable GPU" "$err" && ok || bad "--device cuda message"
tm --db "$T" status
expect_rc 1
tm --db "$T/none/x.db" status
expect_rc 1
# a width the input cannot take fails the run, recorded with its reason
tm --db "$T/ref.db" plan --dataset c --protocol tiny --set width=300 --sample 1
expect_rc 2
tm --db "$T/ref.db" plan --dataset c --protocol tiny --set cells=40 --sample 1
expect_rc 0
tm --db "$T/ref.db" work --threads 1
expect_rc 0
expect_eq "$(sqlite3 "$T/ref.db" "SELECT status, error FROM runs WHERE id = (SELECT max(id) FROM runs)")" \
    "failed|nb201 macro: N 40 is out of range (1-32 cells a stage)" "a failed run"

# progress: log lines off a terminal, with what is left and the time it takes
tm --db "$T/ref.db" plan --dataset c --protocol tiny --set epochs=2 --sample 2 --seed 11
tm --db "$T/ref.db" work --threads 1
expect_rc 0
expect_eq "$(grep -c "^xfer-train-meta: run [0-9]* done (.* on c, seed 0) in [0-9.]* s; [01] left, about [0-9]*s$" "$err")" 2 \
    "progress log lines"

# export: the finished runs as records that xfer-ingest runs takes back,
# protocol (recipe and hash) and curves included
tm --db "$T/ref.db" export --dataset c
expect_rc 0
cp "$out" "$T/export.jsonl"
expect_eq "$(wc -l <"$T/export.jsonl")" "$(sqlite3 "$T/ref.db" "SELECT count(*) FROM runs WHERE status = 'done'")" \
    "exported runs"
run ingest --db "$T/imported.db" runs "$T/export.jsonl"
expect_rc 0
expect_eq "$(results "$T/imported.db")" "$(results "$T/ref.db" | grep '|done|')" "runs exported and imported"
expect_eq "$(sqlite3 "$T/imported.db" "SELECT kind, height, width, channels, classes, n_train, n_valid FROM datasets")" \
    "virtual|$(sqlite3 "$T/ref.db" "SELECT height, width, channels, classes, n_train, n_valid FROM datasets")" \
    "the dataset's shape and sizes travel with its runs"
expect_eq "$(sqlite3 "$T/imported.db" "SELECT group_concat(hash) FROM (SELECT hash FROM protocols ORDER BY hash)")" \
    "$(sqlite3 "$T/ref.db" "SELECT group_concat(hash) FROM (SELECT hash FROM protocols WHERE id IN
        (SELECT protocol_id FROM runs WHERE status = 'done') ORDER BY hash)")" "protocol hashes"
