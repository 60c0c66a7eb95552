# xfer-predict on a synthetic meta-dataset (gen-fixtures --meta-runs: five
# tasks sharing most of what makes an arch good): fit and store a model,
# score archs from stdin and sampled ones, the similarity-weighted
# zero-shot, leave-one-task-out evaluation, and bad input.
pr() { run predict --db "$T/x.db" "$@"; }
"$GEN" --meta-runs "$T/runs.jsonl" 5 200 || bad "generating run records"
run ingest --db "$T/x.db" runs "$T/runs.jsonl"
expect_rc 0

# fit on four tasks, with syn4's evaluations as the target's residual
pr fit --space nb201 --sources syn0,syn1,syn2,syn3 --target syn4 --epochs 30 --json
expect_rc 0
expect_eq "$(sqlite3 "$T/x.db" "SELECT count(*), min(kind), min(space) FROM models WHERE kind != 'ranker'")" "1|xfer|nb201" \
    "stored model"
grep -q '"model":1,.*"target":{"mean":[0-9.]*,"name":"syn4","runs":200' "$out" && ok || bad "fit summary"
expect_eq "$(sqlite3 "$T/x.db" "SELECT json_array_length(fitted_on, '\$.tasks') FROM models WHERE kind = 'xfer'")" 4 \
    "source tasks"

# score: fields kept, pred added; a bad line reported by number
printf '%s\n' '{"arch":"|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|","id":1}' \
    '{"arch":"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|","id":2}' '{"arch":"|nope~0|"}' >"$T/in.jsonl"
"$BIN/xfer-predict" --db "$T/x.db" score --dataset syn4 <"$T/in.jsonl" >"$out" 2>"$err"
rc=$?
expect_rc 1
expect_eq "$(wc -l <"$out")" 2 "scored lines"
grep -q "^xfer-predict: stdin:3: invalid nb201 arch" "$err" && ok || bad "bad line 3 not reported"
p1=$(sed -n 1p "$out" | sed 's/.*"pred":\([0-9.e-]*\).*/\1/')
p2=$(sed -n 2p "$out" | sed 's/.*"pred":\([0-9.e-]*\).*/\1/')
grep -q '"id":1' "$out" && ok || bad "input field lost"
awk -v a="$p1" -v b="$p2" 'BEGIN { exit !(a > b + 0.1) }' && ok || bad "all-conv cell ($p1) not above the empty cell ($p2)"

# sampled and ranked: the best predicted cells first, as many as asked
pr score --dataset syn4 --sample 300 --seed 3 --top 5
expect_rc 0
expect_eq "$(wc -l <"$out")" 5 "top lines"
awk -F'"pred":' '{ split($2, a, /[,}]/); if (NR > 1 && a[1] > prev) bad = 1; prev = a[1] } END { exit bad }' "$out" &&
    ok || bad "top K not in order"
# a task with no evaluations at all: zero-shot, said on stderr
run ingest --db "$T/x.db" add "$FX/idx/mnist" --name fresh
pr score --dataset fresh --sample 10
expect_rc 0
grep -q "zero-shot" "$err" && ok || bad "zero-shot not announced"

# the similarity-weighted zero-shot: imported tasks record no meta-features,
# so the weights are uniform (said); with features recorded, softmax of
# minus the standardised distance: syn0 (syn4's twin) weighs most
pr score --dataset fresh --sample 10 --zero-shot weighted
expect_rc 0
grep -q "^xfer-predict: 'fresh': no meta-feature (classes, height, width, channels, n_train, probes) is recorded for it and every source with different values among them: uniform weights over the sources$" \
    "$err" && ok || bad "uniform weights not said"
pr score --dataset syn4 --sample 20 --seed 3 --zero-shot gu
expect_rc 0
grep -q "^xfer-predict: 'syn4': zero-shot from the universal predictor (--zero-shot gu)$" "$err" && ok ||
    bad "--zero-shot gu not said"
cp "$out" "$T/gu.out"
sqlite3 "$T/x.db" "UPDATE datasets SET classes = 10, height = 28, width = 28, channels = 1, n_train = 6000
    WHERE name IN ('syn0', 'syn4');
    UPDATE datasets SET classes = 100, height = 32, width = 32, channels = 3, n_train = 50000 WHERE name IN ('syn1', 'syn2');
    UPDATE datasets SET meta = '{\"classes\":10,\"height\":32,\"width\":32,\"channels\":3,\"n_train\":50000}'
    WHERE name = 'syn3'"
