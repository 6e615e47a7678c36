//! The verdict's sampler: baseline and candidate batches alternate, so slow
//! drift of the machine (frequency, noisy neighbours) hits both alike and
//! cancels in each pair's ratio. The order inside a pair alternates too.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Per-iteration times of alternating batches: `baseline_ns[i]` and
/// `candidate_ns[i]` form pair `i`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PairedSamples {
    pub batch_iterations: usize,
    pub baseline_ns: Vec<f64>,
    pub candidate_ns: Vec<f64>,
}

impl PairedSamples {
    pub fn len(&self) -> usize {
        self.baseline_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.baseline_ns.is_empty()
    }

    /// Adds `more` pairs. Values are per iteration, so batches of another
    /// size mix freely; `batch_iterations` keeps the first batch size.
    pub fn extend(&mut self, more: PairedSamples) {
        self.baseline_ns.extend(more.baseline_ns);
        self.candidate_ns.extend(more.candidate_ns);
    }
}

/// Runs `batch(iterations)` and returns how long it took.
pub type Batch<'a> = dyn FnMut(usize) -> Duration + 'a;

/// How many alternating pairs to take, and how long each batch is.
#[derive(Clone, Copy, Debug)]
pub struct SamplingPlan {
    pub pairs: usize,
    pub batch_target: Duration,
}

impl SamplingPlan {
    pub fn for_mode(quick: bool) -> Self {
        if quick {
            // Batches long enough that moving the working set between the
            // caller's and the worker's CPU is amortized, as in the full mode.
            Self {
                pairs: 10,
                batch_target: Duration::from_millis(10),
            }
        } else {
            Self {
                pairs: 60,
                batch_target: Duration::from_millis(20),
            }
        }
    }
}

/// Warms both sides, sizes batches on the candidate (the slower one, when
/// it is broken) and takes `plan.pairs` pairs, or what fits before `deadline`.
pub fn sample(
    baseline: &mut Batch<'_>,
    candidate: &mut Batch<'_>,
    plan: SamplingPlan,
    deadline: Option<Instant>,
) -> PairedSamples {
    baseline(3);
    candidate(3);
    let batch = calibrate(candidate, plan.batch_target);
    sample_pairs(baseline, candidate, batch, plan.pairs, deadline)
}

/// Picks a batch size so one batch of `subject` takes about `target`.
pub fn calibrate(subject: &mut Batch<'_>, target: Duration) -> usize {
    let mut iterations = 1;
    loop {
        let took = subject(iterations);
        if took >= target / 2 || iterations >= 1 << 20 {
            let per_iteration = took.as_secs_f64() / iterations as f64;
            return ((target.as_secs_f64() / per_iteration.max(1e-9)).ceil() as usize).max(1);
        }
        iterations *= 2;
    }
}

/// Takes `pairs` pairs of batches, or fewer if `deadline` passes first (at
/// least two).
pub fn sample_pairs(
    baseline: &mut Batch<'_>,
    candidate: &mut Batch<'_>,
    batch_iterations: usize,
    pairs: usize,
    deadline: Option<Instant>,
) -> PairedSamples {
    let mut samples = PairedSamples {
        batch_iterations,
        ..PairedSamples::default()
    };
    let per_iteration = |d: Duration| d.as_nanos() as f64 / batch_iterations as f64;
    for pair in 0..pairs {
        if pair >= 2 && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let (b, c) = if pair.is_multiple_of(2) {
            let b = baseline(batch_iterations);
            (b, candidate(batch_iterations))
        } else {
            let c = candidate(batch_iterations);
            (baseline(batch_iterations), c)
        };
        samples.baseline_ns.push(per_iteration(b));
        samples.candidate_ns.push(per_iteration(c));
    }
    samples
}
