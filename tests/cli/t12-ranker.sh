# The learning-curve ranker's tooling: xfer-predict fit stores a ranker next
# to the transfer predictor, curves ranks partial curves from the store and
# from a pipe, eval reports early termination over stored curves, and
# xfer-train-meta --early-stop ranker stops runs (terminated-early, never
# trained again). Synthetic meta-runs (6-epoch curves) teach the ranker; a
# 900-image task trains for real under the tiny protocol.
pr() { run predict --db "$T/x.db" "$@"; }
tm() { run train-meta --db "$T/x.db" "$@"; }
plan="--dataset c --protocol tiny --set epochs=4"
es="--early-stop ranker --min-epochs 2"
"$GEN" --meta-runs "$T/runs.jsonl" 4 60 || bad "generating run records"
"$GEN" --cifar10-tarball "$T/c10.tar.gz" 200 || bad "generating the task"
run ingest --db "$T/x.db" runs "$T/runs.jsonl"
expect_rc 0
run ingest --db "$T/x.db" add "$T/c10.tar.gz" --name c
expect_rc 0
runs_of_c() { sql "SELECT $1 FROM runs r WHERE r.dataset_id = (SELECT id FROM datasets WHERE name = 'c') ${2:-}"; }

# without a ranker nothing is planned or trained; and bad options
tm run $plan --sample 2 $es --delta 0.1 --threads 1
expect_rc 1
expect_err_line "xfer-train-meta: no fitted nb201 ranker in '$T/x.db' (run 'xfer-predict fit --space nb201' on runs with curves of 3 epochs or more first)"
expect_eq "$(runs_of_c 'count(*)')" 0 "runs planned without a ranker"
tm work --delta 0.1
expect_rc 2
expect_err_line "xfer-train-meta: --delta needs --early-stop ranker (see 'xfer-train-meta --help')"
tm work --early-stop oracle --delta 0.1
expect_rc 2
expect_err_line "xfer-train-meta: --early-stop: unknown method 'oracle' (valid: ranker)"
tm work --early-stop ranker
expect_rc 2
expect_err_line "xfer-train-meta: --early-stop ranker needs --delta D (see 'xfer-train-meta --help')"

# fit: --no-ranker stores the transfer predictor alone, by default a ranker
# comes with it (fitted_on: protocol, datasets with their embedding index)
pr fit --space nb201 --epochs 5 --no-ranker
expect_rc 0
expect_eq "$(sql "SELECT group_concat(kind) FROM models")" xfer "models after --no-ranker"
pr fit --space nb201 --epochs 5 --ranker-steps 400 --json
expect_rc 0
expect_eq "$(sql "SELECT kind, json_extract(fitted_on, '\$.protocol'), json_extract(fitted_on, '\$.runs'),
    json_extract(fitted_on, '\$.epochs'), json_array_length(fitted_on, '\$.datasets'),
    json_extract(fitted_on, '\$.datasets[3].name'), json_extract(fitted_on, '\$.datasets[3].index')
    FROM models WHERE id = 3")" "ranker|synthetic|240|6|4|syn3|3" "stored ranker"
grep -q '"ranker":{"datasets":\[{"epochs":6,"index":0,"name":"syn0","runs":60},.*"model":3,' "$out" && ok ||
    bad "ranker in the fit summary"
# an ensemble of rankers: its member count in the stored config, and
# curves reads it back; a count out of range is a usage error
run ingest --db "$T/m2.db" runs "$T/runs.jsonl"
run predict --db "$T/m2.db" fit --space nb201 --epochs 5 --ranker-steps 100 --ranker-members 2
expect_rc 0
expect_eq "$(sqlite3 "$T/m2.db" "SELECT json_extract(config, '\$.members') FROM models WHERE kind = 'ranker'")" 2 \
    "members in the stored config"
run predict --db "$T/m2.db" curves --dataset syn3
expect_rc 0
expect_eq "$(grep -c '"p_beats_best":' "$out")" 60 "curves from a two-member ranker"
p2=$(sed 's/.*"p_beats_best":\([^,}]*\).*/\1/' "$out")
# the second member counts: one member of the same seed answers otherwise
run predict --db "$T/m2.db" fit --space nb201 --epochs 5 --ranker-steps 100 --ranker-members 1
expect_rc 0
run predict --db "$T/m2.db" curves --dataset syn3
expect_rc 0
expect_eq "$(grep -c '"p_beats_best":' "$out")" 60 "curves from a one-member ranker"
[ "$(sed 's/.*"p_beats_best":\([^,}]*\).*/\1/' "$out")" != "$p2" ] && ok ||
    bad "two members answer as one"
