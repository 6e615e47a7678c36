-- PostgreSQL twin of ../0006_checklist_warn.sql: WARN joins the statuses.
ALTER TABLE checklist DROP CONSTRAINT checklist_status_check;
ALTER TABLE checklist ADD CONSTRAINT checklist_status_check
    CHECK (status IN ('PASS', 'WARN', 'FAIL', 'SKIPPED'));
