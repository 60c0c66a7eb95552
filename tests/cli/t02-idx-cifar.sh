# IDX and CIFAR sources end to end: add, list, show, re-add, replace.
db="--db $T/x.db"
run ingest $db add "$FX/idx/mnist" --name mnist --valid-fraction 0.5
expect_rc 0
expect_err_line "xfer-ingest: stored 'mnist': 10 train, 10 valid, 10 test, 8x8x1, 10 classes"
run ingest $db add "$FX/idx/raw/train-images-idx3-ubyte" "$FX/idx/raw/train-labels-idx1-ubyte" \
    "$FX/idx/raw/t10k-images-idx3-ubyte" "$FX/idx/raw/t10k-labels-idx1-ubyte" --name raw --valid-fraction 0.5
expect_rc 0
# gzip or raw, the same content makes the same stored task
expect_eq "$(sql "SELECT count(DISTINCT checksum) FROM datasets")" 1 "checksums of gz and raw"
run ingest $db add "$FX/cifar/cifar-10-binary.tar.gz" --name c10
expect_rc 0
expect_err_line "xfer-ingest: stored 'c10': 20 train, 0 valid, 4 test, 32x32x3, 10 classes"
run ingest $db add "$FX/cifar/cifar-100-binary.tar.gz" --name c100c --coarse --valid-fraction 0.2
expect_rc 0
expect_err_line "xfer-ingest: stored 'c100c': 80 train, 20 valid, 20 test, 32x32x3, 20 classes"
run ingest $db add "$FX/cifar/cifar-100-binary.tar.gz" --name c100s --classes fine07,fine03 --resize 16x16 --grayscale
expect_rc 0
expect_err_line "xfer-ingest: stored 'c100s': 2 train, 0 valid, 2 test, 16x16x1, 2 classes"
run ingest $db list
expect_rc 0
expect_out "NAME                 KIND     FORMAT     SHAPE        CLASSES    TRAIN    VALID     TEST   RUNS
c10                  stored   cifar10    32x32x3           10       20        0        4      0
c100c                stored   cifar100   32x32x3           20       80       20       20      0
c100s                stored   cifar100   16x16x1            2        2        0        2      0
mnist                stored   idx        8x8x1             10       10       10       10      0
raw                  stored   idx        8x8x1             10       10       10       10      0"
run ingest $db show c100s --json
expect_rc 0
grep -q '"class_names":\["fine07","fine03"\]' "$out" && ok || bad "class names in --classes order"
expect_eq "$(wc -l <"$out")" 1 "show --json lines"
run ingest $db list --json
expect_eq "$(wc -l <"$out")" 5 "list --json lines"
run ingest $db show nope
expect_rc 1
expect_err_line "xfer-ingest: no dataset 'nope' in '$T/x.db'"
# the stored file is where the row says, with the checksum it says
path=$(sql "SELECT path FROM datasets WHERE name = 'c10'")
sum=$(sql "SELECT checksum FROM datasets WHERE name = 'c10'")
expect_eq "$(sha256sum "$T/$path" | cut -d' ' -f1)" "$sum" "checksum of the stored file"
# the same source and options again: a no-op that says so
before=$(snapshot "$T")
run ingest $db add "$FX/cifar/cifar-10-binary.tar.gz" --name c10
expect_rc 0
expect_err_line "xfer-ingest: already stored: 'c10' from the same source and options, nothing to do: 20 train, 0 valid, 4 test, 32x32x3, 10 classes"
expect_eq "$(snapshot "$T")" "$before" "database and files after a no-op"
# other options need --replace; --replace swaps the file
run ingest $db add "$FX/cifar/cifar-10-binary.tar.gz" --name c10 --grayscale
expect_rc 1
expect_err_line "xfer-ingest: dataset 'c10' already exists with another source or options: use --replace"
run ingest $db add "$FX/cifar/cifar-10-binary.tar.gz" --name c10 --grayscale --replace
expect_rc 0
expect_err_line "xfer-ingest: replaced 'c10': 20 train, 0 valid, 4 test, 32x32x1, 10 classes"
expect_absent "$T/$path"
expect_eq "$(ls "$T/x.db.tasks" | wc -l)" 5 "task files after replace"
