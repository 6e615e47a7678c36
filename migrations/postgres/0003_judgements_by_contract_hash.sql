-- PostgreSQL twin of ../0003_judgements_by_contract_hash.sql: judgements
-- keyed by the contract's content hash, never replaced.

CREATE TABLE contract_verdicts (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    contract TEXT NOT NULL,
    contract_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PASS', 'FAIL', 'INCONCLUSIVE')),
    limit_fraction DOUBLE PRECISION NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    judged_at_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, contract_hash)
);

CREATE TABLE contract_case_verdicts (
    run_id BIGINT NOT NULL,
    contract_hash TEXT NOT NULL,
    case_index BIGINT NOT NULL,
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
    PRIMARY KEY (run_id, contract_hash, case_index),
    FOREIGN KEY (run_id, contract_hash) REFERENCES contract_verdicts (run_id, contract_hash) ON DELETE CASCADE
);

INSERT INTO contract_verdicts (run_id, contract, contract_hash, status, limit_fraction, confidence, judged_at_ms)
SELECT run_id, contract, 'unknown:' || contract, status, limit_fraction, confidence, judged_at_ms
FROM verdicts;

INSERT INTO contract_case_verdicts (run_id, contract_hash, case_index, case_name, payload, payload_bytes, baseline_ns, candidate_ns, overhead, ci_low, ci_high, status, pairs, literal_overhead, instructions_baseline, instructions_candidate, instruction_overhead)
SELECT run_id, 'unknown:' || contract,
       ROW_NUMBER() OVER (PARTITION BY run_id, contract ORDER BY payload_bytes, case_name) - 1,
       case_name, payload, payload_bytes, baseline_ns, candidate_ns, overhead, ci_low, ci_high, status, pairs, literal_overhead, instructions_baseline, instructions_candidate, instruction_overhead
FROM case_verdicts;

DROP TABLE case_verdicts;
DROP TABLE verdicts;
