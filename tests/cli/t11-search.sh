# xfer-search on a synthetic meta-dataset (gen-fixtures --meta-runs: five
# tasks of 200 recorded nb201 cells): run with the table evaluator for each
# optimizer, a finished search printed again, --json, the Pareto front,
# constraints, bench (--json, --csv, --svg); the train evaluator on a tiny
# task with SIGTERM and SIGKILL mid-search and a resume that ends where an
# uninterrupted search does (the killed process's search and run taken over
# at once); one process per search (two identical commands at once, a
# holder that is gone, live, or whose lease ran out); --early-stop ranker
# (stops, marks, resume, delta 0); --budget-hours with both evaluators; bad
# input.
se() { run search --db "$T/x.db" "$@"; }
"$GEN" --meta-runs "$T/runs.jsonl" 5 200 || bad "generating run records"
run ingest --db "$T/x.db" runs "$T/runs.jsonl"
expect_rc 0
best4=$(sql "SELECT max(r.valid_acc) FROM runs r JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'syn4'")

# run, table evaluator: every optimizer, every step recorded
for opt in xfer nao rea random; do
    se run --target syn4 --budget 15 --evaluator table --optimizer $opt --seed 2
    expect_rc 0
    expect_eq "$(wc -l <"$out")" 1 "$opt: result lines"
    grep -q "^{\"space\":\"nb201\",\"arch\":\"|.*\"dataset\":\"syn4\",.*\"optimizer\":\"$opt\",\"evaluator\":\"table\"" \
        "$out" && ok || bad "$opt: result record"
    id=$(sql "SELECT max(id) FROM searches")
    expect_eq "$(sql "SELECT optimizer, status FROM searches WHERE id = $id")" "$opt|done" "$opt: search row"
    expect_eq "$(sql "SELECT count(*), count(observed), count(run_id), count(DISTINCT arch_id), min(step), max(step)
        FROM search_steps WHERE search_id = $id")" "15|15|15|15|0|14" "$opt: steps"
    # observed is the target's record of the cell, the result the best of them
    expect_eq "$(sql "SELECT count(*) FROM search_steps s JOIN runs r ON r.id = s.run_id JOIN datasets d
        ON d.id = r.dataset_id WHERE s.search_id = $id AND d.name = 'syn4' AND r.arch_id = s.arch_id
        AND r.valid_acc = s.observed")" 15 "$opt: observations from the table"
    got=$(sed 's/.*"valid_acc":\([0-9.]*\).*/\1/' "$out")
    want=$(sql "SELECT max(observed) FROM search_steps WHERE search_id = $id")
    awk -v a="$got" -v b="$want" 'BEGIN { exit !(a - b < 1e-5 && b - a < 1e-5) }' && ok ||
        bad "$opt: printed best $got, recorded best $want"
    expect_eq "$(sql "SELECT count(*) FROM searches s JOIN search_steps p ON p.search_id = s.id AND
        p.arch_id = s.best_arch_id WHERE s.id = $id AND p.observed = $want")" 1 "$opt: best_arch_id"
    case $opt in
    xfer) expect_eq "$(sql "SELECT count(predicted) FROM search_steps WHERE search_id = $id")" 15 "xfer predictions" ;;
    nao) expect_eq "$(sql "SELECT count(predicted) FROM search_steps WHERE search_id = $id")" 10 "nao predictions" ;;
    *) expect_eq "$(sql "SELECT count(predicted) FROM search_steps WHERE search_id = $id")" 0 "$opt predictions" ;;
    esac
