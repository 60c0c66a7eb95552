# Benchmark tables and run records: import, idempotence, bad rows.
db="--db $T/x.db"
run ingest $db bench "$FX/bench/nb201.csv" --space nb201 --arch-column arch \
    --metric cifar10=cifar10 --metric cifar100=cifar100 --valid-metric cifar10=cifar10-valid --epochs 200
expect_rc 0
expect_out "imported '$FX/bench/nb201.csv': 12 rows, 24 runs added, 0 already present, 2 datasets created"
expect_eq "$(sql "SELECT kind, format, count(*) FROM datasets GROUP BY kind")" "virtual|bench|2" "virtual datasets"
expect_eq "$(sql "SELECT count(*) FROM runs WHERE source = 'imported' AND status = 'done'")" 24 "imported runs"
expect_eq "$(sql "SELECT count(*) FROM archs")" 12 "archs"
expect_eq "$(sql "SELECT count(*) FROM runs r JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'cifar100' AND r.valid_acc IS NULL")" 12 "no valid accuracy without --valid-metric"
expect_eq "$(sql "SELECT recipe FROM protocols")" '{"epochs":200,"kind":"imported","space":"nb201"}' "protocol recipe"
# percent in the table, fractions in the store; the first row: arch 1
first=$(head -2 "$FX/bench/nb201.csv" | tail -1)
arch=${first%%,*}
expect_eq "$(sql "SELECT printf('%.4f %.4f', r.valid_acc, r.test_acc) FROM runs r JOIN archs a ON a.id = r.arch_id JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'cifar10' AND a.arch = '$arch'")" \
    "$(echo "$first" | awk -F, '{printf "%.4f %.4f", $2 / 100, $3 / 100}')" "accuracies of the first row"
# the gzip copy of the same table: nothing new
run ingest $db bench "$FX/bench/nb201.csv.gz" --metric cifar10=cifar10 --metric cifar100=cifar100 \
    --valid-metric cifar10=cifar10-valid --epochs 200 --json
expect_rc 0
expect_out "{\"file\":\"$FX/bench/nb201.csv.gz\",\"rows\":12,\"added\":0,\"present\":24,\"datasets_created\":0}"
before=$(snapshot "$T")
for bad in "badarch.csv:xfer-ingest: '*/badarch.csv': line 4: invalid nb201 arch '|conv_9x9~0|*': unknown op 'conv_9x9'*" \
    "badrow.csv:xfer-ingest: '*/badrow.csv': line 3: 2 fields, the header has 4" \
    "badvalue.csv:xfer-ingest: '*/badvalue.csv': line 2: column 'cifar10-valid': 'n/a' is not an accuracy" \
    "malformed.csv:xfer-ingest: '*/malformed.csv': line 2: malformed CSV: *"; do
    run ingest $db bench "$FX/bench/${bad%%:*}" --metric cifar10=cifar10 --valid-metric cifar10=cifar10-valid --metric c100=cifar100
    expect_rc 1
    expect_err_match "${bad#*:}"
done
run ingest $db bench "$FX/bench/nb201.csv" --metric cifar10=acc
expect_rc 1
expect_err_line "xfer-ingest: '$FX/bench/nb201.csv': no column 'acc' (columns: arch, cifar10-valid, cifar10, cifar100)"
run ingest $db bench "$FX/bench/nb201.csv" --metric cifar10=cifar10 --scale fraction
expect_rc 1
expect_err_match "xfer-ingest: '*nb201.csv': accuracy * is above 1 (fraction)"
run ingest $db bench "$FX/bench/nb201.csv" --metric cifar10=cifar10 --space nope
expect_rc 2
expect_err_line "xfer-ingest: unknown space 'nope' (valid: nb201, darts)"
expect_eq "$(snapshot "$T")" "$before" "database after failed imports"
run ingest --db "$T/new.db" bench "$FX/bench/badarch.csv" --metric cifar10=cifar10
expect_rc 1
expect_absent "$T/new.db" "$T/new.db-wal" "$T/new.db-shm"

# run records, from a file and from a pipe
run ingest $db runs "$FX/bench/runs.jsonl"
expect_rc 0
expect_out "imported '$FX/bench/runs.jsonl': 5 rows, 5 runs added, 0 already present, 1 datasets created"
expect_eq "$(sql "SELECT count(*) FROM curves")" 15 "curve points"
expect_eq "$(sql "SELECT kind || ' ' || format FROM datasets WHERE name = 'toy'")" "virtual runs" "dataset of imported runs"
"$BIN/xfer-ingest" $db runs - <"$FX/bench/runs.jsonl" >"$out" 2>"$err"
rc=$?
expect_rc 0
expect_out "imported '-': 5 rows, 0 runs added, 5 already present, 0 datasets created"
run ingest $db runs "$FX/bench/badjson.jsonl"
expect_rc 1
expect_err_match "xfer-ingest: '*/badjson.jsonl': line 2: invalid JSON: *"
run ingest $db runs "$FX/bench/badacc.jsonl"
expect_rc 1
expect_err_match "xfer-ingest: '*/badacc.jsonl': line 1: 'valid_acc' out of range"
expect_eq "$(sql "SELECT count(*) FROM runs")" 29 "runs after failed imports"
run ingest $db list
expect_out "NAME                 KIND     FORMAT     SHAPE        CLASSES    TRAIN    VALID     TEST   RUNS
cifar10              virtual  bench      -                  0        0        0        0     12
cifar100             virtual  bench      -                  0        0        0        0     12
toy                  virtual  runs       -                  0        0        0        0      5"
