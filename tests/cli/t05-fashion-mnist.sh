# The real Fashion-MNIST from Debian's dataset-fashion-mnist package.
src=/usr/share/datasets/fashion-mnist
if [ ! -d "$src" ]; then
    echo "FAIL [$name] $src is missing: run 'make deps'"
    fail=$((fail + 1))
else
    run ingest --db "$T/x.db" add "$src" --name fmnist
    expect_rc 0
    expect_err_line "xfer-ingest: stored 'fmnist': 54000 train, 6000 valid, 10000 test, 28x28x1, 10 classes"
    expect_eq "$(sql "SELECT classes, n_train + n_valid, n_test, format FROM datasets")" "10|60000|10000|idx" "split sizes"
    expect_eq "$(sql "SELECT meta FROM datasets")" '{"train_per_class":[5400,5400,5400,5400,5400,5400,5400,5400,5400,5400]}' "stratified split"
    expect_eq "$(sql "SELECT printf('%.4f %.4f', json_extract(mean, '\$[0]'), json_extract(std, '\$[0]')) FROM datasets")" \
        "0.2862 0.3532" "mean and std of the training split"
    # stable: the same bytes from the files given one by one, in another database
    sum=$(sql "SELECT checksum FROM datasets")
    expect_eq "$sum" "ad83976111a02dcd378563446b3dd2b3fd1d5ed3ed3d8f7096b0c42289892345" "checksum of the stored task"
    run ingest --db "$T/y.db" add "$src"/t10k-labels-idx1-ubyte.gz "$src"/train-images-idx3-ubyte.gz \
        "$src"/t10k-images-idx3-ubyte.gz "$src"/train-labels-idx1-ubyte.gz --name fmnist
    expect_rc 0
    expect_eq "$(sqlite3 "$T/y.db" "SELECT checksum FROM datasets")" "$sum" "checksum from the files"
    expect_eq "$(stat -c %s "$T/y.db.tasks/"*.xtask)" 55020064 "stored size: 64 + 70000 * (2 + 784)"
fi
