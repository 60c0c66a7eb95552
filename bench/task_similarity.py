# Which meta-features tell which tasks rank cells alike: for every pair of
# tasks in a store, their agreement (Spearman of the final validation
# accuracies of the cells both have) against their distance in the basic
# meta-features (log classes, height, channels) and in the probes
# (xfer-train-meta probe: log error rates, and their pattern: log error
# rates less their mean per task). Prints the pairs and the Spearman of
# agreement with minus each distance over the pairs.
# Usage: python3 bench/task_similarity.py DB   (every task needs probes)
import itertools, json, math, sqlite3, sys

PROBES = ("conv3", "conv1", "pool", "skip")


def rank(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(x, y):
    rx, ry = rank(x), rank(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    return sxy / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


def dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/task_similarity.py DB")
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    tasks, acc, basic, err = [], {}, {}, {}
    for name, classes, height, channels, meta in db.execute(
            "SELECT name, classes, height, channels, meta FROM datasets ORDER BY name"):
        probes = json.loads(meta).get("probes")
        if not probes:
            sys.exit(f"task_similarity: '{name}' has no probes (xfer-train-meta probe)")
        tasks.append(name)
        basic[name] = [math.log(v) for v in (classes, height, channels)]
        err[name] = [math.log(max(1 - probes[p], 1e-3)) for p in PROBES]
        acc[name] = dict(db.execute("SELECT r.arch_id, r.valid_acc FROM runs r JOIN datasets d ON d.id = r.dataset_id"
                                    " WHERE d.name = ? AND r.status = 'done' AND r.valid_acc IS NOT NULL", (name,)))
    pattern = {t: [x - sum(err[t]) / len(err[t]) for x in err[t]] for t in tasks}
    rows = []
    print("| pair | agreement | basic distance | probe distance | probe pattern distance |")
    print("|---|---|---|---|---|")
    for a, b in itertools.combinations(tasks, 2):
        cells = sorted(set(acc[a]) & set(acc[b]))
        row = (spearman([acc[a][c] for c in cells], [acc[b][c] for c in cells]), dist(basic[a], basic[b]),
               dist(err[a], err[b]), dist(pattern[a], pattern[b]))
        rows.append(row)
        print(f"| {a} - {b} | {row[0]:.3f} | {row[1]:.3f} | {row[2]:.3f} | {row[3]:.3f} |")
    agree = [r[0] for r in rows]
    for i, what in ((1, "basic features"), (2, "probes"), (3, "probe pattern")):
        print(f"Spearman of agreement with minus the {what} distance: {spearman(agree, [-r[i] for r in rows]):.2f}")


if __name__ == "__main__":
    main()
