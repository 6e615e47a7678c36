-- A checklist item may be WARN: it missed its threshold on a host measured
-- as too noisy to tell. Appended in 0006; never edit an applied migration,
-- add a new one. SQLite cannot change a CHECK constraint in place, so the
-- table is rebuilt with the same columns and rows.
CREATE TABLE checklist_0006 (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    check_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PASS', 'WARN', 'FAIL', 'SKIPPED')),
    evidence TEXT NOT NULL,
    figures TEXT NOT NULL,
    PRIMARY KEY (run_id, check_id)
);
INSERT INTO checklist_0006 (run_id, check_id, status, evidence, figures)
SELECT run_id, check_id, status, evidence, figures FROM checklist;
DROP TABLE checklist;
ALTER TABLE checklist_0006 RENAME TO checklist;
