# The margin rule over a store's curves: each task's done runs trained one
# after another in 5 seeded orders; a run stops at the first epoch k where
# its validation accuracy is more than m below the accuracy of the best run
# finished so far at epoch k. Prints, per task, time saved and regret (points
# of the best final accuracy) at each margin m; m = 0 is eval's
# curve-below-best rule (other orders: the numbers differ a little).
# Usage: python3 bench/curve_margin.py DB   (DB: e.g. bench/out/transfer-gpu/meta.db)
import random, sqlite3, sys

MARGINS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05)


def task_runs(db, task):
    runs = {}
    for rid, final in db.execute("SELECT r.id, r.valid_acc FROM runs r JOIN datasets d ON d.id = r.dataset_id"
                                 " WHERE d.name = ? AND r.status = 'done'", (task,)):
        runs[rid] = (final, [])
    for rid, acc in db.execute("SELECT c.run_id, c.valid_acc FROM curves c JOIN runs r ON r.id = c.run_id"
                               " JOIN datasets d ON d.id = r.dataset_id WHERE d.name = ? AND r.status = 'done'"
                               " ORDER BY c.run_id, c.epoch", (task,)):
        runs[rid][1].append(acc)
    return list(runs.values())


def simulate(runs, margin, orders=5, seed=1):
    rng = random.Random(seed)
    full = spent = regret = 0
    top = max(final for final, _ in runs)
    for _ in range(orders):
        order = list(range(len(runs)))
        rng.shuffle(order)
        best = None
        for i in order:
            final, curve = runs[i]
            full += len(curve)
            stop = None
            if best is not None:
                ref = runs[best][1]
                for k in range(1, len(curve)):
                    if curve[k - 1] < ref[min(k, len(ref)) - 1] - margin:
                        stop = k
                        break
            spent += stop or len(curve)
            if stop is None and (best is None or final > runs[best][0]):
                best = i
        regret += 100 * (top - runs[best][0])
    return full / spent, regret / orders


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/curve_margin.py DB")
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    tasks = [t for (t,) in db.execute("SELECT DISTINCT d.name FROM runs r JOIN datasets d ON d.id = r.dataset_id"
                                      " WHERE r.status = 'done' ORDER BY 1")]
    print("| task | " + " | ".join(f"m = {m:g}" for m in MARGINS) + " |")
    print("|---|" + "---|" * len(MARGINS))
    for t in tasks:
        runs = task_runs(db, t)
        cells = [f"{s:.2f}x, {r:.3f}" for s, r in (simulate(runs, m) for m in MARGINS)]
        print(f"| {t} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
