//! The verdict's sampler: baseline and candidate batches alternate, so slow
//! drift of the machine (frequency, noisy neighbours) hits both alike and
//! cancels in each pair's ratio. The order inside a pair alternates too.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::batch_noise::{self, BatchEnvironment, BatchLog, BatchWatch, Side, SpeedProbe};
use crate::affinity;
use crate::stack_shift::StackShift;

/// Per-iteration times of alternating batches: `baseline_ns[i]` and
/// `candidate_ns[i]` form pair `i`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PairedSamples {
    pub batch_iterations: usize,
    pub baseline_ns: Vec<f64>,
    pub candidate_ns: Vec<f64>,
    /// What the OS said about each batch, and the speed probes between
    /// pairs.
    pub environment: BatchLog,
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
        self.environment.extend(more.environment, self.len());
        self.baseline_ns.extend(more.baseline_ns);
        self.candidate_ns.extend(more.candidate_ns);
    }
}

/// The fewest pairs a deadline leaves: with fewer, no 95% interval on their
/// median exists (even the extremes miss it more than 5% of the time).
pub const MIN_PAIRS: usize = 6;

/// Runs `batch(iterations)` and returns how long it took.
pub type Batch<'a> = dyn FnMut(usize) -> Duration + 'a;

/// How many alternating pairs to take, how long each batch is, and whether
/// the caller is debiased.
#[derive(Clone, Copy, Debug)]
pub struct SamplingPlan {
    pub pairs: usize,
    pub batch_target: Duration,
    /// The kernel id of the thread the batches hand work to, if any: each
    /// batch records its context switches and migrations beside the
    /// sampling thread's.
    pub worker_thread: Option<u32>,
    pub caller: CallerPlacement,
}

/// Where the sampling thread runs its batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallerPlacement {
    /// Pinned to each CPU in turn, each batch at a fresh stack depth, so
    /// that neither a slow CPU nor one stack depth decides the ratio.
    #[default]
    Debiased,
    /// Left where the scheduler puts it, at one stack depth: as a user's
    /// program calls the subject.
    Unpinned,
}

