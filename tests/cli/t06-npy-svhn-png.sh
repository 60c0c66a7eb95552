# NPY/NPZ, SVHN .mat and PNG folders end to end, good and bad.
db="--db $T/x.db"
added() { # NAME EXPECTED-STDERR SOURCE... [OPTIONS]
    n=$1 want=$2
    shift 2
    run ingest $db add "$@" --name "$n"
    expect_rc 0
    expect_err_line "xfer-ingest: stored '$n': $want"
}
added qd "7 train, 1 valid, 0 test, 28x28x1, 2 classes" "$FX/npy/classes"
added qdz "7 train, 1 valid, 0 test, 28x28x1, 2 classes" "$FX/npy/classes.npz"
added qdf "7 train, 1 valid, 0 test, 28x28x1, 2 classes" "$FX/npy/cat.npy" "$FX/npy/dog.npy"
mkdir -p "$T/qd" && cp "$FX/npy/cat.npy" "$T/qd/full_numpy_bitmap_cat.npy" && gzip -c "$FX/npy/dog.npy" >"$T/qd/dog.npy.gz"
added qdprefix "7 train, 1 valid, 0 test, 28x28x1, 2 classes" "$T/qd"
expect_eq "$(sql "SELECT class_names FROM datasets WHERE name = 'qdprefix'")" '["cat","dog"]' "Quick, Draw! file names"
added keras "6 train, 0 valid, 3 test, 4x4x1, 3 classes" "$FX/npy/keras.npz"
added rgb "2 train, 0 valid, 0 test, 5x4x3, 1 classes" "$FX/npy/rgb.npy"
added svhn "12 train, 0 valid, 10 test, 32x32x3, 10 classes" "$FX/svhn/train_32x32.mat" "$FX/svhn/test_32x32.mat"
added svhndir "12 train, 0 valid, 10 test, 32x32x3, 10 classes" "$FX/svhn" --valid-fraction 0
tar -czf "$T/svhn.tar.gz" -C "$FX/svhn" train_32x32.mat test_32x32.mat
added svhntar "12 train, 0 valid, 10 test, 32x32x3, 10 classes" "$T/svhn.tar.gz"
expect_eq "$(sql "SELECT count(DISTINCT checksum) FROM datasets WHERE name IN ('svhn', 'svhntar')")" 1 "SVHN files and their tarball"
added png "6 train, 0 valid, 4 test, 8x8x3, 2 classes" "$FX/png/folder"
added pngtgz "6 train, 0 valid, 4 test, 8x8x3, 2 classes" "$FX/png/folder.tar.gz"
added pngzip "6 train, 0 valid, 4 test, 8x8x3, 2 classes" "$FX/png/folder.zip"
added pnggray "6 train, 0 valid, 4 test, 4x4x1, 2 classes" "$FX/png/folder.zip" --grayscale --resize 4x4
added pngdog "3 train, 0 valid, 2 test, 8x8x3, 1 classes" "$FX/png/folder" --classes dog
# a folder, its tar.gz and its zip make the same stored task
expect_eq "$(sql "SELECT count(DISTINCT checksum) FROM datasets WHERE name IN ('png', 'pngtgz', 'pngzip')")" 1 "one checksum for three containers"
expect_eq "$(sql "SELECT class_names FROM datasets WHERE name = 'qd'")" '["cat","dog"]' "class names from file names"
expect_eq "$(sql "SELECT class_names FROM datasets WHERE name = 'svhn'")" '["0","1","2","3","4","5","6","7","8","9"]' "SVHN classes"
expect_eq "$(sql "SELECT format FROM datasets WHERE name IN ('qd', 'qdz', 'keras', 'svhn', 'png', 'pngzip') ORDER BY name")" \
    "npz
imgfolder
imgfolder
npy
npz
svhn" "formats"

