-- PostgreSQL twin of ../0004_contract_metrics.sql: contracts of any metric.

ALTER TABLE contract_verdicts ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE contract_verdicts ADD COLUMN metric TEXT NOT NULL DEFAULT 'wall_clock';
ALTER TABLE contract_verdicts ADD COLUMN bound_kind TEXT NOT NULL DEFAULT 'at_most';
ALTER TABLE contract_verdicts ADD COLUMN judged_variant TEXT NOT NULL DEFAULT 'async';
ALTER TABLE contract_verdicts ADD COLUMN other_side TEXT DEFAULT 'sync';

ALTER TABLE contract_case_verdicts ADD COLUMN bound DOUBLE PRECISION;
ALTER TABLE contract_case_verdicts ADD COLUMN note TEXT;
