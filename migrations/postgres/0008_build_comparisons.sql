-- PostgreSQL twin of ../0008_build_comparisons.sql: head against base
-- measured side by side, one row per run, the comparison as JSON.
CREATE TABLE build_comparisons (
    run_id BIGINT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    base_commit TEXT NOT NULL,
    head_commit TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('regression', 'improvement', 'unchanged', 'inconclusive')),
    comparison TEXT NOT NULL
);