pr score --dataset syn4 --sample 20 --seed 3 --zero-shot weighted
expect_rc 0
expect_eq "$(head -n 1 "$err")" \
    "xfer-predict: 'syn4': source weights by dataset similarity (classes, height, width, channels, n_train): syn0 0.748, syn1 0.079, syn2 0.079, syn3 0.095" \
    "similarity weights"
expect_eq "$(grep -c '"pred":[0-9.e-]*,"pred_std":' "$out")" 20 "weighted zero-shot lines"
expect_eq "$(sed 's/,"pred".*//' "$out")" "$(sed 's/,"pred".*//' "$T/gu.out")" "the same archs"
[ "$(cat "$out")" != "$(cat "$T/gu.out")" ] && ok || bad "weighted predictions equal g_u's"
pr score --dataset syn4 --sample 1 --zero-shot all
expect_rc 2
expect_err_line "xfer-predict: --zero-shot: 'all' is not gu or weighted"

# leave one task out: the transfer predictor ranks syn4 better than params
pr eval --holdout syn4 --k 0,20 --repeats 2 --epochs 30 --json --no-ranker
expect_rc 0
expect_eq "$(grep -c '"method":"xfer","k":' "$out")" 2 "xfer rows"
x0=$(grep '"method":"xfer","k":0,' "$out" | sed 's/.*"spearman":\([0-9.-]*\).*/\1/')
p0=$(grep '"method":"params","k":0,' "$out" | sed 's/.*"spearman":\([0-9.-]*\).*/\1/')
awk -v x="$x0" -v p="$p0" 'BEGIN { exit !(x > 0.8 && x > p) }' && ok || bad "zero-shot spearman $x0 (params $p0)"
grep -q '"method":"target-only","k":20,' "$out" && ok || bad "no target-only baseline at k = 20"
# the similarity-weighted zero-shot: a row at k = 0 only, above params
expect_eq "$(grep -c '"method":"xfer-weighted",' "$out")" 1 "xfer-weighted rows"
w0=$(grep '"method":"xfer-weighted","k":0,' "$out" | sed 's/.*"spearman":\([0-9.-]*\).*/\1/')
awk -v x="$w0" -v p="$p0" 'BEGIN { exit !(x > 0.8 && x > p) }' && ok || bad "weighted zero-shot spearman $w0 (params $p0)"
grep -q "^xfer-predict: 'syn4': source weights by dataset similarity (classes, height, width, channels, n_train): syn0 0.748, syn1 0.079, syn2 0.079, syn3 0.095$" \
    "$err" && ok || bad "eval's similarity weights"

# probe networks: trained on a stored task once, then read; their error
# rates join the similarity features when the target and every source have
# them; they travel with an export of the runs
run train-meta --db "$T/x.db" probe --dataset fresh --threads 1
expect_rc 1
expect_err_line "xfer-train-meta: dataset 'fresh': probe conv3: 20 training images are fewer than one batch of 64"
"$GEN" --cifar10-tarball "$T/c10.tar.gz" 200 || bad "generating the task"
run ingest --db "$T/x.db" add "$T/c10.tar.gz" --name c
run train-meta --db "$T/x.db" probe --dataset c --threads 1
expect_rc 0
probes='"probes":{"recipe":"[0-9a-f]\{12\}","conv3":[0-9.]*,"conv1":[0-9.]*,"pool":[0-9.]*,"skip":[0-9.]*}'
grep -q "^{\"dataset\":\"c\",$probes,\"stored\":false," "$out" && ok || bad "probe line: $(cat "$out")"
expect_eq "$(grep -c "^xfer-train-meta: 'c': probe [a-z0-9]*: valid_acc 0\.[0-9]*$" "$err")" 4 "probe progress lines"
first=$(sed 's/,"stored".*//' "$out")
hash=$(sed 's/.*"recipe":"\([0-9a-f]*\)".*/\1/' "$out")
expect_eq "$(sqlite3 "$T/x.db" "SELECT json_extract(meta, '\$.probes.recipe') FROM datasets WHERE name = 'c'")" \
    "$hash" "stored probe recipe"
