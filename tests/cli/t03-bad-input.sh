# Bad input: one clear line naming the file, exit 1, and no trace: no new
# database, no task directory, no temporary files; an existing database and
# its files stay exactly as they were.
mkdir -p "$T/old"
run ingest --db "$T/old/x.db" add "$FX/idx/mnist" --name good
expect_rc 0
check_bad "$FX/idx/truncated" "xfer-ingest: '*/train-images-idx3-ubyte': truncated: expected 64 bytes of an image at offset 336, got 3"
check_bad "$FX/idx/badmagic" "xfer-ingest: '*/train-images-idx3-ubyte': IDX element type 0x07 is not supported*"
check_bad "$FX/idx/mismatch" "xfer-ingest: '*/train-images-idx3-ubyte': 20 images but '*' has 19 labels"
check_bad "$FX/idx/trailing" "xfer-ingest: '*/t10k-labels-idx1-ubyte': data continues after 10 bytes"
check_bad "$FX/idx/corruptgz" "xfer-ingest: '*/train-images-idx3-ubyte.gz': corrupt gzip data near byte *"
check_bad "$FX/cifar/truncated.tar.gz" "xfer-ingest: '*truncated.tar.gz:cifar-10-batches-bin/*': corrupt or truncated archive: *"
check_bad "$FX/cifar/badsize" "xfer-ingest: '*/data_batch_1.bin': 9119 bytes, not a multiple of the CIFAR-10 record size 3073*"
check_bad "$FX/cifar/badlabel" "xfer-ingest: '*/data_batch_1.bin': record 1: label 12 out of range 0..9"
check_bad "$FX/cifar/cifar-10-binary.tar.gz" "xfer-ingest: '*cifar-10-binary.tar.gz': no class 'zebra'" --classes cat,zebra
check_bad "$FX/cifar/cifar-10-binary.tar.gz" "xfer-ingest: '*cifar-10-binary.tar.gz': --format idx cannot be read from an archive" --format idx
check_bad "$FX/bench/nb201.csv" "xfer-ingest: '*/nb201.csv': unrecognised format*"
check_bad "$T/does-not-exist" "xfer-ingest: '$T/does-not-exist': No such file or directory"
# an empty class: labels that skip a value
mkdir -p "$T/skip"
printf '\0\0\10\1\0\0\0\3\0\1\3' >"$T/skip/train-labels-idx1-ubyte"
printf '\0\0\10\3\0\0\0\3\0\0\0\1\0\0\0\1abc' >"$T/skip/train-images-idx3-ubyte"
check_bad "$T/skip" "xfer-ingest: '$T/skip': class '2' has no training images"
# an unreadable file (root reads everything, so only when not root)
if [ "$(id -u)" != 0 ]; then
    mkdir -p "$T/noread" && cp "$FX/idx/raw/"* "$T/noread/" && chmod 000 "$T/noread/train-images-idx3-ubyte"
    check_bad "$T/noread" "xfer-ingest: '*train-images-idx3-ubyte': Permission denied"
fi