run predict --db "$T/m2.db" fit --space nb201 --ranker-members 17
expect_rc 2
expect_err_line "xfer-predict: --ranker-members: '17' is not an integer in 1..16"
# curves shorter than 3 epochs: no ranker, said on stderr
run ingest --db "$T/short.db" runs "$T/runs.jsonl"
sqlite3 "$T/short.db" "DELETE FROM curves WHERE epoch > 2"
run predict --db "$T/short.db" fit --space nb201 --epochs 2
expect_rc 0
grep -q "^xfer-predict: no ranker: no task has two finished runs with curves of 3 epochs or more" "$err" && ok ||
    bad "no ranker message"
expect_eq "$(sqlite3 "$T/short.db" "SELECT group_concat(kind) FROM models")" xfer "models from short curves"
run predict --db "$T/short.db" curves --dataset syn0
expect_rc 1
expect_err_line "xfer-predict: no fitted nb201 ranker in '$T/short.db' (run 'xfer-predict fit --space nb201' on runs with curves of 3 epochs or more first)"

# eval: early termination over syn3's curves with a ranker fitted on the
# other tasks, at each delta, and the curve-below-best baseline
pr eval --holdout syn3 --k 0 --epochs 5 --ranker-steps 400 --repeats 2 --json
expect_rc 0
expect_eq "$(grep -c '^{"holdout":"syn3","method":"ranker","delta":[0-9.e-]*,"time_saved":[0-9.]*,"regret":[0-9.-]*,' "$out")" 7 \
    "ranker rows"
grep -q '^{"holdout":"syn3","method":"curve-below-best","delta":null,"time_saved":' "$out" && ok || bad "baseline row"
awk -F'"time_saved":' '/"method":"ranker"/ { split($2, a, ","); if (a[1] < 1) b = 1; n++ } END { exit b || n != 7 }' "$out" &&
    ok || bad "time saved below 1x"
# how early the curves tell: a line per epoch (6); the fixture's curves
# foretell the final accuracy from the start: the curve's Spearman is above
# 0.99 at every epoch, and the ranker's above 0.9
expect_eq "$(grep -c '^{"holdout":"syn3","method":"epoch-spearman","epoch":[1-6],"curve":[-0-9.]*,"ranker":[-0-9.]*,"runs":60}$' "$out")" 6 \
    "epoch-spearman rows"
awk -F'"curve":|"ranker":' '/"epoch-spearman"/ { split($2, a, ","); split($3, r, ",")
    if (a[1] < 0.99 || r[1] < 0.9) b = 1 } END { exit b }' "$out" && ok ||
    bad "the curve's Spearman below 0.99 or the ranker's below 0.9"
pr eval --holdout syn3 --k 0 --epochs 5 --ranker-steps 400 --repeats 2 --deltas 0 --json
expect_rc 0
grep -q '"method":"ranker","delta":0,"time_saved":1.000,"regret":0.0000,"stopped":0.0000,' "$out" && ok ||
    bad "delta 0 stops something"
# list options: each value checked, at most 16 of them
pr eval --holdout syn3 --k 0,x
expect_rc 2
expect_err_line "xfer-predict: --k: 'x' is not an integer in 0..1048576"
pr eval --holdout syn3 --deltas 0.1,2
expect_rc 2
expect_err_line "xfer-predict: --deltas: '2' is not a number in 0..1"
pr eval --holdout syn3 --deltas 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0
expect_rc 2
expect_err_line "xfer-predict: --deltas: at most 16 values"
pr eval --holdout syn3 --k 0 --epochs 5 --ranker-steps 400 --repeats 1 --deltas 0.05
expect_rc 0
grep -q "^early termination: 60 runs of 'syn3'" "$out" && grep -q '^ranker  *0.05  *[0-9.]*x ' "$out" && ok ||
    bad "ranker rows in the table"

# curves from the store: each done run of syn3 against the best one
pr curves --dataset syn3
expect_rc 0
best=$(sql "SELECT r.id FROM runs r JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'syn3'
    ORDER BY r.valid_acc DESC, r.id LIMIT 1")
expect_eq "$(grep -c "\"status\":\"done\",\"epochs\":6,.*\"p_beats_best\":[0-9.e-]*,\"best_run\":$best,\"best_acc\":" "$out")" 60 \
    "store curves"

# train-meta: the first run trains to the end (the best so far)
tm plan $plan --sample 6 --seed 3
expect_rc 0
tm work --threads 1 --max-runs 1
expect_rc 0
cp "$T/x.db" "$T/zero.db"
# a permissive delta stops runs at epoch 2 or 3: kept with their curve so far
tm work --threads 1 $es --delta 1
expect_rc 0
stopped=$(runs_of_c 'count(*)' "AND status = 'terminated-early'")
[ "$stopped" -ge 1 ] && ok || bad "no run stopped with delta 1"
expect_eq "$(runs_of_c 'count(*)' "AND status IN ('done', 'terminated-early')")" 6 "runs ended"
expect_eq "$(grep -c '"status":"terminated-early"' "$out")" "$stopped" "JSON lines of stopped runs"
grep -q "^xfer-train-meta: early stop: ranker model 3, runs below p 1 of beating their best from epoch 2$" "$err" && ok ||
    bad "early stop announced"
