/* Training protocols: named presets plus key=value overrides, stored as
 * canonical JSON (sorted keys) so equal recipes hash to one protocol row. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "meta/meta.h"

/* cheap: large-scale collection (C 8, N 1, 12 epochs); nb201: NAS-Bench-201's
 * 200-epoch recipe (C 16, N 5, batch 256, lr 0.1 cosine to 0, Nesterov,
 * weight decay 5e-4, crop 4 + flip); tiny: tests and smoke runs. */
static const Protocol presets[] = {
    { "cheap", 8, 1, 12, 64, 0.1, 0.0, 0.9, 5e-4, 0, 0, 0, 0, 1, 4, 1, 0, "fp32" },
    { "nb201", 16, 5, 200, 256, 0.1, 0.0, 0.9, 5e-4, 0, 0, 0, 0, 1, 4, 1, 0, "fp32" },
    { "tiny", 4, 1, 3, 16, 0.05, 0.0, 0.9, 5e-4, 0, 0, 0, 0, 1, 1, 0, 0, "fp32" },
};

const char *protocol_presets(void)
{
    return "cheap, nb201, tiny";
}

int protocol_preset(const char *name, Protocol *p, XErr *e)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name)) {
            *p = presets[i];
            return XE_OK;
        }
    return xerr_set(e, XE_USAGE, "unknown protocol '%s' (presets: %s)", name, protocol_presets());
}

typedef enum { F_INT, F_REAL, F_STR } FieldKind;

typedef struct Field {
    const char *key;
    FieldKind kind;
    size_t off;
    double lo, hi;
} Field;

#define FI(k, lo, hi) { #k, F_INT, offsetof(Protocol, k), lo, hi }
#define FR(k, lo, hi) { #k, F_REAL, offsetof(Protocol, k), lo, hi }

/* Sorted by key: the canonical JSON's order. */
static const Field fields[] = {
    FI(batch, 1, 4096),        FI(cells, 1, 64),          FR(clip, 0, 1e6),
    FI(crop_pad, 0, 64),       FI(cutout, 0, 1024),       FR(drop_path, 0, 0.9),
    FI(epochs, 1, 10000),      FI(flip, 0, 1),            FR(label_smoothing, 0, 0.9),
    FR(lr, 0, 100),            FR(lr_min, 0, 100),        FR(momentum, 0, 0.999),
    FI(nesterov, 0, 1),        { "precision", F_STR, 0, 0, 0 },
    FI(warmup, 0, 10000),      FI(width, 1, 256),         FR(wd, 0, 1),
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static const Field *field_of(const char *key)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (!strcmp(fields[i].key, key))
            return &fields[i];
    return NULL;
}

static const char *const field_list =
    "batch, cells, clip, crop_pad, cutout, drop_path, epochs, flip, label_smoothing, lr, lr_min, "
    "momentum, nesterov, precision, warmup, width, wd";

static int set_field(Protocol *p, const Field *f, const char *v, XErr *e)
{
    char opt[48];
    snprintf(opt, sizeof opt, "protocol %s", f->key);
    if (f->kind == F_STR) {
        if (strcmp(v, "fp32") && strcmp(v, "bf16") && strcmp(v, "fp16"))
            return xerr_set(e, XE_USAGE, "protocol precision: '%s' is not fp32, bf16 or fp16", v);
        snprintf(p->precision, sizeof p->precision, "%s", v);
    } else if (f->kind == F_INT) {
        long x;
        if (cli_long(opt, v, (long)f->lo, (long)f->hi, &x, e))
            return e->code;
        *(int *)((char *)p + f->off) = (int)x;
    } else {
        double x;
        if (cli_double(opt, v, f->lo, f->hi, &x, e))
            return e->code;
        *(double *)((char *)p + f->off) = x;
    }
    return XE_OK;
}

int protocol_set(Protocol *p, const char *kv, XErr *e)
{
    const char *eq = strchr(kv, '=');
    char key[32];
    const Field *f;
    if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key)
        return xerr_set(e, XE_USAGE, "--set: expected KEY=VALUE, got '%s'", kv);
    snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
    if (!(f = field_of(key)))
        return xerr_set(e, XE_USAGE, "--set: unknown protocol key '%s' (keys: %s)", key, field_list);
    return set_field(p, f, eq + 1, e);
}

char *protocol_json(const Protocol *p)
{
    json_t *o = json_object();
    char *s;
    for (size_t i = 0; i < NFIELDS; i++) {
        const Field *f = &fields[i];
        json_t *v = f->kind == F_STR   ? json_string(p->precision)
                    : f->kind == F_INT ? json_integer(*(const int *)((const char *)p + f->off))
                                       : json_real(*(const double *)((const char *)p + f->off));
        json_object_set_new(o, f->key, v);
    }
    json_object_set_new(o, "preset", json_string(p->name));
    s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(o);
    return s;
}

int protocol_parse(const char *text, Protocol *p, XErr *e)
{
    json_error_t je;
    json_t *o = json_loads(text, 0, &je), *v;
    memset(p, 0, sizeof *p);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return xerr_set(e, XE_FAIL, "protocol recipe is not a JSON object: %s", je.text);
    }
    v = json_object_get(o, "preset");
    snprintf(p->name, sizeof p->name, "%s", json_is_string(v) ? json_string_value(v) : "custom");
    for (size_t i = 0; i < NFIELDS; i++) {
        const Field *f = &fields[i];
        v = json_object_get(o, f->key);
        if (!v || (f->kind == F_STR ? !json_is_string(v) : !json_is_number(v))) {
            json_decref(o);
            return xerr_set(e, XE_FAIL, "protocol recipe: '%s' missing or of the wrong type", f->key);
        }
        if (f->kind == F_STR)
            snprintf(p->precision, sizeof p->precision, "%s", json_string_value(v));
        else if (f->kind == F_INT)
            *(int *)((char *)p + f->off) = (int)json_integer_value(v);
        else
            *(double *)((char *)p + f->off) = json_number_value(v);
    }
    json_decref(o);
    return XE_OK;
}

void protocol_recipe(const Protocol *p, uint64_t seed, Recipe *r)
{
    memset(r, 0, sizeof *r);
    r->epochs = p->epochs;
    r->lr = (float)p->lr;
    r->lr_min = (float)p->lr_min;
    r->warmup_epochs = p->warmup;
    r->momentum = (float)p->momentum;
    r->wd = (float)p->wd;
    r->nesterov = p->nesterov;
    r->clip = (float)p->clip;
    r->label_smoothing = (float)p->label_smoothing;
    r->drop_path = (float)p->drop_path;
    r->aug.crop_pad = p->crop_pad;
    r->aug.flip = p->flip;
    r->aug.cutout = p->cutout;
    r->seed = seed;
}
