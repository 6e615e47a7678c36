-- How many looks a verdict took, of how many its design allows (a
-- group-sequential design: docs/contracts.md). Appended in 0005; never edit
-- an applied migration, add a new one. NULL for verdicts judged before.
ALTER TABLE contract_verdicts ADD COLUMN looks_taken INTEGER;
ALTER TABLE contract_verdicts ADD COLUMN looks_max INTEGER;
