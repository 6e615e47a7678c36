-- What `perfwarden report` concluded about a run. Appended in 0002; never edit
-- an applied migration, add a new one.

-- One row per (run, contract): the overall verdict.
CREATE TABLE verdicts (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    contract TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PASS', 'FAIL', 'INCONCLUSIVE')),
    limit_fraction REAL NOT NULL,
    confidence REAL NOT NULL,
    judged_at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, contract)
);

-- One row per case of a verdict. Overheads are fractions (0.05 = 5%); NULL when missing.
CREATE TABLE case_verdicts (
    run_id INTEGER NOT NULL,
    contract TEXT NOT NULL,
    case_name TEXT NOT NULL,
    payload TEXT NOT NULL,
    payload_bytes INTEGER NOT NULL,
    baseline_ns REAL,
    candidate_ns REAL,
    overhead REAL,
    ci_low REAL,
    ci_high REAL,
    status TEXT NOT NULL,
    pairs INTEGER NOT NULL,
    literal_overhead REAL,               -- the spec's 10-iteration figure
    instructions_baseline REAL,
    instructions_candidate REAL,
    instruction_overhead REAL,
    PRIMARY KEY (run_id, contract, case_name),
    FOREIGN KEY (run_id, contract) REFERENCES verdicts (run_id, contract) ON DELETE CASCADE
);

-- The checklist probes run with the verdict.
CREATE TABLE checklist (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    check_id TEXT NOT NULL,              -- 'executor-per-request', 'async-overhead', 'single-worker', 'warm-up'
    status TEXT NOT NULL CHECK (status IN ('PASS', 'FAIL', 'SKIPPED')),
    evidence TEXT NOT NULL,
    figures TEXT NOT NULL,               -- JSON object of the numbers behind the evidence
    PRIMARY KEY (run_id, check_id)
);

-- Head versus base, per benchmark and figure.
CREATE TABLE comparisons (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    base_run_id INTEGER NOT NULL,
    tool TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    metric TEXT NOT NULL,
    head REAL NOT NULL,
    base REAL NOT NULL,
    change REAL NOT NULL,                -- head / base - 1
    threshold REAL NOT NULL,
    learned INTEGER NOT NULL,            -- 1 when the threshold came from this machine's history
    status TEXT NOT NULL CHECK (status IN ('regression', 'improvement', 'unchanged')),
    PRIMARY KEY (run_id, tool, benchmark, metric)
);