run train-meta --db "$T/x.db" probe --dataset c
expect_rc 0
grep -q '"stored":true,' "$out" && ok || bad "stored probes retrained"
expect_eq "$(sed 's/,"stored".*//' "$out")" "$first" "stored probes"
run train-meta --db "$T/x.db" probe --dataset syn0
expect_rc 1
expect_err_line "xfer-train-meta: dataset 'syn0' has no stored task (imported runs only): probes train on its images ('xfer-ingest add'); an export of its runs carries the probes it had"
run train-meta --db "$T/x.db" probe --dataset nope
expect_rc 1
expect_err_line "xfer-train-meta: unknown dataset 'nope' in '$T/x.db' ('xfer-ingest list' shows the stored ones)"
# syn4's probes close to syn3's: syn3 gains weight (0.095 without probes)
setp() {
    sqlite3 "$T/x.db" "UPDATE datasets SET meta = json_set(meta, '\$.probes',
        json('{\"recipe\":\"$hash\",\"conv3\":$2,\"conv1\":$3,\"pool\":$4,\"skip\":$5}')) WHERE name = '$1'"
}
setp syn0 0.9 0.8 0.5 0.7
setp syn1 0.6 0.5 0.3 0.4
setp syn2 0.95 0.9 0.8 0.9
setp syn3 0.7 0.65 0.4 0.6
pr score --dataset syn4 --sample 20 --seed 3 --zero-shot weighted
expect_rc 0
grep -q "^xfer-predict: 'syn4': source weights by dataset similarity (classes, height, width, channels, n_train): syn0 0.748, syn1 0.079, syn2 0.079, syn3 0.095$" \
    "$err" && ok || bad "probes used though the target has none"
grep -q "^xfer-predict: 'syn4' has no probes and every source has: 'xfer-train-meta probe --dataset syn4' adds them to the similarity (a stored task only)$" \
    "$err" && ok || bad "no hint to probe the target"
setp syn4 0.72 0.66 0.41 0.6
pr score --dataset syn4 --sample 20 --seed 3 --zero-shot weighted
expect_rc 0
grep -q "has no probes" "$err" && bad "probe hint with probes everywhere" || ok
w3=$(sed -n "s/^xfer-predict: 'syn4': source weights by dataset similarity (classes, height, width, channels, n_train, probe_conv3, probe_conv1, probe_pool, probe_skip): .*syn3 \([0-9.]*\)$/\1/p" "$err")
awk -v w="$w3" 'BEGIN { exit !(w > 0.15) }' && ok || bad "syn3's weight with probes: '$w3' ($(cat "$err"))"
# a recipe of other probes is not compared with these
sqlite3 "$T/x.db" "UPDATE datasets SET meta = json_set(meta, '\$.probes.recipe', '000000000000') WHERE name = 'syn0'"
pr score --dataset syn4 --sample 20 --seed 3 --zero-shot weighted
grep -q "^xfer-predict: 'syn4': source weights by dataset similarity (classes, height, width, channels, n_train): " \
    "$err" && ok || bad "probes of another recipe compared"
sqlite3 "$T/x.db" "UPDATE datasets SET meta = json_set(meta, '\$.probes.recipe', '$hash') WHERE name = 'syn0'"
# exported with the runs, imported where the dataset has none; bad values refused whole
run train-meta --db "$T/x.db" export --dataset syn4
expect_rc 0
cp "$out" "$T/syn4.jsonl"
expect_eq "$(grep -c "\"dataset_info\":{.*$probes" "$T/syn4.jsonl")" 200 "exported lines with probes"
run ingest --db "$T/y.db" runs "$T/syn4.jsonl"
expect_rc 0
expect_eq "$(sqlite3 "$T/y.db" "SELECT json_extract(meta, '\$.probes') FROM datasets WHERE name = 'syn4'")" \
    "{\"conv1\":0.66,\"conv3\":0.72,\"pool\":0.41,\"recipe\":\"$hash\",\"skip\":0.6}" "imported probes"
