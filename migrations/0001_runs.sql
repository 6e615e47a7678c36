-- One row per `perfwarden run`; everything else hangs off it.
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    commit_sha TEXT NOT NULL,            -- 'unknown' outside a git checkout
    branch TEXT,
    base_commit TEXT,
    pr_number INTEGER,
    dirty INTEGER NOT NULL,              -- 1 when the tree had uncommitted changes
    quick INTEGER NOT NULL,              -- 1 for `--quick` runs (few samples)
    machine_id TEXT NOT NULL,            -- hash of the fingerprint columns below
    cpu_model TEXT NOT NULL,
    cores INTEGER NOT NULL,
    os TEXT NOT NULL,
    rustc TEXT NOT NULL,
    valgrind TEXT,                       -- NULL when valgrind is missing
    started_at_ms INTEGER NOT NULL,      -- Unix time, milliseconds
    finished_at_ms INTEGER NOT NULL,
    notes TEXT NOT NULL DEFAULT ''       -- what was skipped and why, one line each
);
CREATE INDEX runs_by_commit ON runs (commit_sha);
CREATE INDEX runs_by_branch ON runs (branch, id);

-- Summary figures. A figure that could not be measured is stored with value NULL.
CREATE TABLE measurements (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    tool TEXT NOT NULL CHECK (tool IN ('criterion', 'callgrind', 'spec', 'paired')),
    benchmark TEXT NOT NULL,             -- '<payload>/<variant>', e.g. 'small/sync'
    metric TEXT NOT NULL,                -- e.g. 'mean', 'instructions'
    value REAL,
    unit TEXT NOT NULL,                  -- 'ns', 'instructions', 'cycles', 'count'
    PRIMARY KEY (run_id, tool, benchmark, metric)
);

-- Raw wall-clock samples: Criterion's (iterations, total time) pairs and the
-- spec method's single iterations.
CREATE TABLE samples (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    tool TEXT NOT NULL,                  -- 'criterion', 'spec' or 'paired' (sync and async alternating)
    benchmark TEXT NOT NULL,
    sample_index INTEGER NOT NULL,
    iterations REAL NOT NULL,
    total_ns REAL NOT NULL,
    PRIMARY KEY (run_id, tool, benchmark, sample_index)
);
