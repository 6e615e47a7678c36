-- Where the instructions went: per benchmark of a run, callgrind's profile,
-- so that any two stored runs can be diffed function by function. Only the
-- top functions are kept (by self and by inclusive count); the total keeps
-- what the others add up to. Appended in 0009.
CREATE TABLE profiles (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    benchmark TEXT NOT NULL,             -- '<payload>/<variant>', e.g. 'medium/async'
    total_ir INTEGER NOT NULL,           -- every instruction counted (all threads)
    PRIMARY KEY (run_id, benchmark)
);

CREATE TABLE profile_functions (
    run_id INTEGER NOT NULL,
    benchmark TEXT NOT NULL,
    function TEXT NOT NULL,              -- as callgrind wrote it (demangled)
    self_ir INTEGER NOT NULL,            -- instructions in its own code
    inclusive_ir INTEGER NOT NULL,       -- in it and what it called
    PRIMARY KEY (run_id, benchmark, function),
    FOREIGN KEY (run_id, benchmark) REFERENCES profiles (run_id, benchmark) ON DELETE CASCADE
);
