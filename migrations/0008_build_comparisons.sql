-- Head against base measured side by side on one machine (`perfwarden
-- compare`, run by `report --ci` on a pull request): one row per run, the
-- whole comparison as JSON (every benchmark's change, interval and verdict,
-- both builds' instruction counts, the looks and the host's noise).
-- Appended in 0008; never edit an applied migration, add a new one.
CREATE TABLE build_comparisons (
    run_id INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    base_commit TEXT NOT NULL,
    head_commit TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('regression', 'improvement', 'unchanged', 'inconclusive')),
    comparison TEXT NOT NULL
);
