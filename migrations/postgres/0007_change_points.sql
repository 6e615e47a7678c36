-- PostgreSQL twin of ../0007_change_points.sql: a branch's change points,
-- recomputed and replaced by every `report`.
CREATE TABLE change_points (
    branch TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('criterion', 'callgrind', 'contract')),
    benchmark TEXT NOT NULL,
    metric TEXT NOT NULL,
    machine_id TEXT,
    series_index BIGINT NOT NULL,
    before_run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    before_commit TEXT NOT NULL,
    after_run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    after_commit TEXT NOT NULL,
    mean_before DOUBLE PRECISION NOT NULL,
    mean_after DOUBLE PRECISION NOT NULL,
    relative_change DOUBLE PRECISION NOT NULL,
    p_value DOUBLE PRECISION NOT NULL,
    detected_at_ms BIGINT NOT NULL
);
CREATE INDEX change_points_by_branch ON change_points (branch, after_run_id);