impl SamplingPlan {
    pub fn for_mode(quick: bool) -> Self {
        if quick {
            // Batches long enough that moving the working set between the
            // caller's and the worker's CPU is amortized, as in the full mode.
            Self {
                pairs: 10,
                batch_target: Duration::from_millis(10),
                caller: CallerPlacement::Debiased,
                worker_thread: None,
            }
        } else {
            // Each batch runs at a fresh stack depth, which moves the sync
            // call's time and spreads the pair ratios; 240 pairs keep the
            // median's movement between runs of one build small (the figures:
            // docs/methodology.md, Measurement).
            Self {
                pairs: 240,
                batch_target: Duration::from_millis(20),
                caller: CallerPlacement::Debiased,
                worker_thread: None,
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
    sample_pairs(baseline, candidate, (batch, batch), plan, deadline)
}

/// As [`sample`], with each side's batches sized on that side: for sides
/// whose costs differ by orders of magnitude (a payload against a reference
/// payload), where one size would make one side's batches take minutes.
pub fn sample_each_sized(
    baseline: &mut Batch<'_>,
    candidate: &mut Batch<'_>,
    plan: SamplingPlan,
) -> PairedSamples {
    baseline(3);
    candidate(3);
    let sizes = (
        calibrate(baseline, plan.batch_target),
        calibrate(candidate, plan.batch_target),
    );
    sample_pairs(baseline, candidate, sizes, plan, None)
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

/// Pins the sampling thread to each CPU it may use in turn, two pairs per
/// CPU. On a VM one CPU can run slower than another for seconds to minutes
/// (its host core is busier; docs/methodology.md has what was seen), and
/// the async side's work runs on another
/// CPU than the caller's: without rotation that difference is read as
/// overhead. With it, each CPU hosts the caller in as many pairs as the
/// others, so neither CPU's speed decides the median ratio.
struct CpuRotation {
    cpus: Vec<usize>,
}

impl CpuRotation {
    fn new() -> Self {
        Self {
            cpus: affinity::allowed_cpus(),
        }
    }

    /// Runs the speed probe on each CPU (outside the measured batches),
    /// then, if `pin`, moves the thread to the CPU whose turn pair `pair` is
    /// (two pairs per turn, so each CPU sees both orders of the batches), or
    /// else lets it run on any of them again.
    fn probe_and_pin_for(&self, pair: usize, pin: bool) -> Vec<SpeedProbe> {
        let probes = batch_noise::probe_cpus(pair, &self.cpus);
        if self.cpus.len() >= 2 {
            if pin {
                affinity::restrict_to(&[self.cpus[pair / 2 % self.cpus.len()]]);
            } else {
                affinity::restrict_to(&self.cpus);
            }
        }
        probes
    }
}

impl Drop for CpuRotation {
    fn drop(&mut self) {
        if self.cpus.len() >= 2 {
            affinity::restrict_to(&self.cpus);
        }
    }
}

/// Takes `plan.pairs` pairs of batches of `(baseline, candidate)`
/// iterations, or fewer if `deadline` passes first (at least [`MIN_PAIRS`]),
/// placing the caller as `plan.caller` says and recording what the OS says
/// about each batch. Threads the batches start must exist before (the
/// sampler's warm-up starts them): a thread started while the caller is
/// pinned inherits the pin.
pub fn sample_pairs(
    baseline: &mut Batch<'_>,
    candidate: &mut Batch<'_>,
    (baseline_iterations, candidate_iterations): (usize, usize),
    plan: SamplingPlan,
    deadline: Option<Instant>,
) -> PairedSamples {
    let debiased = plan.caller == CallerPlacement::Debiased;
    let mut samples = PairedSamples {
        batch_iterations: candidate_iterations,
        ..PairedSamples::default()
    };
    let per_iteration = |d: Duration, n: usize| d.as_nanos() as f64 / n as f64;
    // Each batch runs at its own stack depth (see `stack_shift`): otherwise
    // one depth, drawn per process, biases the whole comparison.
    let mut shift = StackShift::default();
    let rotation = CpuRotation::new();
    let worker = plan.worker_thread;
    let mut batch = |side: &mut Batch<'_>, iterations: usize| {
        if debiased {
            shift.run(|| side(iterations))
        } else {
            side(iterations)
        }
    };
    for pair in 0..plan.pairs {
        if pair >= MIN_PAIRS && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        samples
            .environment
            .probes
            .extend(rotation.probe_and_pin_for(pair, debiased));
        // Kept in the order the batches ran.
        let (b, c) = if pair.is_multiple_of(2) {
            let (b, b_env) = watched(worker, Side::Baseline, pair, || {
                batch(baseline, baseline_iterations)
            });
            let (c, c_env) = watched(worker, Side::Candidate, pair, || {
                batch(candidate, candidate_iterations)
            });
            samples.environment.batches.extend([b_env, c_env]);
            (b, c)
        } else {
            let (c, c_env) = watched(worker, Side::Candidate, pair, || {
                batch(candidate, candidate_iterations)
            });
            let (b, b_env) = watched(worker, Side::Baseline, pair, || {
                batch(baseline, baseline_iterations)
            });
            samples.environment.batches.extend([c_env, b_env]);
            (b, c)
        };
        samples
            .baseline_ns
            .push(per_iteration(b, baseline_iterations));
        samples
            .candidate_ns
            .push(per_iteration(c, candidate_iterations));
    }
    samples
}

/// Runs one batch between two readings of the OS's counters (outside its
/// own timing).
fn watched(
    worker: Option<u32>,
    side: Side,
    pair: usize,
    batch: impl FnOnce() -> Duration,
) -> (Duration, BatchEnvironment) {
    let watch = BatchWatch::start(worker);
    let took = batch();
    (took, watch.finish(pair, side))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs 8 pairs whose batches record where they ran: the CPU and the
    /// address of a local (how deep the stack is).
    fn placements(caller: CallerPlacement) -> Vec<(Option<u32>, usize)> {
        let seen = std::cell::RefCell::new(Vec::new());
        let mut record = |_: usize| {
            let local = 0u8;
            seen.borrow_mut().push((
                affinity::current_cpu(),
                std::hint::black_box(&local) as *const u8 as usize,
            ));
            Duration::from_micros(1)
        };
        let mut other = |_: usize| Duration::from_micros(1);
        let plan = SamplingPlan {
            pairs: 8,
            caller,
            ..SamplingPlan::for_mode(true)
        };
        let samples = sample_pairs(&mut record, &mut other, (1, 1), plan, None);
        assert_eq!(samples.len(), 8);
        seen.into_inner()
    }

    #[test]
    fn pairs_rotate_over_the_cpus_and_the_pin_is_lifted_after() {
        let rotation = CpuRotation::new();
        let seen = placements(CallerPlacement::Debiased);
        let cpus: std::collections::BTreeSet<_> = seen.iter().map(|(cpu, _)| *cpu).collect();
        assert_eq!(cpus.len(), rotation.cpus.len().clamp(1, 8 / 2), "{seen:?}");
        assert_eq!(CpuRotation::new().cpus, rotation.cpus, "the pin stayed");
    }

    #[test]
    fn each_batch_records_what_the_os_said_about_both_threads() {
        let (to_worker, jobs) = std::sync::mpsc::channel::<usize>();
        let (to_caller, done) = std::sync::mpsc::channel::<Option<u32>>();
        let worker = std::thread::spawn(move || {
            to_caller.send(crate::chat::worker::os_thread_id()).unwrap();
            for n in jobs {
                std::hint::black_box((0..n * 1000).sum::<usize>());
                to_caller.send(None).unwrap();
            }
        });
        let worker_thread = done.recv().unwrap();
        let mut local = |n: usize| {
            let start = Instant::now();
            std::hint::black_box((0..n * 1000).sum::<usize>());
            start.elapsed()
        };
        let mut handed_off = |n: usize| {
            let start = Instant::now();
            to_worker.send(n).unwrap();
            done.recv().unwrap();
            start.elapsed()
        };
        let plan = SamplingPlan {
            pairs: 6,
            worker_thread,
            ..SamplingPlan::for_mode(true)
        };
        let samples = sample_pairs(&mut local, &mut handed_off, (5, 5), plan, None);
        drop(to_worker);
        worker.join().unwrap();

        let batches = &samples.environment.batches;
        let order: Vec<(usize, Side)> = batches.iter().map(|b| (b.pair, b.side)).collect();
        let expected: Vec<(usize, Side)> = (0..6)
            .flat_map(|pair: usize| {
                let sides = if pair.is_multiple_of(2) {
                    [Side::Baseline, Side::Candidate]
                } else {
                    [Side::Candidate, Side::Baseline]
                };
                sides.map(|side| (pair, side))
            })
            .collect();
        assert_eq!(order, expected, "in the order the batches ran");
        let cpus = affinity::allowed_cpus();
        let probes = &samples.environment.probes;
        if cfg!(not(target_os = "linux")) {
            assert!(
                batches
                    .iter()
                    .all(|b| b.worker_involuntary_switches.is_none())
            );
            return;
        }
        let has_sched = std::path::Path::new("/proc/thread-self/sched").exists();
        for b in batches {
            assert!(b.sampler_involuntary_switches.is_some(), "{b:?}");
            assert!(b.worker_involuntary_switches.is_some(), "{b:?}");
            assert_eq!(b.sampler_migrations.is_some(), has_sched, "{b:?}");
            assert_eq!(b.worker_migrations.is_some(), has_sched, "{b:?}");
            assert!(cpus.contains(&(b.sampler_cpu.unwrap() as usize)), "{b:?}");
            assert!(cpus.contains(&(b.worker_cpu.unwrap() as usize)), "{b:?}");
        }
        // Every CPU probed before every pair, outside the batches.
        assert_eq!(probes.len(), 6 * cpus.len(), "{probes:?}");
        for (pair, chunk) in probes.chunks(cpus.len()).enumerate() {
            let probed: Vec<usize> = chunk.iter().map(|p| p.cpu as usize).collect();
            assert_eq!(probed, cpus);
            assert!(chunk.iter().all(|p| p.pair == pair && p.micros > 0.0));
        }
        assert_eq!(CpuRotation::new().cpus, cpus, "the pin stayed");
    }

    #[test]
    fn each_batch_runs_with_the_stack_somewhere_else() {
        let depths: std::collections::BTreeSet<_> = placements(CallerPlacement::Debiased)
            .iter()
            .map(|(_, address)| *address)
            .collect();
        // 8 draws of 256 offsets: all equal is impossible unless unshifted.
        assert!(depths.len() > 1, "{depths:?}");
    }

    #[test]
    fn an_unpinned_caller_stays_where_it_was_at_one_stack_depth() {
        let allowed = affinity::allowed_cpus();
        let seen = placements(CallerPlacement::Unpinned);
        let depths: std::collections::BTreeSet<_> =
            seen.iter().map(|(_, address)| *address).collect();
        assert_eq!(depths.len(), 1, "the stack was shifted: {depths:?}");
        assert_eq!(affinity::allowed_cpus(), allowed, "the caller was pinned");
    }
}
