-- PostgreSQL twin of ../0009_profiles.sql. See docs/schema.md.
CREATE TABLE profiles (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    benchmark TEXT NOT NULL,
    total_ir BIGINT NOT NULL,
    PRIMARY KEY (run_id, benchmark)
);

CREATE TABLE profile_functions (
    run_id BIGINT NOT NULL,
    benchmark TEXT NOT NULL,
    function TEXT NOT NULL,
    self_ir BIGINT NOT NULL,
    inclusive_ir BIGINT NOT NULL,
    PRIMARY KEY (run_id, benchmark, function),
    FOREIGN KEY (run_id, benchmark) REFERENCES profiles (run_id, benchmark) ON DELETE CASCADE
);
