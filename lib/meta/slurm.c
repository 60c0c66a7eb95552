/* xfer-train-meta slurm: writes a collection directory (seed shard, each
 * array task's archs, the job array's and the merge job's sbatch scripts)
 * and submits it. What the scripts do is described in meta/slurm.h; the
 * scripts are bash, generated here from fixed bodies after a header of
 * quoted values. */
#include "meta/slurm.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "meta/meta.h"

extern char **environ;

/* seconds of warning before the time limit: enough to finish a batch,
 * write the checkpoint and copy the shard to shared storage */
#define SLURM_LEAD_MAX 300

int slurm_time_seconds(const char *s, long *seconds, XErr *e)
{
    long d = 0, h, m, sec;
    int n = 0;
    const char *p = s;
    if (strchr(s, '-')) {
        if (sscanf(p, "%ld-%n", &d, &n) != 1 || n == 0 || d < 0 || d > 365)
            return xerr_set(e, XE_USAGE, "--time: '%s' is not [D-]HH:MM:SS", s);
        p += n;
    }
    n = 0;
    if (sscanf(p, "%2ld:%2ld:%2ld%n", &h, &m, &sec, &n) != 3 || p[n] || strlen(p) != 8 || h < 0 || m < 0 ||
        m > 59 || sec < 0 || sec > 59)
        return xerr_set(e, XE_USAGE, "--time: '%s' is not [D-]HH:MM:SS", s);
    *seconds = ((d * 24 + h) * 60 + m) * 60 + sec;
    if (*seconds < 60)
        return xerr_set(e, XE_USAGE, "--time: '%s' is under a minute", s);
    return XE_OK;
}

char *slurm_default_dir(const char *db, const char *dataset)
{
    char stamp[32], *p;
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    return asprintf(&p, "%s.slurm/%s-%s", db, dataset, stamp) < 0 ? NULL : p;
}

char *slurm_absolute(const char *path)
{
    char cwd[4096], *p;
    if (path[0] == '/')
        return strdup(path);
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    return asprintf(&p, "%s/%s", cwd, path) < 0 ? NULL : p;
}

/* ---- running Slurm's commands ---- */

/* 1 when name is an executable file in a directory of $PATH. */
static int on_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[4096];
    while (path && *path) {
        size_t len = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)(len ? len : 1), len ? path : ".", name);
        if (access(buf, X_OK) == 0)
            return 1;
        path += len + (path[len] == ':');
    }
    return 0;
}

/* Runs argv (found on PATH, no shell) and captures its stdout and stderr
 * (each up to cap - 1 bytes, NUL-terminated); *status: its exit status,
 * or 128 + the signal that ended it. */
static int capture(char *const argv[], char *out, char *err, size_t cap, int *status, XErr *e)
{
    int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, ws, rc = XE_OK;
    size_t n[2] = { 0, 0 };
    char *buf[2] = { out, err };
    posix_spawn_file_actions_t fa;
    pid_t pid;
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
        rc = xerr_set(e, XE_FAIL, "%s: pipe: %s", argv[0], strerror(errno));
        goto cleanup;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    errno = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    if (errno) {
        rc = xerr_set(e, XE_FAIL, "%s: %s", argv[0], strerror(errno));
        goto cleanup;
    }
    /* both pipes at once, so a chatty stderr cannot block the child */
    for (int open = 2; open;) {
        struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            char junk[512];
            ssize_t got;
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (n[i] + 1 < cap)
                got = read(pf[i].fd, buf[i] + n[i], cap - 1 - n[i]);
            else
                got = read(pf[i].fd, junk, sizeof junk);
            if (got > 0 && n[i] + 1 < cap)
                n[i] += (size_t)got;
            if (got <= 0 && !(got < 0 && errno == EINTR)) {
                close(pf[i].fd);
                (i ? pe : po)[0] = -1;
                open--;
            }
        }
    }
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
cleanup:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    out[n[0]] = err[n[1]] = 0;
    return rc;
}

/* The last non-empty line of text, without Slurm's "sbatch: error: " prefix. */
static const char *last_line(char *text)
{
    char *end = text + strlen(text), *start, *p;
    while (end > text && (end[-1] == '\n' || end[-1] == ' '))
        *--end = 0;
    start = strrchr(text, '\n');
    start = start ? start + 1 : text;
    if ((p = strstr(start, ": error: ")))
        start = p + 9;
    return *start ? start : "no message";
}

