-- PostgreSQL twin of ../0002_judgements.sql.
CREATE TABLE verdicts (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    contract TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PASS', 'FAIL', 'INCONCLUSIVE')),
    limit_fraction DOUBLE PRECISION NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    judged_at_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, contract)
);

CREATE TABLE case_verdicts (
    run_id BIGINT NOT NULL,
    contract TEXT NOT NULL,
    case_name TEXT NOT NULL,
    payload TEXT NOT NULL,
    payload_bytes BIGINT NOT NULL,
    baseline_ns DOUBLE PRECISION,
    candidate_ns DOUBLE PRECISION,
    overhead DOUBLE PRECISION,
    ci_low DOUBLE PRECISION,
    ci_high DOUBLE PRECISION,
    status TEXT NOT NULL,
    pairs BIGINT NOT NULL,
    literal_overhead DOUBLE PRECISION,
    instructions_baseline DOUBLE PRECISION,
    instructions_candidate DOUBLE PRECISION,
    instruction_overhead DOUBLE PRECISION,
    PRIMARY KEY (run_id, contract, case_name),
    FOREIGN KEY (run_id, contract) REFERENCES verdicts (run_id, contract) ON DELETE CASCADE
);

CREATE TABLE checklist (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    check_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PASS', 'FAIL', 'SKIPPED')),
    evidence TEXT NOT NULL,
    figures TEXT NOT NULL,
    PRIMARY KEY (run_id, check_id)
);

CREATE TABLE comparisons (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    base_run_id BIGINT NOT NULL,
    tool TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    metric TEXT NOT NULL,
    head DOUBLE PRECISION NOT NULL,
    base DOUBLE PRECISION NOT NULL,
    change DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    learned BOOLEAN NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('regression', 'improvement', 'unchanged')),
    PRIMARY KEY (run_id, tool, benchmark, metric)
);
