# How much the partial curve says beyond the arch, for the runs early
# termination must not get wrong. For every epoch k and every task held out
# in turn, a least-squares fit on the other tasks' runs of
#
#     final_r - final_ref = b0 + b1 * (prior_r - prior_ref) * spread
#                              + b2 * (acc_k,r - acc_k,ref)
#                              + b3 * (slope_k,r - slope_k,ref)
#
# over pairs of a run r from the top half of its task and a reference from
# the top tenth (the best run so far, in early termination); prior is the
# arch's mean z-scored final accuracy on the other source tasks, spread the
# task's robust spread of final accuracies (IQR / 1.349), slope_k the last
# epoch's change. Prints b1, b2 and the residual's standard deviation in
# points per epoch (mean over the held-out tasks), then the rule that stops
# a run at the first epoch where P(final_r > final_best) = Phi(mu / sigma)
# is below delta, simulated over each task's runs in 5 seeded orders as
# bench/curve_margin.py does (time saved, regret in points).
# Usage: python3 bench/curve_regress.py DB
import math, random, sqlite3, sys
from statistics import mean, pstdev

DELTAS = (0.01, 0.03, 0.05, 0.07, 0.08, 0.09, 0.1)


def load(db):
    data = {}
    tasks = [t for (t,) in db.execute("SELECT DISTINCT d.name FROM runs r JOIN datasets d ON d.id = r.dataset_id"
                                      " WHERE r.status = 'done' ORDER BY 1")]
    for t in tasks:
        runs = {}
        for rid, aid, final in db.execute("SELECT r.id, r.arch_id, r.valid_acc FROM runs r JOIN datasets d"
                                          " ON d.id = r.dataset_id WHERE d.name = ? AND r.status = 'done'", (t,)):
            runs[rid] = (aid, final, [])
        for rid, acc in db.execute("SELECT c.run_id, c.valid_acc FROM curves c JOIN runs r ON r.id = c.run_id"
                                   " JOIN datasets d ON d.id = r.dataset_id WHERE d.name = ? AND r.status = 'done'"
                                   " ORDER BY c.run_id, c.epoch", (t,)):
            runs[rid][2].append(acc)
        data[t] = {aid: (final, curve) for aid, final, curve in runs.values()}
    return tasks, data


def rsd(v):
    v = sorted(v)
    n = len(v)
    return (v[int(0.75 * (n - 1))] - v[int(0.25 * (n - 1))]) / 1.349


def prior(data, t, others):
    z = {}
    for o in others:
        fs = [f for f, _ in data[o].values()]
        m, s = mean(fs), pstdev(fs)
        z[o] = {a: (f - m) / s for a, (f, _) in data[o].items()}
    return {a: mean(z[o][a] for o in others if a in z[o]) for a in data[t]}


def feats(k, cr, cref, pr, pref, spread):
    slope = (cr[k - 1] - cr[k - 2]) - (cref[k - 1] - cref[k - 2]) if k >= 2 else 0.0
    return [1.0, (pr - pref) * spread, cr[k - 1] - cref[k - 1], slope]


def lstsq(X, y):
    n = len(X[0])
    A = [[sum(x[i] * x[j] for x in X) + (1e-9 if i == j else 0) for j in range(n)] for i in range(n)]
    b = [sum(x[i] * v for x, v in zip(X, y)) for i in range(n)]
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(A[r][i]))
        A[i], A[p], b[i], b[p] = A[p], A[i], b[p], b[i]
        for r in range(i + 1, n):
            f = A[r][i] / A[i][i]
            A[r] = [u - f * w for u, w in zip(A[r], A[i])]
            b[r] -= f * b[i]
    w = [0.0] * n
    for i in reversed(range(n)):
        w[i] = (b[i] - sum(A[i][c] * w[c] for c in range(i + 1, n))) / A[i][i]
    return w


def fit(tasks, data, held, epochs, rng):
    srcs = [s for s in tasks if s != held]
    models = []
    for k in range(1, epochs + 1):
        X, y = [], []
        for s in srcs:
            pri = prior(data, s, [o for o in srcs if o != s])
            spread = rsd([f for f, _ in data[s].values()])
            ranked = sorted(data[s], key=lambda a: -data[s][a][0])
            top, half = ranked[:len(ranked) // 10], ranked[:len(ranked) // 2]
            for _ in range(3000):
                r, ref = rng.choice(half), rng.choice(top)
                if r != ref:
                    X.append(feats(k, data[s][r][1], data[s][ref][1], pri[r], pri[ref], spread))
                    y.append(data[s][r][0] - data[s][ref][0])
        w = lstsq(X, y)
        res = [v - sum(a * b for a, b in zip(x, w)) for x, v in zip(X, y)]
        models.append((w, math.sqrt(sum(r * r for r in res) / len(res))))
    return models


def simulate(tasks, data, held, models, delta, orders=5, seed=1):
    rng = random.Random(seed)
    pri = prior(data, held, [s for s in tasks if s != held])
    archs = list(data[held])
    top = max(f for f, _ in data[held].values())
    full = spent = regret = 0
    for _ in range(orders):
        rng.shuffle(archs)
        best, done = None, []
        for a in archs:
            final, curve = data[held][a]
            full += len(curve)
            stop = None
            if best is not None:
                spread = rsd(done) if len(done) >= 4 else 0.015
                for k in range(1, len(curve)):
                    w, sig = models[k - 1]
                    mu = sum(p * q for p, q in zip(feats(k, curve, data[held][best][1], pri[a], pri[best], spread), w))
                    if sig > 0 and 0.5 * (1 + math.erf(mu / sig / math.sqrt(2))) < delta:
                        stop = k
                        break
            spent += stop or len(curve)
            if stop is None:
                done.append(final)
                if best is None or final > data[held][best][0]:
                    best = a
        regret += 100 * (top - data[held][best][0])
    return full / spent, regret / orders


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/curve_regress.py DB")
    tasks, data = load(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True))
    epochs = min(len(c) for t in tasks for _, c in data[t].values())
    fits = {t: fit(tasks, data, t, epochs, random.Random(7)) for t in tasks}
    print("| epoch | " + " | ".join(str(k) for k in range(1, epochs + 1)) + " |")
    print("|---|" + "---|" * epochs)
    for label, get in (("prior (b1)", lambda m: m[0][1]), ("curve (b2)", lambda m: m[0][2]),
                       ("residual sd, points", lambda m: 100 * m[1])):
        cells = [f"{mean(get(fits[t][k]) for t in tasks):.2f}" for k in range(epochs)]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print("| task | " + " | ".join(f"delta {d:g}" for d in DELTAS) + " |")
    print("|---|" + "---|" * len(DELTAS))
    for t in tasks:
        cells = [f"{s:.2f}x, {r:.3f}" for s, r in (simulate(tasks, data, t, fits[t], d) for d in DELTAS)]
        print(f"| {t} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