done
# the universal model was fitted once and stored with what it was fitted on
expect_eq "$(sql "SELECT count(*), json_array_length(min(fitted_on), '\$.tasks') FROM models")" "1|4" "stored model"
expect_eq "$(sql "SELECT model_id FROM searches WHERE optimizer = 'xfer'")" 1 "the search's model"
# xfer starts from the zero-shot top: on these tasks that is the best cell
first=$(sql "SELECT s.observed FROM search_steps s JOIN searches h ON h.id = s.search_id
    WHERE h.optimizer = 'xfer' AND s.step = 0")
awk -v a="$first" -v b="$best4" 'BEGIN { exit !(a > b - 0.01) }' && ok || bad "xfer's first cell $first, best $best4"

# the same command again: the finished search is printed, not repeated
cp "$out" "$T/first.out"
se run --target syn4 --budget 15 --evaluator table --optimizer random --seed 2
expect_rc 0
expect_eq "$(cat "$out")" "$(cat "$T/first.out")" "a finished search printed again"
grep -q "was finished before" "$err" && ok || bad "no note that the search was finished"
expect_eq "$(sql "SELECT count(*) FROM searches")" 4 "searches after a repeated command"
expect_eq "$(sql "SELECT count(*) FROM search_steps")" 60 "steps after a repeated command"

# one process per search: two identical commands started together make one
# search; the other says who runs it and writes nothing (no second model).
# A writer holds the database while they start, so both look for the search
# at the same moment (a look and an insert not in one transaction would
# both insert).
run ingest --db "$T/race.db" runs "$T/runs.jsonl"
expect_rc 0
race="run --target syn2 --budget 200 --evaluator table --optimizer xfer"
(echo "BEGIN IMMEDIATE;"; sleep 2; echo "COMMIT;") | sqlite3 "$T/race.db" &
lock=$!
sleep 0.5
"$BIN/xfer-search" --db "$T/race.db" $race >"$T/r1.out" 2>"$T/r1.err" </dev/null &
p1=$!
"$BIN/xfer-search" --db "$T/race.db" $race >"$T/r2.out" 2>"$T/r2.err" </dev/null &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
wait $lock
expect_eq "$(sqlite3 "$T/race.db" "SELECT count(*), min(status), count(worker) FROM searches")|$(sqlite3 "$T/race.db" \
    "SELECT count(*) FROM search_steps")|$(sqlite3 "$T/race.db" "SELECT count(*) FROM models")" "1|done|0|200|1" \
    "searches, steps and models after two identical commands at once"
if [ "$r1$r2" = 00 ] && grep -q "was finished before" "$T/r1.err" "$T/r2.err"; then
    echo "SKIP [$name] one search ended before the other command looked for it: nothing ran at once"
elif [ "$r1$r2" = 01 ] || [ "$r1$r2" = 10 ]; then
    [ "$r1" = 1 ] && lose=r1 win=$p2 || lose=r2 win=$p1
    err=$T/$lose.err out=$T/$lose.out
    expect_err_match "xfer-search: search 1 is being run by $(uname -n):$win:[0-9]* (lease until ????-??-??T??:??:??Z, 1[12]? s from now); not starting a second one"
    expect_out_empty
    err=$T/stderr out=$T/stdout
else
    bad "two identical commands at once exited $r1 and $r2: $(cat "$T/r1.err" "$T/r2.err" | grep -v '^xfer-search: [0-9]')"
fi

# a search whose holder is gone (its process on this host ended) is taken
# over at once; one a live process holds is refused, here or on another
# host, until its lease runs out
cp "$T/x.db" "$T/hold.db"
hold="run --target syn4 --budget 15 --evaluator table --optimizer rea --seed 5"
run search --db "$T/hold.db" $hold
expect_rc 0
cp "$out" "$T/hold.out"
hid=$(sqlite3 "$T/hold.db" "SELECT max(id) FROM searches")
unfinish() { # WORKER LEASE_FROM_NOW: the search back at 6 of 15 steps, held
    sqlite3 "$T/hold.db" "DELETE FROM search_steps WHERE search_id = $hid AND step >= 6;
        UPDATE searches SET status = 'running', finished_at = NULL, best_arch_id = NULL, worker = '$1',
        lease_until = strftime('%s', 'now') + $2 WHERE id = $hid"
}
sh -c 'exit 0' &
dead=$!
wait $dead
unfinish "$(uname -n):$dead:1" 3600
run search --db "$T/hold.db" $hold
expect_rc 0
expect_eq "$(cat "$out")" "$(cat "$T/hold.out")" "result after taking over from a process that is gone"
grep -q "^xfer-search: search $hid: taking it over from $(uname -n):$dead:1 (its process is gone)$" "$err" && ok ||
    bad "no takeover from a process that is gone"
grep -q "resumed: 6 of 15 done" "$err" && ok || bad "not resumed at step 6"
expect_eq "$(sqlite3 "$T/hold.db" "SELECT status, count(worker), count(lease_until) FROM searches WHERE id = $hid")" \
    "done|0|0" "the search let go when done"
for holder in "$(uname -n):$$:1" "elsewhere.example:4242:1"; do
    unfinish "$holder" 3600
    before=$(sqlite3 "$T/hold.db" "SELECT * FROM searches; SELECT * FROM search_steps")
    run search --db "$T/hold.db" $hold
    expect_rc 1
    expect_err_match "xfer-search: search $hid is being run by $holder (lease until ????-??-??T??:??:??Z, 3[56]?? s from now); not starting a second one"
    expect_out_empty
    expect_eq "$(sqlite3 "$T/hold.db" "SELECT * FROM searches; SELECT * FROM search_steps")" "$before" \
        "the store after a refused search ($holder)"
done
unfinish "elsewhere.example:4242:1" -5
run search --db "$T/hold.db" $hold
expect_rc 0
expect_eq "$(cat "$out")" "$(cat "$T/hold.out")" "result after taking over an expired lease"
grep -q "^xfer-search: search $hid: taking it over from elsewhere.example:4242:1 (its lease ran out)$" "$err" && ok ||
    bad "no takeover of an expired lease"
# a process whose search was taken over writes no further step
"$BIN/xfer-search" --db "$T/race.db" run --target syn3 --budget 200 --evaluator table --optimizer nao \
    >"$out" 2>"$err" </dev/null &
pid=$!
i=0
while [ "$(sqlite3 "$T/race.db" "SELECT count(*) FROM search_steps s JOIN searches h ON h.id = s.search_id
    WHERE h.optimizer = 'nao'" 2>/dev/null)" -lt 10 ] && [ $i -lt 600 ]; do
    sleep 0.05
    i=$((i + 1))
done
stolen=$(sqlite3 "$T/race.db" "UPDATE searches SET worker = 'elsewhere.example:4242:1' WHERE optimizer = 'nao'
    AND status = 'running'; SELECT changes(); SELECT count(*) FROM search_steps s JOIN searches h
    ON h.id = s.search_id WHERE h.optimizer = 'nao'" | tr '\n' ' ')
wait $pid
rc=$?
if [ "${stolen%% *}" = 1 ]; then
    expect_rc 1
    expect_eq "$(tail -n 1 "$err")" "xfer-search: search 2: lease lost (another process took it over); not writing" \
        "the last line of a search taken over"
    expect_eq "1 $(sqlite3 "$T/race.db" "SELECT count(*) FROM search_steps s JOIN searches h ON h.id = s.search_id
        WHERE h.optimizer = 'nao'") " "$stolen" "steps written after the search was taken over"
else
    echo "SKIP [$name] the nao search ended before it could be taken over"
fi

# --json: every evaluation, the best marked; constraints respected
lim=700000
se run --target syn4 --budget 12 --evaluator table --optimizer rea --max-params $lim --json
expect_rc 0
expect_eq "$(wc -l <"$out")" 12 "--json lines"
expect_eq "$(grep -c '"best":true' "$out")" 1 "best marks"
expect_eq "$(sed 's/.*"params":\([0-9]*\).*/\1/' "$out" | awk -v l=$lim '$1 > l' | wc -l)" 0 "cells over --max-params"
expect_eq "$(sed 's/.*"step":\([0-9]*\).*/\1/' "$out" | tr '\n' ' ')" "1 2 3 4 5 6 7 8 9 10 11 12 " "steps in order"

# the Pareto front: FLOPs up, accuracy up
se run --target syn4 --budget 20 --evaluator table --optimizer xfer --objectives acc,flops
expect_rc 0
[ "$(wc -l <"$out")" -ge 2 ] && ok || bad "a front of one cell"
sed 's/.*"flops":\([0-9]*\).*"valid_acc":\([0-9.]*\).*/\1 \2/' "$out" |
    awk 'NR > 1 && !($1 > f && $2 > a) { bad = 1 } { f = $1; a = $2 } END { exit bad }' && ok ||
    bad "front not ascending in FLOPs and accuracy"

# bench: shape of --json, CSV and SVG; xfer ahead of random after 10
se bench --target syn4 --budget 30 --repeats 4 --json --csv "$T/b.csv" --svg "$T/b.svg"
expect_rc 0
expect_eq "$(wc -l <"$out")" 90 "bench --json lines"
expect_eq "$(grep -c '^{"optimizer":"\(xfer\|rea\|random\)","evaluations":[0-9]*,"mean_best":[0-9.]*,"std_best":[0-9.]*,"mean_regret":-*[0-9.]*}$' "$out")" \
    90 "bench --json records"
for opt in xfer rea random; do
    grep "\"optimizer\":\"$opt\"" "$out" | sed 's/.*"mean_best":\([0-9.]*\),.*"mean_regret":\([-0-9.]*\)}/\1 \2/' |
        awk -v b="$best4" '$1 < prev - 1e-9 || ($1 + $2 - b)^2 > 1e-8 { bad = 1 } { prev = $1 } END { exit bad }' &&
        ok || bad "$opt: mean best falls, or regret is not the best recorded minus it"
done
x10=$(grep '"optimizer":"xfer","evaluations":10,' "$out" | sed 's/.*"mean_best":\([0-9.]*\),.*/\1/')
r10=$(grep '"optimizer":"random","evaluations":10,' "$out" | sed 's/.*"mean_best":\([0-9.]*\),.*/\1/')
awk -v x="$x10" -v r="$r10" 'BEGIN { exit !(x > r) }' && ok || bad "xfer $x10 not above random $r10 after 10"
expect_eq "$(head -n 1 "$T/b.csv")" "optimizer,evaluations,mean_best,std_best,mean_regret" "CSV header"
expect_eq "$(wc -l <"$T/b.csv")" 91 "CSV lines"
head -c 5 "$T/b.svg" | grep -q '^<svg ' && ok || bad "SVG start"
expect_eq "$(tail -n 1 "$T/b.svg")" "</svg>" "SVG end"
expect_eq "$(grep -c '<polyline ' "$T/b.svg")" 3 "SVG curves"
for opt in xfer rea random; do
    grep -q ">$opt</text>" "$T/b.svg" && ok || bad "SVG legend lacks $opt"
done
se bench --target syn4 --budget 500 --repeats 1 --optimizer random
expect_rc 0
grep -q "has 200 recorded nb201 cells: the budget is cut to 200" "$err" && ok || bad "budget over the table"

# the train evaluator on a tiny task, with source tasks under its protocol
"$GEN" --cifar10-tarball "$T/c10.tar.gz" 200 || bad "generating the task"
run ingest --db "$T/c.db" add "$T/c10.tar.gz" --name c
expect_rc 0
run train-meta --db "$T/c.db" plan --dataset c --protocol tiny --sample 1
recipe=$(sqlite3 "$T/c.db" "SELECT recipe FROM protocols WHERE name = 'tiny'")
sed "s|\"protocol\":{\"name\":\"synthetic\"}|\"protocol\":$recipe|" "$T/runs.jsonl" >"$T/runs-tiny.jsonl"
run ingest --db "$T/c.db" runs "$T/runs-tiny.jsonl"
expect_rc 0
clone() { cp "$T/c.db" "$T/$1.db" && cp -r "$T/c.db.tasks" "$T/$1.db.tasks"; }
steps() {
    sqlite3 "$1" "SELECT s.step, a.arch, s.predicted, s.observed, r.status FROM search_steps s
        JOIN archs a ON a.id = s.arch_id JOIN runs r ON r.id = s.run_id ORDER BY s.step"
}
srun="run --target c --budget 3 --protocol tiny --threads 1 --lease 1"
clone ref
run search --db "$T/ref.db" $srun
expect_rc 0
expect_eq "$(sqlite3 "$T/ref.db" "SELECT count(*) FROM search_steps s JOIN runs r ON r.id = s.run_id
    WHERE r.status = 'done' AND r.valid_acc = s.observed AND r.attempts = 1")" 3 "trained steps"
ref=$(steps "$T/ref.db")
ref_out=$(cat "$out")
clone kill
wait_steps() { # DB N: until the search has N steps (or 60 s)
    i=0
    while [ "$(sqlite3 "$1" "SELECT count(*) FROM search_steps" 2>/dev/null)" -lt "$2" ] && [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}
"$BIN/xfer-search" --db "$T/kill.db" $srun >"$out" 2>"$err" &
pid=$!
wait_steps "$T/kill.db" 1
kill -TERM $pid
wait $pid
rc=$?
if [ $rc -eq 0 ]; then
    echo "SKIP [$name] the search was done before SIGTERM"
else
    expect_rc 3
    tail -n 1 "$err" | grep -q "^xfer-search: interrupted after [0-9] evaluations: the same command resumes search 1$" &&
        ok || bad "no 'interrupted' line"
fi
# killed with leases of a minute: the resume takes the search and the run
# over at once (their process is gone), not when the leases run out
"$BIN/xfer-search" --db "$T/kill.db" $srun --lease 60 >"$out" 2>"$err" &
pid=$!
wait_steps "$T/kill.db" 2
sleep 0.3
kill -KILL $pid
wait $pid 2>/dev/null
expect_eq "$(sqlite3 "$T/kill.db" "SELECT count(*) FROM search_steps WHERE observed IS NULL")" 1 \
    "an unfinished step after SIGKILL"
killed_run=$(sqlite3 "$T/kill.db" "SELECT r.status FROM search_steps s JOIN runs r ON r.id = s.run_id
    WHERE s.observed IS NULL")
run search --db "$T/kill.db" $srun
expect_rc 0
grep -q "is held by another worker" "$err" && bad "the resume waited for the killed process's run lease" || ok
grep -q "^xfer-search: search 1: taking it over from $(uname -n):$pid:[0-9]* (its process is gone)$" "$err" && ok ||
    bad "the killed process's search not taken over"
if [ "$killed_run" = running ]; then
    grep -q "^xfer-search: run [0-9]*'s worker $(uname -n):$pid:[0-9]* is gone: taking the run over$" "$err" && ok ||
        bad "the killed process's run not taken over"
else
    echo "SKIP [$name] SIGKILL came while step 3's run was $killed_run: no run lease to take over"
fi
grep -q "resumed: 2 of 3 done" "$err" && ok || bad "not resumed at step 2"
expect_eq "$(steps "$T/kill.db")" "$ref" "steps after SIGTERM, SIGKILL and resume"
expect_eq "$(cat "$out")" "$ref_out" "result after SIGTERM, SIGKILL and resume"
expect_eq "$(sqlite3 "$T/kill.db" "SELECT count(*) FROM searches")" 1 "searches after the resume"
expect_eq "$(sqlite3 "$T/kill.db" "SELECT count(*) FROM runs r JOIN datasets d ON d.id = r.dataset_id
    WHERE d.name = 'c' AND r.status = 'done'")" "$(sqlite3 "$T/ref.db" "SELECT count(*) FROM runs r
    JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'c' AND r.status = 'done'")" "runs trained"
[ "$(sqlite3 "$T/kill.db" "SELECT max(attempts) FROM runs")" -gt 1 ] && ok || bad "no run was cut: the kill tested nothing"
# killed after a run finished, before its observation was written: read, not retrained
sqlite3 "$T/ref.db" "UPDATE search_steps SET observed = NULL WHERE step = 2;
    UPDATE searches SET status = 'running', finished_at = NULL, best_arch_id = NULL"
run search --db "$T/ref.db" $srun
expect_rc 0
expect_eq "$(steps "$T/ref.db")" "$ref" "steps after a lost observation"
expect_eq "$(cat "$out")" "$ref_out" "result after a lost observation"
expect_eq "$(sqlite3 "$T/ref.db" "SELECT max(attempts) FROM runs")" 1 "runs trained again for a lost observation"

# --early-stop ranker: without a ranker nothing is planned or trained
clone es
runs_c() { sqlite3 "$1" "SELECT count(*) FROM runs r JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'c'"; }
nc=$(runs_c "$T/es.db")
run search --db "$T/es.db" $srun --early-stop ranker --delta 0.5
expect_rc 1
expect_err_line "xfer-search: no fitted nb201 ranker in '$T/es.db' (run 'xfer-predict fit --space nb201' on runs with curves of 3 epochs or more first)"
expect_eq "$(sqlite3 "$T/es.db" "SELECT count(*) FROM searches")|$(runs_c "$T/es.db")" "0|$nc" "searches and runs without a ranker"
run search --db "$T/es.db" run --target c --budget 3 --evaluator table --early-stop ranker --delta 0.5
expect_rc 2
expect_err_line "xfer-search: --early-stop needs the train evaluator (recorded accuracies are not trained) (see 'xfer-search --help')"
run search --db "$T/es.db" $srun --delta 0.5
expect_rc 2
expect_err_line "xfer-search: --delta needs --early-stop ranker (see 'xfer-search --help')"
# a ranker fitted on the sources' curves (under the tiny protocol)
run predict --db "$T/es.db" fit --space nb201 --target c --epochs 5 --ranker-steps 400
expect_rc 0
cp "$T/es.db" "$T/es0.db" && cp -r "$T/es.db.tasks" "$T/es0.db.tasks"
cp "$T/es.db" "$T/esk.db" && cp -r "$T/es.db.tasks" "$T/esk.db.tasks"
# a permissive delta: every proposal after the first stops at epoch 1 or 2
# of 3, its step keeps the run's last accuracy, marked, never the best
esrun="$srun --early-stop ranker --delta 1 --json"
run search --db "$T/es.db" $esrun
expect_rc 0
nt=$(sqlite3 "$T/es.db" "SELECT count(*) FROM search_steps WHERE terminated_early = 1")
[ "$nt" -ge 1 ] && ok || bad "no step stopped early with delta 1"
expect_eq "$(sqlite3 "$T/es.db" "SELECT count(*) FROM search_steps s JOIN runs r ON r.id = s.run_id
    WHERE s.terminated_early = 1 AND r.status = 'terminated-early' AND r.valid_acc = s.observed
    AND r.epochs_done IN (1, 2)")" "$nt" "stopped steps with their run's last accuracy"
expect_eq "$(sqlite3 "$T/es.db" "SELECT count(*) FROM search_steps s JOIN runs r ON r.id = s.run_id
    WHERE s.terminated_early = 0 AND r.status = 'done'")" "$((3 - nt))" "steps trained to the end"
expect_eq "$(wc -l <"$out")" 3 "--json lines with early stops (the budget counts them)"
expect_eq "$(grep -c '"terminated_early":true' "$out")" "$nt" "terminated_early marks"
expect_eq "$(grep -c '"terminated_early":true.*"best":true' "$out")" 0 "a stopped step marked best"
expect_eq "$(grep -c '"best":true' "$out")" 1 "best marks with early stops"
expect_eq "$(sqlite3 "$T/es.db" "SELECT count(*) FROM searches h JOIN search_steps s ON s.search_id = h.id
    AND s.arch_id = h.best_arch_id WHERE s.terminated_early = 0")" 1 "best_arch_id not a stopped step"
expect_eq "$(grep -c "^xfer-search: run [0-9]* stopped early: p(beats run [0-9]*, valid [0-9.]*) = [0-9.e-]* < 1 at epoch [12] of 3$" "$err")" \
    "$nt" "stop log lines"
grep -q "^xfer-search: early stop: ranker model [0-9]*, proposals below p 1 of beating the best from epoch 1$" "$err" &&
    ok || bad "early stop announced"
es_ref=$(steps "$T/es.db")
es_out=$(cat "$out")
# the same command again: printed, not trained again
run search --db "$T/es.db" $esrun
expect_rc 0
expect_eq "$(cat "$out")" "$es_out" "a finished early-stop search printed again"
# killed mid-search and resumed: the same steps, stops and result
# (killed while the third step trains, so the resume has it to finish)
"$BIN/xfer-search" --db "$T/esk.db" $esrun >"$out" 2>"$err" &
pid=$!
wait_steps "$T/esk.db" 3
kill -KILL $pid
wait $pid 2>/dev/null
open_steps=$(sqlite3 "$T/esk.db" "SELECT count(*) FROM search_steps WHERE observed IS NULL")
run search --db "$T/esk.db" $esrun
expect_rc 0
if [ "$open_steps" = 1 ]; then
    grep -q "^xfer-search: step 3's run [0-9]* has no result yet: finishing it$" "$err" && ok ||
        bad "early-stop search: step 3 not finished on resume"
else
    echo "SKIP [$name] the early-stop search ended its third step before SIGKILL: no resume to test"
fi
expect_eq "$(steps "$T/esk.db")" "$es_ref" "early-stop steps after SIGKILL and resume"
expect_eq "$(cat "$out")" "$es_out" "early-stop result after SIGKILL and resume"
expect_eq "$(sqlite3 "$T/esk.db" "SELECT group_concat(terminated_early) FROM search_steps ORDER BY step")" \
    "$(sqlite3 "$T/es.db" "SELECT group_concat(terminated_early) FROM search_steps ORDER BY step")" "marks after the resume"
# delta 0 stops nothing
run search --db "$T/es0.db" $srun --early-stop ranker --delta 0 --json
expect_rc 0
expect_eq "$(sqlite3 "$T/es0.db" "SELECT count(*), sum(s.terminated_early), sum(r.status = 'done') FROM search_steps s
    JOIN runs r ON r.id = s.run_id")" "3|0|3" "steps with delta 0"
expect_eq "$(grep -c terminated_early "$out")" 0 "terminated_early marks with delta 0"

# --budget-hours: the table evaluator counts the looked-up runs' recorded
# seconds (360 s each here), alone or with --budget (whichever ends first)
cp "$T/x.db" "$T/h.db"
sqlite3 "$T/h.db" "UPDATE runs SET seconds = 360 WHERE dataset_id = (SELECT id FROM datasets WHERE name = 'syn4')"
hsteps() { sqlite3 "$T/h.db" "SELECT count(*) FROM search_steps WHERE search_id = (SELECT max(id) FROM searches)"; }
run search --db "$T/h.db" run --target syn4 --budget-hours 0.95 --evaluator table --optimizer random --seed 3 --json
expect_rc 0
expect_eq "$(hsteps)|$(wc -l <"$out")" "10|10" "steps with --budget-hours 0.95 of 0.1 h lookups"
grep -q "^xfer-search: the runs took 3600.0 s of --budget-hours 0.95: stopping after 10 evaluations$" "$err" && ok ||
    bad "hours budget not said"
run search --db "$T/h.db" run --target syn4 --budget 5 --budget-hours 0.95 --evaluator table --optimizer random --seed 3
expect_rc 0
expect_eq "$(hsteps)" 5 "steps with --budget 5 before the hours"
run search --db "$T/h.db" run --target syn4 --budget 30 --budget-hours 0.95 --evaluator table --optimizer random --seed 3
expect_rc 0
expect_eq "$(hsteps)" 10 "steps with the hours before --budget 30"
run search --db "$T/x.db" run --target syn4 --budget-hours 1 --evaluator table
expect_rc 1
expect_err_match "xfer-search: --budget-hours: target 'syn4' has no recorded seconds under protocol 'synthetic' (*): the table evaluator cannot count hours (give --budget K)"
run search --db "$T/x.db" run --target syn4 --budget-hours 0 --evaluator table
expect_rc 2
expect_err_line "xfer-search: --budget-hours: '0' is not a number in 1e-06..1e+06"
# the train evaluator: the trained runs' seconds; it stops at the first
# evaluation that reaches the hours, before --budget 6
clone bh
run search --db "$T/bh.db" run --target c --budget 6 --budget-hours 0.0005 --protocol tiny --threads 1 --lease 1
expect_rc 0
sqlite3 "$T/bh.db" "SELECT r.seconds FROM search_steps s JOIN runs r ON r.id = s.run_id WHERE r.status = 'done'
    ORDER BY s.step" | awk -v h=1.8 '{ prev = sum; sum += $1; n++ }
    END { exit !(n >= 1 && n < 6 && sum >= h && prev < h) }' && ok ||
    bad "train steps not stopped at the first that reaches 1.8 s: $(sqlite3 "$T/bh.db" "SELECT group_concat(r.seconds)
        FROM search_steps s JOIN runs r ON r.id = s.run_id")"
expect_eq "$(sqlite3 "$T/bh.db" "SELECT count(*) FROM search_steps s JOIN runs r ON r.id = s.run_id
    WHERE r.status != 'done'")" 0 "unfinished steps after --budget-hours"

# bad input: one line each, no search row left behind
before=$(sql "SELECT count(*) FROM searches")
se run --target nope --budget 5 --evaluator table
expect_rc 1
expect_err_line "xfer-search: unknown target 'nope' in '$T/x.db' ('xfer-ingest list' shows the stored datasets)"
se run --target syn4 --budget 0
expect_rc 2
expect_err_line "xfer-search: --budget: '0' is not an integer in 1..1000000"
se bench --target syn4 --budget -3
expect_rc 2
expect_err_line "xfer-search: --budget: '-3' is not an integer in 1..1000000"
se run --target syn4 --budget 5 --evaluator table --max-params 1000
expect_rc 1
expect_err_match "xfer-search: none of the 200 recorded nb201 cells satisfies --max-params 1000 (the smallest has * params and * FLOPs at C 16, N 5)"
run search --db "$T/c.db" run --target c --budget 5 --protocol tiny --max-flops 10 --max-params 10
expect_rc 1
expect_err_match "xfer-search: no nb201 cell satisfies --max-params 10 and --max-flops 10 (the smallest has *)"
se run --target syn4 --budget 5 --optimizer bayes
expect_rc 2
expect_err_line "xfer-search: --optimizer: unknown optimizer 'bayes' (valid: xfer, nao, rea, random)"
se bench --target syn4 --budget 5 --optimizer rea,rea
expect_rc 2
expect_err_line "xfer-search: --optimizer: 'rea' is listed twice"
se run --target syn4 --budget 5 --evaluator oracle
expect_rc 2
expect_err_line "xfer-search: --evaluator: 'oracle' is not train or table"
se run --target syn4 --budget 5
expect_rc 1
expect_err_match "xfer-search: protocol 'synthetic' (20627fedd957) is an imported record without a training recipe*"
run search --db "$T/c.db" run --target c --budget 5 --evaluator table --protocol tiny
expect_rc 1
expect_err_match "xfer-search: target 'c' has no finished nb201 runs under protocol 'tiny' (*): the table evaluator looks its accuracies up there"
run search --db "$T/c.db" run --target syn0 --budget 5 --protocol tiny
expect_rc 1
expect_err_match "xfer-search: target 'syn0' is a virtual task (imported records): it cannot be trained*"
expect_eq "$(sql "SELECT count(*) FROM searches")" "$before" "searches after bad input"
# a target with no source metadata: said, and nao only when allowed
run ingest --db "$T/one.db" runs "$T/runs.jsonl"
sqlite3 "$T/one.db" "DELETE FROM curves; DELETE FROM runs WHERE dataset_id != (SELECT id FROM datasets WHERE name = 'syn0')"
run search --db "$T/one.db" run --target syn0 --budget 6 --evaluator table
expect_rc 1
expect_err_line "xfer-search: no source tasks to transfer to 'syn0' from: no other task has 10 finished nb201 runs under protocol 'synthetic' (20627fedd957) (--allow-no-transfer searches with nao, on the target alone)"
expect_eq "$(sqlite3 "$T/one.db" "SELECT count(*) FROM searches")" 0 "searches after no sources"
run search --db "$T/one.db" run --target syn0 --budget 6 --evaluator table --allow-no-transfer
expect_rc 0
grep -q '"optimizer":"nao"' "$out" && ok || bad "no nao fallback"
grep -q "no source tasks to transfer to 'syn0' from: searching with nao" "$err" && ok || bad "fallback not said"
run search --db "$T/one.db" bench --target syn0 --budget 6 --repeats 2
expect_rc 1
expect_err_match "xfer-search: no source tasks to transfer to 'syn0' from*"
