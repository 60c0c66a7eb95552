/* xfer-ingest: datasets in their native formats into stored tasks, and
 * published benchmarks / run records into the metadata store.
 * To add a command: write cmd_NAME(argc, argv) and list it in commands[]. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/config.h"
#include "data/dataset.h"
#include "data/import.h"
#include "db/store.h"
#include "space/space.h"

static const char *const tool = "xfer-ingest";

static const char usage[] =
    "usage: xfer-ingest [--db PATH] COMMAND [OPTIONS]\n"
    "\n"
    "  add SOURCE... --name NAME [--format F] [--classes A,B,...] [--resize HxW]\n"
    "        [--grayscale] [--limit-per-class N] [--valid-fraction F] [--seed S]\n"
    "        [--coarse] [--replace] [--json]\n"
    "      store a dataset: CIFAR-10/100 binary tarballs, IDX files (MNIST family,\n"
    "      gzip or raw; a directory or the files), NPY/NPZ, SVHN .mat, PNG class\n"
    "      folders (a directory or a tar/zip); format from content unless --format\n"
    "      (" INGEST_FORMAT_LIST ")\n"
    "  list [--json]            the stored datasets\n"
    "  show NAME [--json]       one dataset\n"
    "  bench FILE --space nb201 --arch-column COL --metric TASK=COL...\n"
    "        [--valid-metric TASK=COL...] [--epochs N] [--scale auto|percent|fraction]\n"
    "      import a tabular benchmark (CSV, optionally gzip) as runs on virtual\n"
    "      datasets named TASK\n"
    "  runs FILE.jsonl|-        import run records (JSON Lines, as train-meta writes)\n"
    "\n"
    "  --db PATH   the database (default $XFER_DB, else ./" XFER_DEFAULT_DB ")\n"
    "exit codes: 0 ok, 1 failure, 2 usage, 3 interrupted\n";

static const char *db_path;
static int as_json;

static int usage_error(XErr *e, const char *what)
{
    return xerr_set(e, XE_USAGE, "%s (see 'xfer-ingest --help')", what);
}

static int parse_resize(const char *s, IngestOpts *o, XErr *e)
{
    long h, w;
    char *x = strchr(s, 'x'), hs[32];
    if (!x || (size_t)(x - s) >= sizeof hs)
        return xerr_set(e, XE_USAGE, "--resize: expected HxW, got '%s'", s);
    snprintf(hs, sizeof hs, "%.*s", (int)(x - s), s);
    if (cli_long("--resize", hs, 1, XFER_MAX_SIDE, &h, e) || cli_long("--resize", x + 1, 1, XFER_MAX_SIDE, &w, e))
        return e->code;
    o->resize_h = (int)h;
    o->resize_w = (int)w;
    return XE_OK;
}

static int cmd_add(int argc, char **argv, XErr *e)
{
    static const struct option opts[] = {
        { "name", required_argument, 0, 'n' },      { "format", required_argument, 0, 'f' },
        { "classes", required_argument, 0, 'c' },   { "resize", required_argument, 0, 'r' },
        { "grayscale", no_argument, 0, 'g' },       { "limit-per-class", required_argument, 0, 'l' },
        { "valid-fraction", required_argument, 0, 'v' }, { "seed", required_argument, 0, 's' },
        { "coarse", no_argument, 0, 'C' },          { "replace", no_argument, 0, 'R' },
        { "json", no_argument, 0, 'j' },            { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    DatasetAdd a = { 0 };
    DatasetOutcome out;
    Store st;
    json_t *d;
    int c, rc = XE_OK;
    long v;
    a.opt.valid_fraction = -1;
    a.db = db_path;
    while (rc == XE_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': a.name = optarg; break;
        case 'f':
            if ((v = ingest_format_parse(optarg)) <= 0)
                rc = xerr_set(e, XE_USAGE, "--format: unknown format '%s' (valid: %s)", optarg, INGEST_FORMAT_LIST);
            a.format = (IngestFormat)v;
            break;
        case 'c':
            cli_free_list(a.opt.classes, a.opt.nclasses);
            rc = cli_split("--classes", optarg, &a.opt.classes, &a.opt.nclasses, e);
            break;
        case 'r': rc = parse_resize(optarg, &a.opt, e); break;
        case 'g': a.opt.grayscale = 1; break;
        case 'l':
            rc = cli_long("--limit-per-class", optarg, 1, 1L << 30, &v, e);
            a.opt.limit_per_class = v;
            break;
        case 'v': rc = cli_double("--valid-fraction", optarg, 0, 0.9, &a.opt.valid_fraction, e); break;
        case 's':
            rc = cli_long("--seed", optarg, 0, 0x7fffffffL, &v, e);
            a.opt.seed = (uint64_t)v;
            break;
        case 'C': a.opt.coarse = 1; break;
        case 'R': a.replace = 1; break;
        case 'j': as_json = 1; break;
        case 'h': fputs(usage, stdout); return XE_OK;
        default: rc = usage_error(e, "add: bad option");
        }
    }
    if (rc)
        goto cleanup;
    if (!a.name || optind >= argc) {
        rc = usage_error(e, !a.name ? "add: --name NAME is required" : "add: give a SOURCE");
        goto cleanup;
    }
    for (int i = 0; i < a.opt.nclasses; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(a.opt.classes[i], a.opt.classes[j])) {
                rc = xerr_set(e, XE_USAGE, "--classes: '%s' given twice", a.opt.classes[i]);
                goto cleanup;
            }
    a.sources = argv + optind;
    a.nsources = argc - optind;
    xfer_catch_signals();
    if ((rc = dataset_add(&a, &out, e)))
        goto cleanup;
    if ((rc = store_open(&st, db_path, 0, e)))
        goto cleanup;
    d = dataset_get(&st, a.name, e);
    store_close(&st);
    if (!d) {
        rc = e->code;
        goto cleanup;
    }
    fprintf(stderr, "%s: %s '%s'%s: %lld train, %lld valid, %lld test, %lldx%lldx%lld, %lld classes\n", tool,
            out == DATASET_UNCHANGED ? "already stored:" : out == DATASET_REPLACED ? "replaced" : "stored", a.name,
            out == DATASET_UNCHANGED ? " from the same source and options, nothing to do" : "", json_integer_value(json_object_get(d, "n_train")),
            json_integer_value(json_object_get(d, "n_valid")), json_integer_value(json_object_get(d, "n_test")),
            json_integer_value(json_object_get(d, "height")), json_integer_value(json_object_get(d, "width")),
            json_integer_value(json_object_get(d, "channels")), json_integer_value(json_object_get(d, "classes")));
    dataset_print(stdout, d, as_json);
    json_decref(d);
cleanup:
    cli_free_list(a.opt.classes, a.opt.nclasses);
    return rc;
}

static int parse_json_flag(int argc, char **argv, int nargs, const char *cmd, XErr *e)
{
    static const struct option opts[] = {
        { "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            as_json = 1;
        else if (c == 'h')
            return fputs(usage, stdout), -1;
        else
            return usage_error(e, "bad option");
    }
    if (argc - optind != nargs) {
        char what[64];
        snprintf(what, sizeof what, "%s takes %s", cmd, nargs ? "one NAME" : "no arguments");
        return usage_error(e, what);
    }
    return XE_OK;
}

static int cmd_list(int argc, char **argv, XErr *e)
{
    Store st;
    json_t *all, *d;
    size_t i;
    int rc = parse_json_flag(argc, argv, 0, "list", e);
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if (store_open(&st, db_path, 0, e))
        return e->code;
    all = dataset_list(&st, e);
    store_close(&st);
    if (!all)
        return e->code;
    if (!as_json && json_array_size(all))
        printf("%-20s %-8s %-10s %-12s %7s %8s %8s %8s %6s\n", "NAME", "KIND", "FORMAT", "SHAPE", "CLASSES",
               "TRAIN", "VALID", "TEST", "RUNS");
    json_array_foreach(all, i, d)
    {
        char shape[48] = "-";
        if (as_json) {
            dataset_print(stdout, d, 1);
            continue;
        }
        if (json_integer_value(json_object_get(d, "height")))
            snprintf(shape, sizeof shape, "%lldx%lldx%lld", json_integer_value(json_object_get(d, "height")),
                     json_integer_value(json_object_get(d, "width")),
                     json_integer_value(json_object_get(d, "channels")));
        printf("%-20s %-8s %-10s %-12s %7lld %8lld %8lld %8lld %6lld\n",
               json_string_value(json_object_get(d, "name")), json_string_value(json_object_get(d, "kind")),
               json_string_value(json_object_get(d, "format")), shape,
               json_integer_value(json_object_get(d, "classes")), json_integer_value(json_object_get(d, "n_train")),
               json_integer_value(json_object_get(d, "n_valid")), json_integer_value(json_object_get(d, "n_test")),
               json_integer_value(json_object_get(d, "runs")));
    }
    json_decref(all);
    return XE_OK;
}

static int cmd_show(int argc, char **argv, XErr *e)
{
    Store st;
    json_t *d;
    int rc = parse_json_flag(argc, argv, 1, "show", e);
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if (store_open(&st, db_path, 0, e))
        return e->code;
    d = dataset_get(&st, argv[optind], e);
    store_close(&st);
    if (!d)
        return e->code;
    dataset_print(stdout, d, as_json);
    json_decref(d);
    return XE_OK;
}

static void print_stats(const char *what, const char *file, const ImportStats *s)
{
    if (as_json)
        printf("{\"file\":\"%s\",\"rows\":%ld,\"added\":%ld,\"present\":%ld,\"datasets_created\":%ld}\n", file,
               s->rows, s->added, s->present, s->datasets);
    else
        printf("%s '%s': %ld rows, %ld runs added, %ld already present, %ld datasets created\n", what, file,
               s->rows, s->added, s->present, s->datasets);
}

static int push_pair(const char *opt, char ***keys, char ***vals, int *n, XErr *e)
{
    char **k = realloc(*keys, (size_t)(*n + 1) * sizeof *k), **v;
    if (k)
        *keys = k;
    v = realloc(*vals, (size_t)(*n + 1) * sizeof *v);
    if (v)
        *vals = v;
    if (!k || !v)
        return xerr_set(e, XE_FAIL, "out of memory");
    if (cli_pair(opt, optarg, &(*keys)[*n], &(*vals)[*n], e))
        return e->code;
    (*n)++;
    return XE_OK;
}

static int cmd_bench(int argc, char **argv, XErr *e)
{
    static const struct option opts[] = {
        { "space", required_argument, 0, 's' },  { "arch-column", required_argument, 0, 'a' },
        { "metric", required_argument, 0, 'm' }, { "valid-metric", required_argument, 0, 'v' },
        { "epochs", required_argument, 0, 'E' }, { "scale", required_argument, 0, 'S' },
        { "json", no_argument, 0, 'j' },         { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    BenchImport bi = { 0 };
    ImportStats st;
    int c, rc = XE_OK;
    long v;
    bi.db = db_path;
    bi.space = "nb201";
    bi.arch_col = "arch";
    bi.scale = "auto";
    while (rc == XE_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': bi.space = optarg; break;
        case 'a': bi.arch_col = optarg; break;
        case 'm': rc = push_pair("--metric", &bi.tasks, &bi.cols, &bi.nmetric, e); break;
        case 'v': rc = push_pair("--valid-metric", &bi.vtasks, &bi.vcols, &bi.nvalid, e); break;
        case 'E':
            rc = cli_long("--epochs", optarg, 1, 100000, &v, e);
            bi.epochs = (int)v;
            break;
        case 'S':
            bi.scale = optarg;
            if (strcmp(optarg, "auto") && strcmp(optarg, "percent") && strcmp(optarg, "fraction"))
                rc = xerr_set(e, XE_USAGE, "--scale: '%s' is not auto, percent or fraction", optarg);
            break;
        case 'j': as_json = 1; break;
        case 'h': fputs(usage, stdout); goto cleanup;
        default: rc = usage_error(e, "bench: bad option");
        }
    }
    if (rc == XE_OK && argc - optind != 1)
        rc = usage_error(e, "bench takes one FILE");
    if (rc == XE_OK && bi.nmetric == 0)
        rc = usage_error(e, "bench: give at least one --metric TASK=COLUMN");
    for (int i = 0; rc == XE_OK && i < bi.nmetric; i++)
        rc = dataset_name_check(bi.tasks[i], e);
    if (rc)
        goto cleanup;
    bi.file = argv[optind];
    if ((rc = bench_import(&bi, &st, e)) == XE_OK)
        print_stats("imported", bi.file, &st);
cleanup:
    cli_free_list(bi.tasks, bi.nmetric);
    cli_free_list(bi.cols, bi.nmetric);
    cli_free_list(bi.vtasks, bi.nvalid);
    cli_free_list(bi.vcols, bi.nvalid);
    return rc;
}

static int cmd_runs(int argc, char **argv, XErr *e)
{
    ImportStats st;
    int rc = parse_json_flag(argc, argv, 1, "runs", e);
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if ((rc = runs_import(db_path, argv[optind], &st, e)) == XE_OK)
        print_stats("imported", argv[optind], &st);
    return rc;
}

static const CliCommand commands[] = {
    { "add", cmd_add }, { "list", cmd_list }, { "show", cmd_show }, { "bench", cmd_bench }, { "runs", cmd_runs },
};

int main(int argc, char **argv)
{
    return cli_main(tool, usage, commands, sizeof commands / sizeof *commands, store_default_path, &db_path, argc,
                    argv);
}
