-- PostgreSQL twin of ../0010_batch_environment.sql.
CREATE TABLE batch_environment (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    benchmark TEXT NOT NULL,
    batch_index BIGINT NOT NULL,
    pair_index BIGINT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('baseline', 'candidate')),
    sampler_cpu BIGINT,
    worker_cpu BIGINT,
    sampler_involuntary_switches BIGINT,
    sampler_migrations BIGINT,
    worker_involuntary_switches BIGINT,
    worker_migrations BIGINT,
    PRIMARY KEY (run_id, benchmark, batch_index)
);
CREATE TABLE cpu_speed_probes (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    benchmark TEXT NOT NULL,
    probe_index BIGINT NOT NULL,
    pair_index BIGINT NOT NULL,
    cpu BIGINT NOT NULL,
    micros DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, benchmark, probe_index)
);
