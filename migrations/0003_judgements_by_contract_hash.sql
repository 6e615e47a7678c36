-- Judgements keyed by the contract's content hash, never replaced. Appended
-- in 0003; never edit an applied migration, add a new one. The PostgreSQL
-- twin is postgres/0003_judgements_by_contract_hash.sql (same version, same
-- tables and columns; docs/schema.md).
--
-- Before 0003 a verdict was keyed by the contract's id alone and a re-render
-- with another contract replaced it. Now each (run, contract content) has its
-- own verdict; the checklist and the comparisons belong to the run and are
-- written once. Verdicts judged before 0003 are kept with the hash
-- 'unknown:<id>', which no contract file has, so they are never reused.

CREATE TABLE contract_verdicts (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    contract TEXT NOT NULL,              -- the contract's id, e.g. 'performance-001'
    contract_hash TEXT NOT NULL,         -- SHA-256 of the contract as parsed (Contract::hash)
    status TEXT NOT NULL CHECK (status IN ('PASS', 'FAIL', 'INCONCLUSIVE')),
    limit_fraction REAL NOT NULL,
    confidence REAL NOT NULL,
    judged_at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, contract_hash)
);

CREATE TABLE contract_case_verdicts (
    run_id INTEGER NOT NULL,
    contract_hash TEXT NOT NULL,
    case_index INTEGER NOT NULL,         -- the case's place in the contract
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
    literal_overhead REAL,
    instructions_baseline REAL,
    instructions_candidate REAL,
    instruction_overhead REAL,
    PRIMARY KEY (run_id, contract_hash, case_index),
    FOREIGN KEY (run_id, contract_hash) REFERENCES contract_verdicts (run_id, contract_hash) ON DELETE CASCADE
);

INSERT INTO contract_verdicts (run_id, contract, contract_hash, status, limit_fraction, confidence, judged_at_ms)
SELECT run_id, contract, 'unknown:' || contract, status, limit_fraction, confidence, judged_at_ms
FROM verdicts;

INSERT INTO contract_case_verdicts (run_id, contract_hash, case_index, case_name, payload, payload_bytes, baseline_ns, candidate_ns, overhead, ci_low, ci_high, status, pairs, literal_overhead, instructions_baseline, instructions_candidate, instruction_overhead)
SELECT run_id, 'unknown:' || contract,
       ROW_NUMBER() OVER (PARTITION BY run_id, contract ORDER BY rowid) - 1,
       case_name, payload, payload_bytes, baseline_ns, candidate_ns, overhead, ci_low, ci_high, status, pairs, literal_overhead, instructions_baseline, instructions_candidate, instruction_overhead
FROM case_verdicts;

DROP TABLE case_verdicts;
DROP TABLE verdicts;
