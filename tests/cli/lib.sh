# Shared helpers for the CLI tests (sourced). Each check prints "ok" or
# "FAIL" with what differed; run.sh adds up the counts.
# Variables: BIN (the tools), FX (generated fixtures), T (this test's scratch).
set -u
pass=0
fail=0
out="$T/stdout"
err="$T/stderr"

# run TOOL ARGS...: runs bin/xfer-TOOL, keeping stdout, stderr and the status.
run() {
    tool=$1
    shift
    "$BIN/xfer-$tool" "$@" >"$out" 2>"$err" </dev/null
    rc=$?
}

ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL [$name] $*"
    echo "  stdout: $(head -c 600 "$out")"
    echo "  stderr: $(head -c 600 "$err")"
}

# expect_rc N
expect_rc() { [ "$rc" -eq "$1" ] && ok || bad "exit status $rc, expected $1"; }
# expect_err_line TEXT: stderr is exactly this one line
expect_err_line() {
    if [ "$(cat "$err")" = "$1" ]; then ok; else bad "stderr is not exactly: $1"; fi
}
# expect_err_match GLOB: stderr is one line matching the shell pattern
expect_err_match() {
    lines=$(wc -l <"$err")
    case "$(cat "$err")" in
    $1) [ "$lines" -eq 1 ] && ok || bad "stderr has $lines lines, expected one" ;;
    *) bad "stderr does not match: $1" ;;
    esac
}
# expect_out TEXT: stdout is exactly TEXT
expect_out() {
    if [ "$(cat "$out")" = "$1" ]; then ok; else bad "stdout is not: $1"; fi
}
expect_out_empty() { [ ! -s "$out" ] && ok || bad "stdout is not empty"; }
# expect_eq ACTUAL EXPECTED WHAT
expect_eq() { [ "$1" = "$2" ] && ok || bad "$3: got '$1', expected '$2'"; }
# expect_absent PATH...: nothing was left behind
expect_absent() {
    for p in "$@"; do
        [ ! -e "$p" ] && ok || bad "'$p' exists but should not"
    done
}
# snapshot DIR: a listing of files (names, sizes) and of the database content
snapshot() {
    (cd "$1" && find . -type f ! -name '*-shm' ! -name '*-wal' ! -name stdout ! -name stderr -printf '%p %s\n' | sort)
    for db in "$1"/*.db; do
        [ -e "$db" ] && sqlite3 "$db" .dump
    done
}
# check_bad SOURCE PATTERN [OPTIONS...]: adding SOURCE fails with one line
# matching PATTERN, creates no database, and leaves an existing one (in
# $T/old, made by the caller) exactly as it was.
check_bad() {
    src=$1 pat=$2
    shift 2
    run ingest --db "$T/new.db" add "$src" --name bad "$@"
    expect_rc 1
    expect_err_match "$pat"
    expect_absent "$T/new.db" "$T/new.db-wal" "$T/new.db-shm" "$T/new.db.tasks"
    before=$(snapshot "$T/old")
    run ingest --db "$T/old/x.db" add "$src" --name bad "$@"
    expect_rc 1
    expect_eq "$(snapshot "$T/old")" "$before" "existing database after a failed add of $src"
}
sql() { sqlite3 "$T/x.db" "$1"; }
finish() { echo "$pass $fail" >"$T/counts"; }