sed '1s/"conv3":[0-9.]*/"conv3":1.5/' "$T/syn4.jsonl" | sed 's/"dataset":"syn4"/"dataset":"syn5"/' >"$T/bad.jsonl"
before=$(sqlite3 "$T/y.db" "SELECT count(*) FROM runs; SELECT count(*) FROM datasets")
run ingest --db "$T/y.db" runs "$T/bad.jsonl"
expect_rc 1
expect_err_line "xfer-ingest: '$T/bad.jsonl': line 1: dataset_info: 'probes.conv3' is not an accuracy in [0, 1]"
expect_eq "$(sqlite3 "$T/y.db" "SELECT count(*) FROM runs; SELECT count(*) FROM datasets")" "$before" "after a refused import"
# a recipe rewritten on the way would land as another protocol: refused
sed 's/"protocol_hash":"[0-9a-f]*"/"protocol_hash":"0123456789ab"/' "$T/syn4.jsonl" >"$T/bad.jsonl"
run ingest --db "$T/y.db" runs "$T/bad.jsonl"
expect_rc 1
expect_err_line "xfer-ingest: '$T/bad.jsonl': line 1: protocol_hash '0123456789ab' is not its recipe's (20627fedd957): was the recipe rewritten on the way (a JSON tool that prints 0.0 as 0 changes it)?"
expect_eq "$(sqlite3 "$T/y.db" "SELECT count(*) FROM runs; SELECT count(*) FROM datasets")" "$before" "after a refused import"

# bad input
pr fit --space nb201 --sources syn0,syn4 --target syn4
expect_rc 2
expect_err_line "xfer-predict: --sources: 'syn4' is the target; a task cannot be both"
pr fit --space nasnet
expect_rc 2
expect_err_line "xfer-predict: --space: unknown space 'nasnet' (valid: nb201, darts)"
pr fit --space darts
expect_rc 1
expect_err_line "xfer-predict: no finished darts runs in '$T/x.db' (train some with xfer-train-meta)"
pr score --dataset nope --sample 1
expect_rc 1
expect_err_line "xfer-predict: unknown dataset 'nope' in '$T/x.db' ('xfer-ingest list' shows the stored ones)"
pr score --dataset syn4 --space darts --sample 1
expect_rc 1
expect_err_line "xfer-predict: no fitted darts model in '$T/x.db' (run 'xfer-predict fit --space darts' first)"
pr eval --holdout syn9
expect_rc 1
expect_err_match "xfer-predict: --holdout: 'syn9' has fewer than 10 finished nb201 runs*"
run ingest --db "$T/small.db" runs "$T/runs.jsonl"
sqlite3 "$T/small.db" "DELETE FROM curves; DELETE FROM runs WHERE id % 40 != 0"
run predict --db "$T/small.db" fit --space nb201 --min-runs 1
expect_rc 1
tail -n 1 "$err" | grep -q "^xfer-predict: the meta-dataset is too small: 25 finished runs on 5 source tasks" && ok ||
    bad "too small a meta-dataset"

# the shipped meta-datasets (data/meta/README.md): whole, and on the GPU set
# the zero-shot predictor ranks a held-out task better than #params does
for m in nb201-cheap6:2500:6 nb201-cheap12-gpu:1000:12; do
    f=${m%%:*} rest=${m#*:}
    n=${rest%%:*} ep=${rest#*:}
    run ingest --db "$T/$f.db" runs "$TOP/data/meta/$f.jsonl.gz"
    expect_rc 0
    expect_eq "$(sqlite3 "$T/$f.db" "SELECT count(*), count(DISTINCT dataset_id), min(epochs_done), max(epochs_done)
        FROM runs WHERE status = 'done'")" "$n|5|$ep|$ep" "$f: runs, tasks, epochs"
    expect_eq "$(sqlite3 "$T/$f.db" "SELECT count(*) FROM curves")" $((n * ep)) "$f: curve points"
    expect_eq "$(sqlite3 "$T/$f.db" "SELECT count(*) FROM datasets WHERE json_extract(meta, '\$.probes.recipe') = '$hash'")" \
        5 "$f: tasks with probes of this recipe"
done
run predict --db "$T/nb201-cheap12-gpu.db" eval --holdout fm-b --repeats 1 --k 0 --no-ranker --json
expect_rc 0
xs=$(grep '"method":"xfer","k":0,' "$out" | sed 's/.*"spearman":\([-0-9.]*\).*/\1/')
ps=$(grep '"method":"params","k":0,' "$out" | sed 's/.*"spearman":\([-0-9.]*\).*/\1/')
awk -v a="$xs" -v b="$ps" 'BEGIN { exit !(a != "" && b != "" && a > b + 0.1) }' && ok ||
    bad "zero-shot Spearman on fm-b ($xs) not above #params ($ps) by 0.1"
