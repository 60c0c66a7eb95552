-- Training-free proxies depend on the network they score: the protocol's
-- macro (width, cells) and its batch, so the protocol is part of the key.
-- The table had no writer before this migration: it is rebuilt empty.
DROP TABLE proxies;
CREATE TABLE proxies (
    arch_id     INTEGER NOT NULL REFERENCES archs (id),
    dataset_id  INTEGER NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    protocol_id INTEGER NOT NULL REFERENCES protocols (id),
    name        TEXT NOT NULL,              -- synflow, naswot, jacob_cov, grad_norm, snip, zen, params, flops
    seed        INTEGER NOT NULL DEFAULT 0,
    value       REAL,                       -- NULL: the score does not exist for this network
    PRIMARY KEY (arch_id, dataset_id, protocol_id, name, seed)
) WITHOUT ROWID;
