# xfer-train-meta proxies: scores of sampled archs and of archs on stdin,
# stored once (a second call reads them back), bad lines reported with
# their number, unknown datasets, and merges that carry the scores along.
tm() { run train-meta "$@"; }
"$GEN" --cifar10-tarball "$T/c10.tar.gz" 200 || bad "generating the task"
run ingest --db "$T/x.db" add "$T/c10.tar.gz" --name c
expect_rc 0

tm --db "$T/x.db" proxies --dataset c --sample 4 --seed 1 --protocol tiny --threads 1
expect_rc 0
expect_eq "$(wc -l <"$out")" 4 "JSON lines"
expect_err_line "xfer-train-meta: proxies of 4 archs on 'c' (4 computed, the others were stored)"
for p in synflow naswot jacob_cov grad_norm snip zen params flops; do
    expect_eq "$(grep -c "\"$p\":" "$out")" 4 "lines with $p"
done
expect_eq "$(sql "SELECT count(*) FROM proxies")" 32 "stored scores"
expect_eq "$(sql "SELECT count(DISTINCT protocol_id) FROM proxies")" 1 "protocols of the scores"
# params as the space counts them, for one of the archs
arch=$(sql "SELECT a.arch FROM archs a JOIN proxies p ON p.arch_id = a.id LIMIT 1")
expect_eq "$(sql "SELECT count(*) FROM proxies p JOIN archs a ON a.id = p.arch_id WHERE a.arch = '$arch'
    AND p.name = 'params' AND p.value > 0")" 1 "params of '$arch'"
first=$(cat "$out")
tm --db "$T/x.db" proxies --dataset c --sample 4 --seed 1 --protocol tiny --threads 1
expect_rc 0
expect_err_line "xfer-train-meta: proxies of 4 archs on 'c' (0 computed, the others were stored)"
expect_eq "$(cat "$out")" "$first" "stored scores read back"
# another protocol is another network: scored anew
tm --db "$T/x.db" proxies --dataset c --sample 4 --seed 1 --protocol tiny --set width=8 --threads 1
expect_err_line "xfer-train-meta: proxies of 4 archs on 'c' (4 computed, the others were stored)"
expect_eq "$(sql "SELECT count(*) FROM proxies")" 64 "stored scores of two protocols"

# stdin: fields kept, bad lines reported by number, the others scored
printf '%s\n' '{"arch":"|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|","tag":"t"}' \
    '[1,2]' '{"arch":"|nor_conv_9x9~0|"}' '{"arch":"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"}' \
    >"$T/in.jsonl"
"$BIN/xfer-train-meta" --db "$T/x.db" proxies --dataset c --protocol tiny --threads 1 --batch 16 \
    <"$T/in.jsonl" >"$out" 2>"$err"
rc=$?
expect_rc 1
expect_eq "$(wc -l <"$out")" 2 "scored lines"
grep -q '"tag":"t".*"proxies":{"synflow":[0-9]' "$out" && ok || bad "input field or scores missing"
grep -q '"arch":"|none~0|.*"grad_norm":0.0,.*"zen":null' "$out" && ok || bad "empty cell's scores"
grep -q "^xfer-train-meta: stdin:2: not a JSON object$" "$err" && ok || bad "bad line 2 not reported"
grep -q "^xfer-train-meta: stdin:3: invalid nb201 arch" "$err" && ok || bad "bad line 3 not reported"
tail -n 1 "$err" | grep -q "^xfer-train-meta: 2 bad input lines" && ok || bad "summary of bad lines"

# merge carries the scores to a new database
run train-meta merge "$T/x.db" --into "$T/m.db"
expect_rc 0
expect_eq "$(sqlite3 "$T/m.db" "SELECT count(*) FROM proxies")" "$(sql "SELECT count(*) FROM proxies")" "merged scores"

# bad input
tm --db "$T/x.db" proxies --dataset nope --sample 1
expect_rc 1
expect_err_line "xfer-train-meta: unknown dataset 'nope' in '$T/x.db' ('xfer-ingest list' shows the stored ones)"
tm --db "$T/x.db" proxies --dataset c --sample 1 --batch 1000
expect_rc 1
expect_err_line "xfer-train-meta: dataset 'c' has 900 training images, fewer than --batch 1000"
tm --db "$T/x.db" proxies --dataset c --sample 1 --space nasnet
expect_rc 2
expect_err_line "xfer-train-meta: --space: unknown space 'nasnet' (valid: nb201, darts)"