int slurm_check_submit(const SlurmSpec *s, XErr *e)
{
    char out[8192], err[sizeof out], *list, *tok, *save = NULL; /* capture fills each up to one size */
    int status, rc = XE_OK;
    if (!on_path("sbatch"))
        return xerr_set(e, XE_FAIL,
                        "--submit: sbatch not found on PATH (not a Slurm submit host?); without --submit the "
                        "scripts are written for submitting elsewhere");
    if (!s->partition || !on_path("sinfo"))
        return XE_OK; /* sbatch judges the partition */
    char *argv[] = { "sinfo", "--noheader", "--format=%R", NULL };
    if (capture(argv, out, err, sizeof out, &status, e))
        return e->code;
    if (status)
        return xerr_set(e, XE_FAIL, "sinfo failed (exit %d): %s", status, last_line(err));
    if (!(list = strdup(s->partition)))
        return xerr_set(e, XE_FAIL, "out of memory");
    for (tok = strtok_r(list, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        size_t len = strlen(tok);
        for (const char *l = out; *l && !found; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0))
            found = strncmp(l, tok, len) == 0 && (l[len] == '\n' || l[len] == 0);
        if (!found) {
            for (char *c = out; *c; c++)
                if (*c == '\n')
                    *c = c[1] ? ' ' : 0;
            rc = xerr_set(e, XE_FAIL, "--partition: partition '%s' does not exist (sinfo knows: %s)", tok,
                          *out ? out : "none");
        }
    }
    free(list);
    return rc;
}

/* ---- the collection directory ---- */

/* Values that go into #SBATCH lines and paths unquoted by Slurm: no blanks,
 * quotes or '%' (Slurm's file name patterns). */
static int safe_word(const char *what, const char *s, const char *extra, XErr *e)
{
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("._-", *c) || strchr(extra, *c)))
            return xerr_set(e, XE_USAGE, "%s: '%s': the character '%c' cannot go into a Slurm script", what, s,
                            *c);
    return *s ? XE_OK : xerr_set(e, XE_USAGE, "%s: empty", what);
}

/* A single-quoted shell word. */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

