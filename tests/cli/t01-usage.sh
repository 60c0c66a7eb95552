# Usage and exit codes of every tool.
run ingest --help
expect_rc 0
grep -q '^usage: xfer-ingest' "$out" && ok || bad "--help prints no usage"
run ingest
expect_rc 2
run ingest frobnicate
expect_rc 2
expect_err_line "xfer-ingest: unknown command 'frobnicate' (add, list, show, bench, runs)"
run ingest add
expect_rc 2
expect_err_line "xfer-ingest: add: --name NAME is required (see 'xfer-ingest --help')"
run ingest add "$FX/idx/mnist" --name 'bad/name' --db "$T/x.db"
expect_rc 2
run ingest --db "$T/x.db" add "$FX/idx/mnist" --name ok --resize 0x4
expect_rc 2
expect_err_line "xfer-ingest: --resize: '0' is not an integer in 1..4096"
run ingest --db "$T/x.db" add "$FX/idx/mnist" --name ok --format jpeg
expect_rc 2
expect_err_line "xfer-ingest: --format: unknown format 'jpeg' (valid: idx, cifar10, cifar100, npy, npz, svhn, imgfolder)"
expect_absent "$T/x.db" "$T/x.db.tasks"
run ingest --db "$T/none.db" list
expect_rc 1
expect_err_match "xfer-ingest: database '$T/none.db': No such file or directory"
run train-meta --help
expect_rc 0
grep -q '^usage: xfer-train-meta' "$out" && ok || bad "train-meta --help prints no usage"
run train-meta frobnicate
expect_rc 2
expect_err_line "xfer-train-meta: unknown command 'frobnicate' (plan, work, run, status, merge, proxies, probe, export, slurm)"
run train-meta plan --sample 3 --db "$T/x.db"
expect_rc 2
run train-meta --db "$T/none.db" status
expect_rc 1
expect_err_match "xfer-train-meta: database '$T/none.db': No such file or directory"
expect_absent "$T/none.db"
run predict frobnicate
expect_rc 2
expect_err_line "xfer-predict: unknown command 'frobnicate' (fit, score, curves, eval)"
run predict --help
expect_rc 0
run search frobnicate
expect_rc 2
expect_err_line "xfer-search: unknown command 'frobnicate' (run, bench)"
run search --help
expect_rc 0
grep -q '^usage: xfer-search' "$out" && ok || bad "search --help prints no usage"
run search run --target x
expect_rc 2
expect_err_line "xfer-search: run: --budget K (or --budget-hours H) is required (see 'xfer-search --help')"