mkdir -p "$T/old"
run ingest --db "$T/old/x.db" add "$FX/npy/classes" --name good
expect_rc 0
check_bad "$FX/npy/truncated.npy" "xfer-ingest: '*/truncated.npy': truncated: data ends in image 2 of 5"
check_bad "$FX/npy/badmagic.npy" "xfer-ingest: '*/badmagic.npy': not an npy file (bad magic)*" --format npy
check_bad "$FX/npy/badheader.npy" "xfer-ingest: '*/badheader.npy': bad npy header: expected ':'*"
check_bad "$FX/npy/object.npy" "xfer-ingest: '*/object.npy': object arrays are not supported*"
check_bad "$FX/npy/fortran.npy" "xfer-ingest: '*/fortran.npy': fortran_order arrays are not supported"
check_bad "$FX/npy/badshape.npy" "xfer-ingest: '*/badshape.npy': shape (5, 783) is not supported*"
check_bad "$FX/npy/rgba.npy" "xfer-ingest: '*/rgba.npy': shape (2, 4, 4, 4) is not supported: 4 channels (RGBA)*"
check_bad "$FX/npy/bigvalue.npy" "xfer-ingest: '*/bigvalue.npy': value 300 at element 900 (image 1) is outside 0..255"
check_bad "$FX/npy/trailing.npy" "xfer-ingest: '*/trailing.npy': unexpected bytes after the array data"
check_bad "$FX/npy/keras-unpaired.npz" "xfer-ingest: '*/keras-unpaired.npz': member x_test.npy has no matching y_test.npy"
check_bad "$FX/svhn/bad/header.mat" "xfer-ingest: '*/bad/header.mat': not a MAT v5 file*" --format svhn
check_bad "$FX/svhn/bad/version.mat" "xfer-ingest: '*/bad/version.mat': not a MAT v5 file (version 0x0200, expected 0x0100)" --format svhn
check_bad "$FX/svhn/bad/truncated.mat" "xfer-ingest: '*/bad/truncated.mat': truncated: *"
check_bad "$FX/svhn/bad/truncated_raw.mat" "xfer-ingest: '*/bad/truncated_raw.mat': truncated: expected 3072 bytes of X image at offset *"
check_bad "$FX/svhn/bad/label11.mat" "xfer-ingest: '*/bad/label11.mat': record 4: label 11 out of range 1..10"
check_bad "$FX/svhn/bad/label_fraction.mat" "xfer-ingest: '*/bad/label_fraction.mat': record 2: label 2.5 is not an integer"
check_bad "$FX/svhn/bad/nmismatch.mat" "xfer-ingest: '*/bad/nmismatch.mat': X holds 6 images but y holds 5 labels"
check_bad "$FX/svhn/bad/zlib.mat" "xfer-ingest: '*/bad/zlib.mat': corrupt data at byte * of the compressed element*"
check_bad "$FX/svhn/bad/dims.mat" "xfer-ingest: '*/bad/dims.mat': X has dims 32x32x4x3*"
check_bad "$FX/svhn/bad/xdouble.mat" "xfer-ingest: '*/bad/xdouble.mat': X is double, expected uint8 images"
check_bad "$FX/svhn/bad/nox.mat" "xfer-ingest: '*/bad/nox.mat': no variable 'X' (the images)"
check_bad "$FX/svhn/bad/noy.mat" "xfer-ingest: '*/bad/noy.mat': no variable 'y' (the labels)"
check_bad "$FX/png/badsize" "xfer-ingest: '*/badsize/cat/1.png': image is 6x6, earlier images are 8x8 (use --resize)"
check_bad "$FX/png/notpng" "xfer-ingest: '*/notpng/cat/1.png': not a PNG file (bad signature)"
check_bad "$FX/png/truncated" "xfer-ingest: '*/truncated/cat/1.png': bad PNG: truncated at byte *"
check_bad "$FX/png/corrupt" "xfer-ingest: '*/corrupt/cat/1.png': bad PNG: IHDR: CRC error"
check_bad "$FX/png/jpeg" "xfer-ingest: '*/jpeg/cat/1.jpg': JPEG is not supported (PNG only)"
check_bad "$FX/png/toplevel" "xfer-ingest: '*/toplevel/x.png': image is not inside a class directory*"
check_bad "$FX/png/nopng" "xfer-ingest: '*/nopng': no PNG images found" --format imgfolder
check_bad "$FX/png/emptyclass" "xfer-ingest: '*/emptyclass': no class 'bird'" --classes cat,bird
