/* Dataset readers, one file per format. Each pushes images into a Builder and
 * names the file (and record) in every error. Readers take XStreams so they
 * work alike on files, archive members and memory (fuzzing). */
#ifndef XFER_READERS_H
#define XFER_READERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/stream.h"
#include "data/builder.h"

/* Split implied by a file or directory name: "test"/"t10k" -> test,
 * "val"/"valid"/"validation" -> valid, else train. */
Split split_from_name(const char *name);

/* IDX (MNIST family): image and label files paired by name prefix
 * (train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]). */
int idx_read_files(Builder *b, char *const *paths, int n, XErr *e);
/* One IDX array from a stream: dims and data (u8 only). Caller frees *data. */
int idx_read_array(XStream *s, int *ndims, uint32_t dims[4], uint8_t **data, XErr *e);

/* CIFAR binary: variant 10 or 100. cifar_begin declares the classes. */
int cifar_begin(Builder *b, int variant, XErr *e);
/* One batch file (.bin): records of 1 (+1) label bytes and 3072 pixels. */
int cifar_read_batch(Builder *b, int variant, XStream *s, Split split, XErr *e);
/* batches.meta.txt / fine_label_names.txt / coarse_label_names.txt. */
int cifar_read_names(Builder *b, int variant, XStream *s, XErr *e);
/* Which CIFAR member a file name is: 0 none, 1 batch, 2 names. */
int cifar_member_kind(const char *name, int variant, int coarse, Split *split);

/* NPY: one .npy array holds one class, images (N, H, W[, C]) or (N, H*W)
 * with a square side; the class name is given. */
int npy_read_class(Builder *b, XStream *s, const char *class_name, XErr *e);
/* The class an .npy file or member stands for: its base name without
 * ".npy" / ".npy.gz" and without Quick, Draw!'s "full_numpy_bitmap_" prefix. */
void npy_class_name(const char *path, char *out, size_t cap);
/* NPZ in keras layout (x_train, y_train, x_test, y_test[, x_valid, y_valid]):
 * members are gathered with npz_keras_member, then added by npz_keras_finish. */
typedef struct NpzKeras NpzKeras;
NpzKeras *npz_keras_new(void);
int npz_keras_member(NpzKeras *k, XStream *s, const char *member, XErr *e);
int npz_keras_finish(NpzKeras *k, Builder *b, const char *source, XErr *e);
void npz_keras_free(NpzKeras *k);
/* 1 if a member name (without directories) belongs to the keras layout. */
int npz_is_keras_name(const char *name);

/* SVHN cropped digits: a MATLAB v5 file holding X (32, 32, 3, N) uint8 and
 * y (N, 1), label 10 meaning digit 0. */
int svhn_begin(Builder *b, XErr *e);
int svhn_read_mat(Builder *b, XStream *s, Split split, XErr *e);

/* Image folders: PNG files, class = parent directory name, split from an
 * ancestor directory named train/val/valid/validation/test. relpath is the
 * path inside the folder or archive. */
int imgfolder_add_png(Builder *b, const char *relpath, const uint8_t *data, size_t n,
                      const char *where, XErr *e);
/* Walks a directory tree (sorted, so the order is stable). */
int imgfolder_read_dir(Builder *b, const char *dir, XErr *e);

#endif
