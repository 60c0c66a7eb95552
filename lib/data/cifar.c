/* CIFAR-10 / CIFAR-100 binary batches: fixed-size records of label byte(s)
 * and 3072 pixels in planar RGB (1024 R, 1024 G, 1024 B), stored as HWC. The
 * class names below are the official ones; an archive's meta files, when
 * present, are read and must agree in count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"

static const char *const cifar10_names[10] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
};

static const char *const cifar100_coarse[20] = {
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
};

static const char *const cifar100_fine[100] = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
};

#define CIFAR_PIXELS 3072

static int nclasses(const Builder *b, int variant)
{
    return variant == 10 ? 10 : b->opt->coarse ? 20 : 100;
}

int cifar_begin(Builder *b, int variant, XErr *e)
{
    if (variant == 10)
        return builder_set_classes(b, cifar10_names, 10, e);
    if (b->opt->coarse)
        return builder_set_classes(b, cifar100_coarse, 20, e);
    return builder_set_classes(b, cifar100_fine, 100, e);
}

int cifar_read_batch(Builder *b, int variant, XStream *s, Split split, XErr *e)
{
    size_t rec = CIFAR_PIXELS + (variant == 10 ? 1 : 2);
    uint8_t buf[CIFAR_PIXELS + 2], img[CIFAR_PIXELS];
    int k = nclasses(b, variant);
    char where[600];
    for (uint64_t i = 0;; i++) {
        size_t got;
        int label;
        if (xstream_read(s, buf, rec, &got, e))
            return e->code;
        if (got == 0)
            break;
        if (got < rec)
            return xerr_set(e, XE_FAIL,
                            "'%s': %llu bytes, not a multiple of the CIFAR-%d record size %zu "
                            "(truncated record %llu)",
                            s->name, (unsigned long long)s->pos, variant, rec, (unsigned long long)i);
        /* CIFAR-100 records: coarse label, then fine label. */
        label = variant == 10 ? buf[0] : b->opt->coarse ? buf[0] : buf[1];
        if (variant == 100 && buf[0] >= 20)
            return xerr_set(e, XE_FAIL, "'%s': record %llu: coarse label %d out of range 0..19", s->name,
                            (unsigned long long)i, buf[0]);
        if (label >= k)
            return xerr_set(e, XE_FAIL, "'%s': record %llu: label %d out of range 0..%d", s->name,
                            (unsigned long long)i, label, k - 1);
        for (int p = 0; p < 1024; p++)
            for (int c = 0; c < 3; c++)
                img[3 * p + c] = buf[rec - CIFAR_PIXELS + (size_t)(1024 * c + p)];
        snprintf(where, sizeof where, "'%s': record %llu", s->name, (unsigned long long)i);
        if (builder_add(b, split, label, img, 32, 32, 3, where, e))
            return e->code;
    }
    return XE_OK;
}

int cifar_read_names(Builder *b, int variant, XStream *s, XErr *e)
{
    uint8_t *text = NULL;
    size_t n;
    int k = nclasses(b, variant), count = 0, rc;
    char *line, *save = NULL;
    if (xstream_read_all(s, &text, &n, 1 << 20, e))
        return e->code;
    {
        char *t = realloc(text, n + 1);
        if (!t) {
            free(text);
            return xerr_set(e, XE_FAIL, "out of memory");
        }
        text = (uint8_t *)t;
        text[n] = '\0';
    }
    for (line = strtok_r((char *)text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        char *end = line + strlen(line);
        while (*line == ' ' || *line == '\t')
            line++;
        while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (!*line)
            continue;
        if (count < k && (rc = builder_rename_class(b, count, line, e))) {
            free(text);
            return rc;
        }
        count++;
    }
    free(text);
    if (count != k)
        return xerr_set(e, XE_FAIL, "'%s': %d class names, expected %d", s->name, count, k);
    return XE_OK;
}

int cifar_member_kind(const char *name, int variant, int coarse, Split *split)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    *split = SPLIT_TRAIN;
    if (variant == 10) {
        if (!strncmp(base, "data_batch_", 11) && strstr(base, ".bin"))
            return 1;
        if (!strcmp(base, "test_batch.bin"))
            return *split = SPLIT_TEST, 1;
        return !strcmp(base, "batches.meta.txt") ? 2 : 0;
    }
    if (!strcmp(base, "train.bin"))
        return 1;
    if (!strcmp(base, "test.bin"))
        return *split = SPLIT_TEST, 1;
    return !strcmp(base, coarse ? "coarse_label_names.txt" : "fine_label_names.txt") ? 2 : 0;
}
