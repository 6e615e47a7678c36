-- PostgreSQL twin of ../0005_verdict_looks.sql.
ALTER TABLE contract_verdicts ADD COLUMN looks_taken BIGINT;
ALTER TABLE contract_verdicts ADD COLUMN looks_max BIGINT;
