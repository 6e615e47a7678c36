-- Contracts of any metric. Appended in 0004; never edit an applied
-- migration, add a new one. The PostgreSQL twin is
-- postgres/0004_contract_metrics.sql (same columns; docs/schema.md).
--
-- A verdict now says what it judged. Verdicts stored before 0004 were all
-- wall-clock comparisons of async against sync, which the defaults say.
-- For a metric other than wall_clock the case columns keep their names and
-- hold that metric's figures: baseline_ns and candidate_ns the medians of
-- the two sides' samples in the metric's sample unit, overhead, ci_low and
-- ci_high the judged figure, limit_fraction the bound in the same unit.

ALTER TABLE contract_verdicts ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE contract_verdicts ADD COLUMN metric TEXT NOT NULL DEFAULT 'wall_clock';
ALTER TABLE contract_verdicts ADD COLUMN bound_kind TEXT NOT NULL DEFAULT 'at_most';   -- 'at_most' or 'at_least'
ALTER TABLE contract_verdicts ADD COLUMN judged_variant TEXT NOT NULL DEFAULT 'async';
ALTER TABLE contract_verdicts ADD COLUMN other_side TEXT DEFAULT 'sync';              -- compared variant or reference; NULL for none

ALTER TABLE contract_case_verdicts ADD COLUMN bound REAL;                             -- NULL: the verdict's limit_fraction
ALTER TABLE contract_case_verdicts ADD COLUMN note TEXT;                              -- why undecided, or what else was seen