expect_eq "$(grep -c "^xfer-train-meta: run [0-9]* stopped early (.* on c, seed 0): p(beats run [0-9]*, valid [0-9.]*) = [0-9.e-]* < 1 at epoch [23] of 4$" "$err")" \
    "$stopped" "stop log lines"
grep -q "^xfer-train-meta: [0-9]* runs done, 0 failed, $stopped stopped early$" "$err" && ok || bad "work summary"
expect_eq "$(runs_of_c 'count(*)' "AND status = 'terminated-early' AND (epochs_done NOT IN (2, 3) OR test_acc IS NOT NULL
    OR valid_acc != (SELECT valid_acc FROM curves WHERE run_id = r.id AND epoch = r.epochs_done)
    OR (SELECT count(*) FROM curves WHERE run_id = r.id) != epochs_done OR error NOT LIKE 'p(beats run %')")" 0 \
    "stopped runs without their curve or last accuracy"
expect_eq "$(ls "$T/x.db.ckpt" | wc -l)" 0 "checkpoints left"

# never trained again: work and the pipe form over the same plan change nothing
before=$(runs_of_c "id, status, attempts, epochs_done, valid_acc, finished_at" "ORDER BY id")
tm work --threads 1
expect_rc 0
expect_out_empty
expect_err_line "xfer-train-meta: 0 runs done, 0 failed"
tm run $plan --sample 6 --seed 3 --threads 1 $es --delta 1
expect_rc 0
expect_eq "$(grep -c '"status":"terminated-early"' "$out")" "$stopped" "stopped runs printed by run"
expect_eq "$(runs_of_c "id, status, attempts, epochs_done, valid_acc, finished_at" "ORDER BY id")" "$before" \
    "runs after work and run again"

# delta 0: p < 0 never holds, every run trains to the end
tm --db "$T/zero.db" work --threads 1 $es --delta 0
expect_rc 0
expect_eq "$(sqlite3 "$T/zero.db" "SELECT group_concat(status) FROM (SELECT DISTINCT status FROM runs r
    JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'c')")" done "statuses with delta 0"
grep -q "^xfer-train-meta: 5 runs done, 0 failed, 0 stopped early$" "$err" && ok || bad "delta 0 summary"

# the pipe form: input fields kept, the run stopped early
printf '%s\n' '{"arch":"|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|","tag":"p"}' >"$T/in.jsonl"
"$BIN/xfer-train-meta" --db "$T/x.db" run $plan --threads 1 $es --delta 1 <"$T/in.jsonl" >"$T/run.jsonl" 2>"$err"
rc=$?
expect_rc 0
grep -q '^{"arch":"|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|","tag":"p",.*"status":"terminated-early",.*"curve":\[{"epoch":1,.*{"epoch":2,' \
    "$T/run.jsonl" && ok || bad "pipe output: $(cat "$T/run.jsonl")"

# curves on a pipe: train-meta's records ranked against c's best run, their
# fields kept; bad lines reported by number, the others ranked
best=$(runs_of_c 'id' "AND status = 'done' ORDER BY valid_acc DESC, id LIMIT 1")
{
    cat "$T/run.jsonl"
    echo 'not json'
    sed 's/"dataset":"c"/"dataset":"nope"/' "$T/run.jsonl"
    sed 's/"curve":\[.*\]/"curve":[{"epoch":2,"valid_acc":0.1}]/' "$T/run.jsonl"
} >"$T/curves.jsonl"
"$BIN/xfer-predict" --db "$T/x.db" curves <"$T/curves.jsonl" >"$out" 2>"$err"
rc=$?
expect_rc 1
expect_eq "$(wc -l <"$out")" 1 "ranked lines"
grep -q "^{\"arch\":.*\"tag\":\"p\",.*\"status\":\"terminated-early\",.*\"p_beats_best\":[0-9.e-]*,\"best_run\":$best,\"best_acc\":[0-9.]*}$" "$out" &&
    ok || bad "p_beats_best on the pipe"
grep -q "^xfer-predict: stdin:2: not a JSON object$" "$err" && ok || bad "bad line 2 not reported"
grep -q "^xfer-predict: stdin:3: unknown dataset 'nope' in '$T/x.db'$" "$err" && ok || bad "bad line 3 not reported"
grep -q '^xfer-predict: stdin:4: curve point 1: "epoch" is not 1' "$err" && ok || bad "bad line 4 not reported"
tail -n 1 "$err" | grep -q "^xfer-predict: 3 bad input lines (reported above; the others were ranked)$" && ok ||
    bad "bad line summary"
