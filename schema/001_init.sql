-- Migration 1: the entities of the meta-dataset (shared/DESIGN.md).
-- Landed migrations are never edited: add 002_*.sql instead.
-- Accuracies are fractions in [0, 1]; times are UTC ISO-8601 text.

CREATE TABLE datasets (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('stored', 'virtual')),
    source      TEXT NOT NULL,              -- what it was made from (paths, benchmark file)
    format      TEXT NOT NULL,              -- idx, cifar10, cifar100, npy, npz, svhn, imgfolder, bench, runs
    options     TEXT NOT NULL DEFAULT '{}', -- JSON: the ingest options
    fingerprint TEXT,                       -- source identity + options: re-ingest detection
    height      INTEGER,
    width       INTEGER,
    channels    INTEGER,
    classes     INTEGER,
    class_names TEXT,                       -- JSON array, index = label
    n_train     INTEGER,
    n_valid     INTEGER,
    n_test      INTEGER,
    mean        TEXT,                       -- JSON array per channel, pixel/255, train split
    std         TEXT,
    checksum    TEXT,                       -- SHA-256 of the stored task file
    path        TEXT,                       -- stored task file, relative to the database
    meta        TEXT NOT NULL DEFAULT '{}', -- meta-features (JSON)
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    CHECK (kind = 'virtual' OR (path IS NOT NULL AND checksum IS NOT NULL))
);

CREATE TABLE archs (
    id    INTEGER PRIMARY KEY,
    space TEXT NOT NULL,                    -- nb201, darts
    arch  TEXT NOT NULL,                    -- canonical arch string
    hash  TEXT NOT NULL,
    UNIQUE (space, arch)
);
CREATE INDEX archs_hash ON archs (hash);

-- Params and FLOPs depend on the macro skeleton (width, cells, input, classes).
CREATE TABLE arch_costs (
    arch_id INTEGER NOT NULL REFERENCES archs (id) ON DELETE CASCADE,
    macro   TEXT NOT NULL,                  -- e.g. 'C16-N5-32x32x3-10'
    params  INTEGER NOT NULL,
    flops   INTEGER NOT NULL,
    PRIMARY KEY (arch_id, macro)
) WITHOUT ROWID;

CREATE TABLE protocols (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL,                   -- preset name, or 'imported'
    hash   TEXT NOT NULL UNIQUE,            -- SHA-256 of the canonical recipe JSON
    recipe TEXT NOT NULL                    -- width, cells, epochs, batch, lr, schedule, augmentation, precision
);

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    arch_id      INTEGER NOT NULL REFERENCES archs (id),
    dataset_id   INTEGER NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    protocol_id  INTEGER NOT NULL REFERENCES protocols (id),
    seed         INTEGER NOT NULL DEFAULT 0,
    status       TEXT NOT NULL DEFAULT 'planned'
                 CHECK (status IN ('planned', 'running', 'done', 'failed', 'terminated-early')),
    source       TEXT NOT NULL DEFAULT 'trained' CHECK (source IN ('trained', 'imported')),
    worker       TEXT,                      -- claim holder while running
    lease_until  REAL,                      -- unix time the claim expires
    heartbeat_at REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    planned_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    started_at   TEXT,
    finished_at  TEXT,
    device       TEXT,
    epochs_done  INTEGER NOT NULL DEFAULT 0,
    seconds      REAL,
    valid_acc    REAL CHECK (valid_acc IS NULL OR (valid_acc >= 0 AND valid_acc <= 1)),
    test_acc     REAL CHECK (test_acc IS NULL OR (test_acc >= 0 AND test_acc <= 1)),
    params       INTEGER,
    flops        INTEGER,
    error        TEXT,                      -- why it failed or stopped early
    UNIQUE (arch_id, dataset_id, protocol_id, seed)
);
CREATE INDEX runs_status ON runs (status, dataset_id);
CREATE INDEX runs_dataset ON runs (dataset_id, protocol_id);

CREATE TABLE curves (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch      INTEGER NOT NULL CHECK (epoch >= 1),
    train_loss REAL,
    train_acc  REAL,
    valid_loss REAL,
    valid_acc  REAL,
    lr         REAL,
    seconds    REAL,
    PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;

CREATE TABLE proxies (
    arch_id    INTEGER NOT NULL REFERENCES archs (id),
    dataset_id INTEGER NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,               -- synflow, naswot, grad_norm, snip, zen, params, flops
    seed       INTEGER NOT NULL DEFAULT 0,
    value      REAL,
    PRIMARY KEY (arch_id, dataset_id, name, seed)
) WITHOUT ROWID;

CREATE TABLE models (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,               -- autoencoder, transfer, ranker, ...
    space      TEXT NOT NULL,
    fitted_on  TEXT NOT NULL,               -- JSON: tasks, run counts, protocol, seed
    config     TEXT NOT NULL DEFAULT '{}',
    blob       BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE searches (
    id           INTEGER PRIMARY KEY,
    dataset_id   INTEGER NOT NULL REFERENCES datasets (id),
    space        TEXT NOT NULL,
    optimizer    TEXT NOT NULL,             -- xfer, nao, rea, random
    config       TEXT NOT NULL DEFAULT '{}',
    status       TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    best_arch_id INTEGER REFERENCES archs (id),
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    finished_at  TEXT
);

CREATE TABLE search_steps (
    search_id     INTEGER NOT NULL REFERENCES searches (id) ON DELETE CASCADE,
    step          INTEGER NOT NULL,
    arch_id       INTEGER NOT NULL REFERENCES archs (id),
    run_id        INTEGER REFERENCES runs (id),
    predicted     REAL,
    predicted_std REAL,
    observed      REAL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (search_id, step)
) WITHOUT ROWID;
