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

/// Moves the stack down by a random multiple of 16 bytes (under 4 KiB) for
/// each batch. Where the stack sits relative to the heap modulo the 4 KiB
/// page changes how fast the same code runs (4K aliasing, cache-set
/// conflicts), and address-space randomization draws that position once per
/// process: two runs of one comparison of the small payload here differed by
/// up to 3% while each reported a 0.2%-wide interval. Drawing it per batch
/// turns that hidden per-process bias into batch noise the interval counts.
struct StackShift {
    state: u64,
}

impl StackShift {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self { state: seed | 1 }
    }

    fn run(&mut self, batch: &mut Batch<'_>, iterations: usize) -> Duration {
        // xorshift64: uniform enough for picking one of 256 offsets.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let offset = 16 * (1 + (self.state >> 32) as usize % 256);
        alloca::with_alloca(offset, |pad| {
            std::hint::black_box(pad.as_ptr());
            batch(iterations)
        })
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
    let mut shift = StackShift::new();
    for pair in 0..pairs {
        if pair >= 2 && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let (b, c) = if pair.is_multiple_of(2) {
            let b = shift.run(baseline, batch_iterations);
            (b, shift.run(candidate, batch_iterations))
        } else {
            let c = shift.run(candidate, batch_iterations);
            (shift.run(baseline, batch_iterations), c)
        };
        samples.baseline_ns.push(per_iteration(b));
        samples.candidate_ns.push(per_iteration(c));
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_batch_runs_with_the_stack_somewhere_else() {
        let depths = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let mut record = |_: usize| {
            let local = 0u8;
            depths
                .borrow_mut()
                .insert(std::hint::black_box(&local) as *const u8 as usize);
            Duration::from_micros(1)
        };
        let mut other = |_: usize| Duration::from_micros(1);
        assert_eq!(sample_pairs(&mut record, &mut other, 1, 8, None).len(), 8);
        // 8 draws of 256 offsets: all equal is impossible unless unshifted.
        assert!(depths.borrow().len() > 1, "{:?}", depths.borrow());
    }
}
