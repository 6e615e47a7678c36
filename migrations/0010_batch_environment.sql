-- What the OS said about each batch of the paired sampler, stored with the
-- samples (docs/schema.md, docs/methodology.md "Noise score"). Appended in
-- 0010; never edit an applied migration, add a new one. NULL where the OS
-- did not say (no worker thread, no /proc/<tid>/sched).
CREATE TABLE batch_environment (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    benchmark TEXT NOT NULL,             -- the case's judged sample series
    batch_index INTEGER NOT NULL,        -- in the order the batches ran
    pair_index INTEGER NOT NULL,         -- the pair's sample_index in that series
    side TEXT NOT NULL CHECK (side IN ('baseline', 'candidate')),
    sampler_cpu INTEGER,                 -- the CPU the sampling thread ran on
    worker_cpu INTEGER,                  -- the CPU the worker thread last ran on
    sampler_involuntary_switches INTEGER,
    sampler_migrations INTEGER,
    worker_involuntary_switches INTEGER,
    worker_migrations INTEGER,
    PRIMARY KEY (run_id, benchmark, batch_index)
);
-- The fixed-work speed probe, run on every CPU before each pair.
CREATE TABLE cpu_speed_probes (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    benchmark TEXT NOT NULL,
    probe_index INTEGER NOT NULL,
    pair_index INTEGER NOT NULL,
    cpu INTEGER NOT NULL,
    micros REAL NOT NULL,
    PRIMARY KEY (run_id, benchmark, probe_index)
);