static char *path_join(const char *dir, const char *name)
{
    char *p;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static int mkdir_p(const char *path, XErr *e)
{
    char *p = strdup(path);
    int rc = XE_OK;
    if (!p)
        return xerr_set(e, XE_FAIL, "out of memory");
    for (char *c = p + 1; !rc; c++) {
        int end = !*c;
        if (*c != '/' && !end)
            continue;
        *c = 0;
        if (mkdir(p, 0777) && errno != EEXIST)
            rc = xerr_set(e, XE_FAIL, "'%s': %s", p, strerror(errno));
        if (end)
            break;
        *c = '/';
    }
    free(p);
    return rc;
}

/* The job array's script after its header: see slurm.h for what it does. */
static const char array_body[] =
    "K=${SLURM_ARRAY_TASK_ID:?not a task of a Slurm job array}\n"
    "LEASE=${XFER_LEASE:-120} # seconds until a killed worker's run comes free\n"
    "SAVE_EVERY=${XFER_SAVE_EVERY:-600}\n"
    "ARCHS=$DIR/archs/task-$K.jsonl\n"
    "STATE=$DIR/state/task-$K\n"
    "FINAL=$DIR/shards/shard-$K.db\n"
    "RESULTS=$DIR/logs/task-$K.jsonl # the workers' JSON lines\n"
    "LOCAL=$LOCAL_BASE/xfer-${SLURM_ARRAY_JOB_ID:-0}-$K\n"
    "DB=$LOCAL/shard.db\n"
    "\n"
    "log() { echo \"$(date -u +%FT%TZ) xfer-train-meta slurm: task $K: $*\" >&2; }\n"
    "\n"
    "# A trapped signal ends `wait` at once; the flag says which one came.\n"
    "stop=\n"
    "trap 'stop=requeue' USR1 # --signal: the time limit is near\n"
    "trap 'stop=stop' TERM INT # Slurm stops the task: requeue, pre-emption, scancel\n"
    "fail() {\n"
    "    [ -z \"$stop\" ] || exit 3\n"
    "    log \"$*\"\n"
    "    exit 1\n"
    "}\n"
    "nap() {\n"
    "    sleep \"$1\" &\n"
    "    wait $!\n"
    "    kill $! 2>/dev/null\n"
    "}\n"
    "# reap PID: its exit status, however often a signal interrupts the wait\n"
    "reap() {\n"
    "    while kill -0 \"$1\" 2>/dev/null; do wait \"$1\"; done\n"
    "    wait \"$1\"\n"
    "}\n"
    "alive() {\n"
    "    for p; do kill -0 \"$p\" 2>/dev/null && return 0; done\n"
    "    return 1\n"
    "}\n"
    "# stopped PID...: every thread of every process is stopped (or gone)\n"
    "stopped() {\n"
    "    local p s st\n"
    "    for p; do\n"
    "        for s in /proc/$p/task/*/stat; do\n"
    "            read -r st 2>/dev/null <\"$s\" || continue\n"
    "            st=${st##*) }\n"
    "            case ${st%% *} in T | t | Z | X) ;; *) return 1 ;; esac\n"
    "        done\n"
    "    done\n"
    "}\n"
    "# freeze PID...: SIGSTOP, then up to 10 s until every thread has stopped\n"
    "freeze() {\n"
    "    local i\n"
    "    kill -STOP \"$@\" 2>/dev/null\n"
    "    for ((i = 0; i < 100; i++)); do\n"
    "        stopped \"$@\" && return 0\n"
    "        sleep 0.1\n"
    "    done\n"
    "    return 1\n"
    "}\n"
    "# save [PID...]: the shard and its checkpoints into $STATE, as a new copy\n"
    "# and a swap ($STATE or $STATE.old always holds a whole state); only while\n"
    "# no worker writes: they have exited, or they are the PIDs, frozen. A\n"
    "# frozen copy is what SQLite recovers after a crash, and no checkpoint is\n"
    "# ahead of the curve points: a point is committed before its checkpoint.\n"
    "save() {\n"
    "    rm -rf \"$STATE.new\" && mkdir -p \"$STATE.new\" && cp \"$DB\" \"$STATE.new/shard.db\" &&\n"
    "        { [ ! -e \"$DB-wal\" ] || cp \"$DB-wal\" \"$STATE.new/shard.db-wal\"; } &&\n"
    "        { [ ! -d \"$DB.ckpt\" ] || cp -r \"$DB.ckpt\" \"$STATE.new/shard.db.ckpt\"; } &&\n"
    "        { [ $# -eq 0 ] || stopped \"$@\"; } &&\n"
    "        rm -rf \"$STATE.old\" && { [ ! -d \"$STATE\" ] || mv \"$STATE\" \"$STATE.old\"; } &&\n"
    "        mv \"$STATE.new\" \"$STATE\" && rm -rf \"$STATE.old\" && return 0\n"
    "    rm -rf \"$STATE.new\"\n"
    "    log \"could not save the shard into '$STATE'\"\n"
    "    return 1\n"
    "}\n"
    "# left: the shard's runs not finished yet (planned or running)\n"
    "left() {\n"
    "    local s p r\n"
    "    s=$(\"$XFER\" --db \"$DB\" status --json | tail -n 1)\n"
    "    case $s in '{\"total\":true,'*) ;; *) return 1 ;; esac\n"
    "    p=${s#*'\"planned\":'} r=${s#*'\"running\":'}\n"
    "    echo $((${p%%,*} + ${r%%,*}))\n"
    "}\n"
    "\n"
    "if [ -e \"$FINAL\" ]; then\n"
    "    log \"finished already: '$FINAL'\"\n"
    "    exit 0\n"
    "fi\n"
    "log \"starting on $(hostname) (job ${SLURM_JOB_ID:-none}, restart ${SLURM_RESTART_COUNT:-0}), shard '$DB'\"\n"
    "rm -rf \"$LOCAL\" && mkdir -p \"$LOCAL/${TASK_FILE%/*}\" \"$DIR/state\" \"$DIR/shards\" ||\n"
    "    fail \"cannot make '$LOCAL'\"\n"
    "[ -d \"$STATE\" ] || [ ! -d \"$STATE.old\" ] || mv \"$STATE.old\" \"$STATE\"\n"
    "if [ -e \"$STATE/shard.db\" ]; then\n"
    "    cp \"$STATE/shard.db\" \"$DB\" && { [ ! -e \"$STATE/shard.db-wal\" ] || cp \"$STATE/shard.db-wal\" \"$DB-wal\"; } &&\n"
    "        { [ ! -d \"$STATE/shard.db.ckpt\" ] || cp -r \"$STATE/shard.db.ckpt\" \"$DB.ckpt\"; } ||\n"
    "        fail \"cannot copy '$STATE' to '$LOCAL'\"\n"
    "    log \"resuming from '$STATE'\"\n"
    "else\n"
    "    cp \"$DIR/seed.db\" \"$DB\" || fail \"cannot copy '$DIR/seed.db' to '$DB'\"\n"
    "fi\n"
    "cp \"$MAIN_DIR/$TASK_FILE\" \"$LOCAL/$TASK_FILE\" || fail \"cannot copy the task file '$MAIN_DIR/$TASK_FILE'\"\n"
    "\"$XFER\" --db \"$DB\" plan \"${PLAN[@]}\" <\"$ARCHS\" || fail \"planning '$ARCHS' failed\"\n"
    "IFS=, read -r -a gpus <<<\"${CUDA_VISIBLE_DEVICES:-}\"\n"
    "[ ${#gpus[@]} -ge \"$GPUS\" ] || gpus=($(seq 0 $((GPUS - 1))))\n"
    "\n"
    "# rounds of workers until no run is left (runs a killed task held come\n"
    "# free when their lease ends) or a signal comes\n"
    "rc=0\n"
    "round=0\n"
    "while [ -z \"$stop\" ]; do\n"
    "    n=$(left) || fail \"cannot read the queue of '$DB'\"\n"
    "    [ \"$n\" -gt 0 ] || break\n"
    "    [ $round -eq 0 ] || nap 10\n"
    "    round=$((round + 1))\n"
    "    [ -z \"$stop\" ] || break\n"
    "    pids=\n"
    "    for ((i = 0; i < WORKERS; i++)); do\n"
    "        if [ \"$GPUS\" -gt 0 ]; then\n"
    "            CUDA_VISIBLE_DEVICES=${gpus[i]} \"$XFER\" --db \"$DB\" work --device \"$DEVICE\" --threads \"$THREADS\" \\\n"
    "                --lease $LEASE >>\"$RESULTS\" &\n"
    "        else\n"
    "            \"$XFER\" --db \"$DB\" work --device \"$DEVICE\" --threads \"$THREADS\" --lease $LEASE >>\"$RESULTS\" &\n"
    "        fi\n"
    "        pids=\"$pids $!\"\n"
    "    done\n"
    "    saved=$SECONDS\n"
    "    while [ -z \"$stop\" ] && alive $pids; do\n"
    "        nap 1\n"
    "        if [ -z \"$stop\" ] && [ $((SECONDS - saved)) -ge \"$SAVE_EVERY\" ]; then\n"
    "            freeze $pids && save $pids && log \"saved into '$STATE'\"\n"
    "            kill -CONT $pids 2>/dev/null\n"
    "            saved=$SECONDS\n"
    "        fi\n"
    "    done\n"
    "    [ -z \"$stop\" ] || kill -TERM $pids 2>/dev/null\n"
    "    for p in $pids; do\n"
    "        reap \"$p\"\n"
    "        r=$?\n"
    "        [ $r -eq 0 ] || [ $r -eq 3 ] || rc=$r\n"
    "    done\n"
    "    [ $rc -eq 0 ] || break\n"
    "done\n"
    "\n"
    "if [ -n \"$stop\" ]; then\n"
    "    save && log \"stopped; shard and checkpoints saved into '$STATE'\"\n"
    "    if [ \"$stop\" = requeue ]; then\n"
    "        # the requeue signals this very job: TERM must reach neither\n"
    "        # scontrol (it would fail after the requeue was done) nor log\n"
    "        trap '' TERM INT\n"
    "        if scontrol requeue \"${SLURM_JOB_ID:-}\"; then\n"
    "            log \"requeued ahead of the time limit\"\n"
    "        else\n"
    "            log \"could not requeue job ${SLURM_JOB_ID:-}: its shard waits in '$STATE'\"\n"
    "        fi\n"
    "    fi\n"
    "    exit 3\n"
    "fi\n"
    "if [ $rc -ne 0 ]; then\n"
    "    save\n"
    "    fail \"a worker failed (exit $rc); the shard stays in '$STATE' and the merge job will miss it\"\n"
    "fi\n"
    "\"$XFER\" --db \"$DB\" status >&2\n"
    "[ ! -s \"$DB-wal\" ] || fail \"'$DB' is still open ('$DB-wal' is left)\"\n"
    "cp \"$DB\" \"$FINAL.tmp\" && mv \"$FINAL.tmp\" \"$FINAL\" || fail \"cannot copy the shard to '$FINAL'\"\n"
    "rm -rf \"$STATE\" \"$STATE.old\" \"$LOCAL\"\n"
    "log \"finished: '$FINAL'\"\n";

static const char merge_body[] =
    "# A task requeued at the wrong moment can release the afterany dependency\n"
    "# while it waits to run again: merge only once no task of the array is\n"
    "# pending or running.\n"
    "if [ -n \"${XFER_ARRAY_JOB:-}\" ] && command -v squeue >/dev/null 2>&1; then\n"
    "    while [ -n \"$(squeue -h -j \"$XFER_ARRAY_JOB\" -o %i 2>/dev/null)\" ]; do\n"
    "        sleep 10\n"
    "    done\n"
    "fi\n"
    "tmp=$(mktemp) || exit 1\n"
    "trap 'rm -f \"$tmp\"' EXIT\n"
    "shards=()\n"
    "missing=0\n"
    "for ((k = 0; k < TASKS; k++)); do\n"
    "    if [ -e \"$DIR/shards/shard-$k.db\" ]; then\n"
    "        shards+=(\"$DIR/shards/shard-$k.db\")\n"
    "    else\n"
    "        echo \"xfer-train-meta slurm: merge: task $k left no shard '$DIR/shards/shard-$k.db'\" \\\n"
    "            \"(its log: '$DIR/logs/task-$k.log')\" >&2\n"
    "        missing=$((missing + 1))\n"
    "    fi\n"
    "done\n"
    "merged=0\n"
    "if [ ${#shards[@]} -gt 0 ]; then\n"
    "    \"$XFER\" --db \"$MAIN\" merge \"${shards[@]}\" 2>\"$tmp\"\n"
    "    cat \"$tmp\" >&2\n"
    "    merged=$(grep -c \"^xfer-train-meta: merged '\" \"$tmp\")\n"
    "fi\n"
    "\"$XFER\" --db \"$MAIN\" status\n"
    "if [ \"$merged\" -eq \"$TASKS\" ]; then\n"
    "    echo \"xfer-train-meta slurm: merge: all $TASKS shards merged into '$MAIN'\" >&2\n"
    "    exit 0\n"
    "fi\n"
    "echo \"xfer-train-meta slurm: merge: $merged of $TASKS shards merged into '$MAIN';\" \\\n"
    "    \"$missing missing, $((${#shards[@]} - merged)) not merged (reported above)\" >&2\n"
    "exit 1\n";

/* The #SBATCH lines both scripts share. */
static void sbatch_common(FILE *f, const SlurmSpec *s)
{
    fprintf(f, "#SBATCH --open-mode=append\n");
    if (s->partition)
        fprintf(f, "#SBATCH --partition=%s\n", s->partition);
}

/* The job name: xfer-DATASET with anything odd made '_'. */
static void job_name(FILE *f, const SlurmSpec *s, const char *suffix)
{
    fputs("#SBATCH --job-name=xfer-", f);
    for (const char *c = s->dataset; *c; c++)
        fputc((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      strchr("._-", *c)
                  ? *c
                  : '_',
              f);
    fprintf(f, "%s\n", suffix);
}

static int write_array(const SlurmSpec *s, const char *task_file, XErr *e)
{
    char *path = path_join(s->dir, "array.sbatch"), *main_dir = strdup(s->db), *slash;
    int workers = s->gpus > 0 ? s->gpus : 1, rc = XE_OK;
    long limit = 0, lead = SLURM_LEAD_MAX;
    FILE *f = NULL;
    if (!path || !main_dir) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    if (s->time && !slurm_time_seconds(s->time, &limit, e) && limit / 4 < lead)
        lead = limit / 4;
    if ((slash = strrchr(main_dir, '/')))
        *slash = 0;
    if (!(f = fopen(path, "w"))) {
        rc = xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
        goto cleanup;
    }
    fprintf(f, "#!/bin/bash\n"
               "# An array task of a metadata collection, written by 'xfer-train-meta slurm'\n"
               "# (lib/meta/slurm.h says what it does). Submit with the merge job after it:\n"
               "#   jid=$(sbatch --parsable %s/array.sbatch) &&\n"
               "#   sbatch --dependency=afterany:$jid %s/merge.sbatch\n",
            s->dir, s->dir);
    job_name(f, s, "");
    fprintf(f, "#SBATCH --array=0-%d\n#SBATCH --requeue\n#SBATCH --signal=B:USR1@%ld\n", s->tasks - 1, lead);
    fprintf(f, "#SBATCH --output=%s/logs/task-%%a.log\n", s->dir);
    sbatch_common(f, s);
    if (s->time)
        fprintf(f, "#SBATCH --time=%s\n", s->time);
    if (s->gpus > 0)
        fprintf(f, "#SBATCH --gres=gpu:%d\n", s->gpus);
    if (s->threads > 0)
        fprintf(f, "#SBATCH --cpus-per-task=%d\n", s->threads * workers);
    fputs("set -u\n\nXFER=${XFER_TRAIN_META:-", f);
    sh_quote(f, s->tool);
    fputs("}\nDIR=", f);
    sh_quote(f, s->dir);
    fputs("\nMAIN_DIR=", f);
    sh_quote(f, main_dir);
    fputs("\nTASK_FILE=", f);
    sh_quote(f, task_file);
    fputs(" # the dataset's task file, relative to MAIN_DIR and to the shard\nPLAN=(--dataset ", f);
    sh_quote(f, s->dataset);
    fputs(" --protocol ", f);
    sh_quote(f, s->protocol);
    for (int i = 0; i < s->nsets; i++) {
        fputs(" --set ", f);
        sh_quote(f, s->sets[i]);
    }
    fprintf(f, " --seeds %ld)\nWORKERS=%d\nGPUS=%d\nDEVICE=", s->seeds, workers, s->gpus);
    sh_quote(f, s->device);
    if (s->threads > 0)
        fprintf(f, "\nTHREADS=%d\n", s->threads);
    else
        fprintf(f, "\nTHREADS=$((${SLURM_CPUS_PER_TASK:-%d} / WORKERS))\n", workers);
    fputs("LOCAL_BASE=", f);
    if (s->local)
        sh_quote(f, s->local);
    else
        fputs("${XFER_LOCAL:-${TMPDIR:-/tmp}}", f);
    fputs("\n", f);
    fputs(array_body, f);
    if (fclose(f)) {
        f = NULL;
        rc = xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
        goto cleanup;
    }
    f = NULL;
    if (chmod(path, 0755))
        rc = xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
cleanup:
    if (f)
        fclose(f);
    free(path);
    free(main_dir);
    return rc;
}

static int write_merge(const SlurmSpec *s, XErr *e)
{
    char *path = path_join(s->dir, "merge.sbatch");
    FILE *f;
    if (!path)
        return xerr_set(e, XE_FAIL, "out of memory");
    if (!(f = fopen(path, "w"))) {
        xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
        free(path);
        return XE_FAIL;
    }
    fprintf(f, "#!/bin/bash\n"
               "# The merge job of a metadata collection, written by 'xfer-train-meta slurm':\n"
               "# merges every array task's shard into the main database, prints its status,\n"
               "# and exits 1 unless every shard was merged (each missing or unmergeable\n"
               "# one is named). Submit it after the array: --dependency=afterany:ARRAY_JOB.\n");
    job_name(f, s, "-merge");
    fprintf(f, "#SBATCH --output=%s/logs/merge.log\n", s->dir);
    sbatch_common(f, s);
    fputs("set -u\n\nXFER=${XFER_TRAIN_META:-", f);
    sh_quote(f, s->tool);
    fputs("}\nDIR=", f);
    sh_quote(f, s->dir);
    fputs("\nMAIN=", f);
    sh_quote(f, s->db);
    fprintf(f, "\nTASKS=%d\n", s->tasks);
    fputs(merge_body, f);
    if (fclose(f) || chmod(path, 0755)) {
        xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
        free(path);
        return XE_FAIL;
    }
    free(path);
    return XE_OK;
}

static int write_archs(const SlurmSpec *s, char *const *archs, long narchs, XErr *e)
{
    int rc = XE_OK;
    for (int k = 0; k < s->tasks && !rc; k++) {
        char *path = NULL;
        FILE *f;
        if (asprintf(&path, "%s/archs/task-%d.jsonl", s->dir, k) < 0)
            return xerr_set(e, XE_FAIL, "out of memory");
        if (!(f = fopen(path, "w")))
            rc = xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
        for (long i = k; f && i < narchs; i += s->tasks)
            fprintf(f, "%s\n", archs[i]);
        if (f && fclose(f))
            rc = xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
        free(path);
    }
    return rc;
}

/* seed.db: a new store with the dataset's row as the main one has it (so
 * shards merge back: same name, same checksum); *task_file gets the row's
 * task file path (relative to the database's directory). */
static int write_seed(Store *st, const SlurmSpec *s, char **task_file, XErr *e)
{
    char *path = path_join(s->dir, "seed.db");
    sqlite3_stmt *q = NULL;
    Store seed;
    int rc;
    if (!path)
        return xerr_set(e, XE_FAIL, "out of memory");
    if ((rc = store_open(&seed, path, 1, e)))
        goto cleanup;
    store_close(&seed);
    if ((rc = store_prepare(st, &q, "ATTACH DATABASE ?1 AS seed", e)))
        goto cleanup;
    sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
    rc = sqlite3_step(q) == SQLITE_DONE ? XE_OK : store_fail(st, e, "attaching the seed shard");
    sqlite3_finalize(q);
    if (rc)
        goto cleanup;
    if (!(rc = store_prepare(st, &q, "INSERT INTO seed.datasets SELECT * FROM main.datasets WHERE name = ?1", e))) {
        sqlite3_bind_text(q, 1, s->dataset, -1, SQLITE_STATIC);
        rc = sqlite3_step(q) == SQLITE_DONE && sqlite3_changes(st->db) == 1
                 ? XE_OK
                 : store_fail(st, e, "copying the dataset into the seed shard");
        sqlite3_finalize(q);
    }
    if (!rc && !(rc = store_prepare(st, &q, "SELECT path FROM main.datasets WHERE name = ?1", e))) {
        sqlite3_bind_text(q, 1, s->dataset, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_TEXT)
            rc = (*task_file = strdup((const char *)sqlite3_column_text(q, 0))) ? XE_OK
                                                                                : xerr_set(e, XE_FAIL, "out of memory");
        else
            rc = xerr_set(e, XE_FAIL, "dataset '%s' has no stored task file", s->dataset);
        sqlite3_finalize(q);
    }
    {
        XErr de = { 0 };
        store_exec(st, "DETACH DATABASE seed", &de);
    }
cleanup:
    free(path);
    return rc;
}

int slurm_check(Store *st, const SlurmSpec *s, XErr *e)
{
    int64_t id = 0;
    char *task = NULL, *p;
    double mean[4], std[4];
    Protocol pr;
    long limit;
    struct stat sb;
    if (s->tasks < 1)
        return xerr_set(e, XE_USAGE, "--tasks: at least 1");
    if (s->time && slurm_time_seconds(s->time, &limit, e))
        return e->code;
    if (s->partition && safe_word("--partition", s->partition, ",", e))
        return e->code;
    if (safe_word("--shared", s->dir, "/+,@=:~", e) || (s->local && safe_word("--local", s->local, "/+,@=:~", e)))
        return e->code;
    if (protocol_preset(s->protocol, &pr, e))
        return e->code;
    for (int i = 0; i < s->nsets; i++)
        if (protocol_set(&pr, s->sets[i], e))
            return e->code;
    if (store_dataset_find(st, s->dataset, &id, e))
        return e->code;
    if (!id)
        return xerr_set(e, XE_FAIL, "unknown dataset '%s' in '%s' ('xfer-ingest list' shows the stored ones)",
                        s->dataset, st->path);
    if (meta_dataset_task(st, id, &task, mean, std, e)) {
        xerr_prefix(e, "dataset '%s': ", s->dataset);
        return e->code;
    }
    if (access(task, R_OK)) {
        xerr_set(e, XE_FAIL, "dataset '%s': task file '%s': %s", s->dataset, task, strerror(errno));
        free(task);
        return XE_FAIL;
    }
    free(task);
    if (!(p = path_join(s->dir, "array.sbatch")))
        return xerr_set(e, XE_FAIL, "out of memory");
    if (stat(p, &sb) == 0)
        xerr_set(e, XE_FAIL, "'%s' holds a collection already (submit its scripts again, or give another --shared)",
                 s->dir);
    free(p);
    return e->code;
}

/* The protocol's hash as the store computes it (store_protocol_id). */
static int protocol_hash(const SlurmSpec *s, char hash[65], XErr *e)
{
    Protocol p;
    char *json, *canon = NULL;
    int rc;
    if (protocol_preset(s->protocol, &p, e))
        return e->code;
    for (int i = 0; i < s->nsets; i++)
        if (protocol_set(&p, s->sets[i], e))
            return e->code;
    if (!(json = protocol_json(&p)))
        return xerr_set(e, XE_FAIL, "out of memory");
    rc = store_recipe_hash(json, &canon, hash, e);
    free(json);
    free(canon);
    return rc;
}

int slurm_drop_finished(Store *st, const SlurmSpec *s, char **archs, long *narchs, long *dropped, XErr *e)
{
    sqlite3_stmt *q = NULL;
    char hash[65];
    long kept = 0;
    int rc;
    *dropped = 0;
    if ((rc = protocol_hash(s, hash, e)) ||
        (rc = store_prepare(st, &q,
                            "SELECT count(*) FROM runs r JOIN archs a ON a.id = r.arch_id"
                            " JOIN datasets d ON d.id = r.dataset_id JOIN protocols p ON p.id = r.protocol_id"
                            " WHERE a.space = ?1 AND a.arch = ?2 AND d.name = ?3 AND p.hash = ?4 AND r.seed < ?5"
                            " AND r.status IN ('done', 'failed', 'terminated-early')",
                            e)))
        return rc;
    for (long i = 0; i < *narchs; i++) {
        json_t *j = json_loads(archs[i], 0, NULL);
        long finished = 0;
        sqlite3_bind_text(q, 1, json_string_value(json_object_get(j, "space")), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 2, json_string_value(json_object_get(j, "arch")), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 3, s->dataset, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 5, s->seeds);
        json_decref(j);
        if (sqlite3_step(q) != SQLITE_ROW) {
            rc = store_fail(st, e, "reading finished runs");
            break;
        }
        finished = sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
        if (finished >= s->seeds) {
            free(archs[i]);
            (*dropped)++;
        } else {
            archs[kept++] = archs[i];
        }
    }
    /* on a failure the lines not looked at yet stay, after the kept ones */
    for (long i = kept + *dropped; rc && i < *narchs; i++)
        archs[kept++] = archs[i];
    *narchs = kept;
    sqlite3_finalize(q);
    return rc;
}

int slurm_write(Store *st, const SlurmSpec *s, char *const *archs, long narchs, XErr *e)
{
    char *task_file = NULL, *p = NULL;
    int rc;
    if (narchs < s->tasks)
        return xerr_set(e, XE_USAGE, "--tasks %d for %ld archs: every task needs an arch", s->tasks, narchs);
    if ((rc = slurm_check(st, s, e)))
        return rc;
    for (const char *sub = "archs\0logs\0shards\0state\0"; !rc && *sub; sub += strlen(sub) + 1) {
        if (!(p = path_join(s->dir, sub)))
            rc = xerr_set(e, XE_FAIL, "out of memory");
        else
            rc = mkdir_p(p, e);
        free(p);
    }
    if (!rc && !(rc = write_seed(st, s, &task_file, e)) && !(rc = write_archs(s, archs, narchs, e)) &&
        !(rc = write_array(s, task_file, e)))
        rc = write_merge(s, e);
    free(task_file);
    if (rc)
        slurm_remove(s);
    return rc;
}

void slurm_remove(const SlurmSpec *s)
{
    static const char *const files[] = { "array.sbatch", "merge.sbatch", "seed.db", "seed.db-wal", "seed.db-shm" };
    static const char *const dirs[] = { "archs", "logs", "shards", "state" };
    char *p;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if ((p = path_join(s->dir, files[i])))
            unlink(p), free(p);
    for (int k = 0; k < s->tasks; k++)
        if (asprintf(&p, "%s/archs/task-%d.jsonl", s->dir, k) >= 0)
            unlink(p), free(p);
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        if ((p = path_join(s->dir, dirs[i])))
            rmdir(p), free(p);
    rmdir(s->dir);
}

/* ---- submission ---- */

/* sbatch --parsable [DEP] SCRIPT: the job id. */
static int sbatch(const char *script, const char *dep, const char *env, long *job, XErr *e)
{
    char out[4096], err[4096];
    char *argv[] = { "sbatch", "--parsable", (char *)(dep ? dep : script), (char *)(dep ? env : NULL),
                     (char *)(dep ? script : NULL), NULL };
    int status;
    if (capture(argv, out, err, sizeof out, &status, e))
        return e->code;
    if (status) {
        const char *why = last_line(err);
        if (strstr(why, "nvalid partition"))
            return xerr_set(e, XE_FAIL, "sbatch '%s': %s ('sinfo' lists the partitions)", script, why);
        return xerr_set(e, XE_FAIL, "sbatch '%s' failed (exit %d): %s", script, status, why);
    }
    if (sscanf(out, "%ld", job) != 1 || *job <= 0)
        return xerr_set(e, XE_FAIL, "sbatch '%s' printed no job id: '%s'", script, last_line(out));
    return XE_OK;
}

int slurm_submit(const SlurmSpec *s, long *array_job, long *merge_job, XErr *e)
{
    char *array = path_join(s->dir, "array.sbatch"), *merge = path_join(s->dir, "merge.sbatch");
    char dep[64], env[64], jid[32], out[1024], err[1024];
    int rc = XE_OK, status = 0;
    *array_job = *merge_job = 0;
    if (!array || !merge) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    if ((rc = sbatch(array, NULL, NULL, array_job, e)))
        goto cleanup;
    snprintf(dep, sizeof dep, "--dependency=afterany:%ld", *array_job);
    /* the merge job waits for requeued tasks too (see merge_body) */
    snprintf(env, sizeof env, "--export=ALL,XFER_ARRAY_JOB=%ld", *array_job);
    if ((rc = sbatch(merge, dep, env, merge_job, e))) {
        /* an array that nobody merges is work lost: take it back */
        char *argv[] = { "scancel", jid, NULL };
        XErr ce = { 0 };
        snprintf(jid, sizeof jid, "%ld", *array_job);
        if (capture(argv, out, err, sizeof out, &status, &ce) || status) {
            xerr_prefix(e, "array job %ld is queued without its merge job (scancel failed): ", *array_job);
        } else {
            xerr_prefix(e, "array job %ld cancelled: ", *array_job);
            *array_job = 0;
        }
    }
cleanup:
    free(array);
    free(merge);
    return rc;
}
