-- Change points of a branch's history (src/judge/change_points.rs, docs/
-- methodology.md): derived from the stored runs, not measured, so every
-- `report` recomputes the branch's change points and replaces its rows.
-- Appended in 0007; never edit an applied migration, add a new one.
CREATE TABLE change_points (
    branch TEXT NOT NULL,                -- the history they were found in, e.g. 'main'
    source TEXT NOT NULL CHECK (source IN ('criterion', 'callgrind', 'contract')),
    benchmark TEXT NOT NULL,             -- 'small/async', or '<contract>/<case>'
    metric TEXT NOT NULL,                -- 'mean', 'instructions', or the contract's metric
    machine_id TEXT,                     -- the machine whose runs form the series; NULL: all machines
    series_index INTEGER NOT NULL,       -- the first point after the shift, in the series
    before_run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    before_commit TEXT NOT NULL,
    after_run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    after_commit TEXT NOT NULL,
    mean_before REAL NOT NULL,
    mean_after REAL NOT NULL,
    relative_change REAL NOT NULL,       -- mean_after / mean_before - 1
    p_value REAL NOT NULL,
    detected_at_ms INTEGER NOT NULL
);
CREATE INDEX change_points_by_branch ON change_points (branch, after_run_id);
