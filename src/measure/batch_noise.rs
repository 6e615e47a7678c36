//! What the OS says about each batch of the paired sampler: involuntary
//! context switches and CPU migrations of the sampling thread and of the
//! worker thread, the CPU each ran on, and between pairs a short fixed-work
//! speed probe on every CPU. Summed up per run as the noise score
//! (docs/methodology.md), which can make a timing verdict INCONCLUSIVE, never
//! FAIL, when it reaches the contract's limit.

use std::time::Instant;

use serde::Serialize;

use super::noise::{HOST_BENCHMARK, HostNoise, STEAL_MAX};
use crate::affinity;
use crate::judge::contract::Bound;
use crate::judge::stats;
use crate::metric::Metric;
use crate::store::{Measurement, Tool};

/// What the kernel counts for one thread, where it says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadCounters {
    /// `nonvoluntary_ctxt_switches` of `/proc/.../status`.
    pub involuntary_switches: Option<u64>,
    /// `se.nr_migrations` of `/proc/.../sched` (only on kernels with
    /// scheduler debugging).
    pub migrations: Option<u64>,
    /// The CPU it last ran on: field 39 of `/proc/.../stat`.
    pub cpu: Option<u32>,
}

/// `nonvoluntary_ctxt_switches` from a thread's `/proc/.../status` text.
pub fn parse_status_involuntary_switches(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("nonvoluntary_ctxt_switches:"))
        .and_then(|value| value.trim().parse().ok())
}

/// `se.nr_migrations` from a thread's `/proc/.../sched` text.
pub fn parse_sched_migrations(sched: &str) -> Option<u64> {
    sched.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == "se.nr_migrations")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// The CPU a thread last ran on, from its `/proc/.../stat` text.
pub fn parse_stat_processor(stat: &str) -> Option<u32> {
    // The name, in parentheses, may hold spaces: fields resume after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Field 39 of proc(5), counted from the state (field 3).
    fields.get(39 - 3)?.parse().ok()
}

impl ThreadCounters {
    /// The counters of thread `tid` of this process, or of the calling
    /// thread when `None`. Whatever the OS does not offer stays `None`.
    pub fn read(tid: Option<u32>) -> Self {
        let dir = match tid {
            Some(tid) => format!("/proc/self/task/{tid}"),
            None => "/proc/thread-self".to_owned(),
        };
        let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).ok();
        Self {
            involuntary_switches: read("status")
                .as_deref()
                .and_then(parse_status_involuntary_switches),
            migrations: read("sched").as_deref().and_then(parse_sched_migrations),
            cpu: read("stat").as_deref().and_then(parse_stat_processor),
        }
    }

    /// How much each counter grew from `before` to `self`.
    fn since(&self, before: &Self) -> (Option<u64>, Option<u64>) {
        let grew = |now: Option<u64>, then: Option<u64>| Some(now?.saturating_sub(then?));
        (
            grew(self.involuntary_switches, before.involuntary_switches),
            grew(self.migrations, before.migrations),
        )
    }
}

/// Which side of a pair a batch ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Baseline,
    Candidate,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Baseline => "baseline",
            Side::Candidate => "candidate",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Side::Baseline, Side::Candidate]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// One batch as the OS saw it: counts are over the batch alone.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BatchEnvironment {
    pub pair: usize,
    pub side: Side,
    pub sampler_cpu: Option<u32>,
    pub worker_cpu: Option<u32>,
    pub sampler_involuntary_switches: Option<u64>,
    pub sampler_migrations: Option<u64>,
    pub worker_involuntary_switches: Option<u64>,
    pub worker_migrations: Option<u64>,
}

/// Watches one batch: the sampling thread (the caller) and, when the
/// batches hand work to one, the worker thread.
pub struct BatchWatch {
    worker: Option<u32>,
    sampler: ThreadCounters,
    worker_before: ThreadCounters,
}

impl BatchWatch {
    /// Reads the counters just before a batch.
    pub fn start(worker: Option<u32>) -> Self {
        Self {
            worker,
            sampler: ThreadCounters::read(None),
            worker_before: worker
                .map(|w| ThreadCounters::read(Some(w)))
                .unwrap_or_default(),
        }
    }

    /// Reads them again just after it.
    pub fn finish(self, pair: usize, side: Side) -> BatchEnvironment {
        let sampler = ThreadCounters::read(None);
        let worker = self
            .worker
            .map(|w| ThreadCounters::read(Some(w)))
            .unwrap_or_default();
        let (sampler_switches, sampler_migrations) = sampler.since(&self.sampler);
        let (worker_switches, worker_migrations) = worker.since(&self.worker_before);
        BatchEnvironment {
            pair,
            side,
            sampler_cpu: affinity::current_cpu().or(sampler.cpu),
            worker_cpu: worker.cpu,
            sampler_involuntary_switches: sampler_switches,
            sampler_migrations,
            worker_involuntary_switches: worker_switches,
            worker_migrations,
        }
    }
}

/// One run of the fixed-work speed probe on one CPU, before pair `pair`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SpeedProbe {
    pub pair: usize,
    pub cpu: u32,
    pub micros: f64,
}

/// Iterations of the probe's fixed work: tens of microseconds here, short
/// beside a batch (milliseconds) and long beside a clock read.
const PROBE_ITERATIONS: u64 = 20_000;

/// Runs the fixed work once on the calling thread and returns how long it
/// took, in microseconds.
pub fn speed_probe() -> f64 {
    let start = Instant::now();
    let mut mix = crate::splitmix::SplitMix64::new(std::hint::black_box(1));
    let mut sum = 0u64;
    for _ in 0..PROBE_ITERATIONS {
        sum = sum.wrapping_add(mix.next_u64());
    }
    std::hint::black_box(sum);
    start.elapsed().as_secs_f64() * 1e6
}

/// Probes each of `cpus`, pinning the calling thread to one after the other
/// (the caller pins it again afterwards). On a thread that cannot be pinned,
/// probes where it runs.
pub fn probe_cpus(pair: usize, cpus: &[usize]) -> Vec<SpeedProbe> {
    let pinned: Vec<SpeedProbe> = cpus
        .iter()
        .filter(|&&cpu| affinity::restrict_to(&[cpu]))
        .map(|&cpu| SpeedProbe {
            pair,
            cpu: cpu as u32,
            micros: speed_probe(),
        })
        .collect();
    if !pinned.is_empty() {
        return pinned;
    }
    let micros = speed_probe();
    affinity::current_cpu()
        .map(|cpu| SpeedProbe { pair, cpu, micros })
        .into_iter()
        .collect()
}

/// What the OS said about a series of batches: each batch, and the speed
/// probes taken between pairs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BatchLog {
    pub batches: Vec<BatchEnvironment>,
    pub probes: Vec<SpeedProbe>,
}

impl BatchLog {
    /// Ten pairs' speed probes in which CPU 1 ran `slower` (a fraction) than
    /// CPU 0, and no batches: synthetic evidence for tests of the noise rule.
    #[cfg(test)]
    pub fn with_slower_cpu(slower: f64) -> Self {
        BatchLog {
            batches: Vec::new(),
            probes: (0..10)
                .flat_map(|pair| {
                    [(0, 40.0), (1, 40.0 * (1.0 + slower))].map(|(cpu, micros)| SpeedProbe {
                        pair,
                        cpu,
                        micros,
                    })
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.probes.is_empty()
    }

    /// Appends `more`, whose pairs are numbered on after `pairs` pairs.
    pub fn extend(&mut self, more: BatchLog, pairs: usize) {
        self.batches.extend(more.batches.into_iter().map(|mut b| {
            b.pair += pairs;
            b
        }));
        self.probes.extend(more.probes.into_iter().map(|mut p| {
            p.pair += pairs;
            p
        }));
    }
}

/// A run's batches and probes summed up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingNoise {
    pub batches: usize,
    /// Share of batches in which the sampling or the worker thread was
    /// switched out involuntarily (preempted).
    pub preempted_share: f64,
    /// Worker migrations between CPUs per batch.
    pub worker_migrations_per_batch: f64,
    /// The CPU whose speed probes ran slowest (median), and by how much its
    /// median exceeds the run's fastest probes (5th percentile of all).
    pub slowest_cpu: Option<u32>,
    pub slowest_cpu_slowdown: f64,
    /// The run's noise score: the larger of the hypervisor's steal share
    /// and the slowest CPU's slowdown.
    pub score: f64,
}

impl SamplingNoise {
    /// Sums up `batches` and `probes`, with the steal share measured over
    /// the same time; `None` when there is neither.
    pub fn summarize<'a>(logs: impl IntoIterator<Item = &'a BatchLog>, steal: f64) -> Option<Self> {
        let (mut batches, mut probes) = (Vec::new(), Vec::new());
        for log in logs {
            batches.extend_from_slice(&log.batches);
            probes.extend_from_slice(&log.probes);
        }
        if batches.is_empty() && probes.is_empty() {
            return None;
        }
        let preempted = batches
            .iter()
            .filter(|b| {
                b.sampler_involuntary_switches.unwrap_or(0) > 0
                    || b.worker_involuntary_switches.unwrap_or(0) > 0
            })
            .count();
        let worker_migrations: u64 = batches.iter().filter_map(|b| b.worker_migrations).sum();
        let per_batch = |n: f64| n / batches.len().max(1) as f64;
        let mut all: Vec<f64> = probes.iter().map(|p| p.micros).collect();
        all.sort_by(f64::total_cmp);
        let fastest = all.get(all.len() / 20).copied();
        let mut cpus: Vec<u32> = probes.iter().map(|p| p.cpu).collect();
        cpus.sort_unstable();
        cpus.dedup();
        let slowest = cpus
            .iter()
            .filter_map(|&cpu| {
                let times: Vec<f64> = probes
                    .iter()
                    .filter(|p| p.cpu == cpu)
                    .map(|p| p.micros)
                    .collect();
                Some((cpu, stats::median(&times)? / fastest?.max(1e-9) - 1.0))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let slowdown = slowest.map_or(0.0, |(_, s)| s.max(0.0));
        Some(Self {
            batches: batches.len(),
            preempted_share: per_batch(preempted as f64),
            worker_migrations_per_batch: per_batch(worker_migrations as f64),
            slowest_cpu: slowest.map(|(cpu, _)| cpu),
            slowest_cpu_slowdown: slowdown,
            score: steal.max(slowdown),
        })
    }

    /// As stored with a run, beside the host's figures: (metric, value, unit).
    pub fn figures(&self) -> Vec<(&'static str, f64, &'static str)> {
        let mut figures = vec![
            ("noise_score", self.score, "fraction"),
            ("batches", self.batches as f64, "count"),
            ("preempted_batch_share", self.preempted_share, "fraction"),
            (
                "worker_migrations_per_batch",
                self.worker_migrations_per_batch,
                "count",
            ),
            (
                "slowest_cpu_slowdown",
                self.slowest_cpu_slowdown,
                "fraction",
            ),
        ];
        if let Some(cpu) = self.slowest_cpu {
            figures.push(("slowest_cpu", cpu as f64, "count"));
        }
        figures
    }

    /// Back from a run's measurements; `None` for a run stored without them.
    pub fn from_measurements(measurements: &[Measurement]) -> Option<Self> {
        let value = |metric: &str| {
            measurements
                .iter()
                .find(|m| {
                    m.tool == Tool::Paired && m.benchmark == HOST_BENCHMARK && m.metric == metric
                })
                .and_then(|m| m.value)
        };
        Some(Self {
            score: value("noise_score")?,
            batches: value("batches")? as usize,
            preempted_share: value("preempted_batch_share")?,
            worker_migrations_per_batch: value("worker_migrations_per_batch")?,
            slowest_cpu: value("slowest_cpu").map(|c| c as u32),
            slowest_cpu_slowdown: value("slowest_cpu_slowdown")?,
        })
    }
}

impl std::fmt::Display for SamplingNoise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "noise score {:.1}%", self.score * 100.0)?;
        if let Some(cpu) = self.slowest_cpu {
            write!(
                f,
                " (slowest CPU {cpu}: {:.1}% slower than the fastest probes)",
                self.slowest_cpu_slowdown * 100.0
            )?;
        }
        write!(
            f,
            "; over {} batches, a thread preempted in {:.0}% of them, {:.2} worker migrations per batch",
            self.batches,
            self.preempted_share * 100.0,
            self.worker_migrations_per_batch
        )
    }
}

/// How much slower a CPU may run during sampling before a contract on
/// `metric` bounded by `bound` cannot be decided: its limit, for an overhead
/// bounded from above; the host's steal threshold for the rest, whose
/// bounds are not fractions.
pub fn noise_threshold(metric: Metric, bound: Bound) -> f64 {
    match (metric, bound) {
        (Metric::WallClock | Metric::CpuTime, Bound::AtMost(limit)) => limit,
        _ => STEAL_MAX,
    }
}

/// Everything measured about a run's environment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunNoise {
    pub host: Option<HostNoise>,
    pub sampling: Option<SamplingNoise>,
}

impl RunNoise {
    pub fn from_measurements(measurements: &[Measurement]) -> Self {
        Self {
            host: HostNoise::from_measurements(measurements),
            sampling: SamplingNoise::from_measurements(measurements),
        }
    }

    /// The noise of a verdict's every look: `host` over the time they took,
    /// and the batches and probes of each look's `logs`, summed up as one.
    pub fn over_looks<'a>(
        host: Option<HostNoise>,
        logs: impl IntoIterator<Item = &'a BatchLog>,
    ) -> Self {
        Self {
            host,
            sampling: SamplingNoise::summarize(logs, host.map_or(0.0, |h| h.steal)),
        }
    }

    /// As stored with a run, `paired` measurements of [`HOST_BENCHMARK`]:
    /// the host's figures, then the batches'. [`Self::from_measurements`]
    /// reads them back.
    pub fn measurements(&self) -> Vec<Measurement> {
        let host = self.host.iter().flat_map(|h| h.figures());
        host.chain(self.sampling.iter().flat_map(|s| s.figures()))
            .map(|(metric, value, unit)| Measurement {
                tool: Tool::Paired,
                benchmark: HOST_BENCHMARK.into(),
                metric: metric.into(),
                value: Some(value),
                unit: unit.into(),
            })
            .collect()
    }

    /// The run's noise score, when its batches were observed.
    pub fn score(&self) -> Option<f64> {
        self.sampling.map(|s| s.score)
    }

    /// Why the environment was too noisy to decide at `threshold` (the
    /// contract's limit, as a fraction), in one line with the measured
    /// figures; `None` when it was not. The host's own thresholds
    /// ([`HostNoise::too_noisy`]) apply at any limit; a CPU that ran
    /// slower by at least `threshold` during sampling is too noisy too.
    pub fn too_noisy_at(&self, threshold: f64) -> Option<String> {
        let mut reasons: Vec<String> = self.host.and_then(|h| h.too_noisy()).into_iter().collect();
        if let Some(s) = self.sampling
            && let Some(cpu) = s.slowest_cpu
            && s.slowest_cpu_slowdown >= threshold
        {
            reasons.push(format!(
                "CPU {cpu} ran {:.0}% slower during sampling",
                s.slowest_cpu_slowdown * 100.0
            ));
        }
        if reasons.is_empty() {
            return None;
        }
        let mut line = reasons.join(" and ");
        if let Some(s) = self.sampling.filter(|s| s.preempted_share > 0.0) {
            line.push_str(&format!(
                " (a measured thread was preempted in {:.0}% of {} batches)",
                s.preempted_share * 100.0,
                s.batches
            ));
        }
        Some(line)
    }

    /// Why a contract on `metric` bounded by `bound` cannot be decided on
    /// this noise: [`Self::too_noisy_at`] its [`noise_threshold`].
    pub fn too_noisy_for(&self, metric: Metric, bound: Bound) -> Option<String> {
        self.too_noisy_at(noise_threshold(metric, bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pair: usize, side: Side, switches: u64, migrations: u64) -> BatchEnvironment {
        BatchEnvironment {
            pair,
            side,
            sampler_cpu: Some(0),
            worker_cpu: Some(1),
            sampler_involuntary_switches: Some(0),
            sampler_migrations: Some(0),
            worker_involuntary_switches: Some(switches),
            worker_migrations: Some(migrations),
        }
    }

    /// 20 pairs, CPU 0 probing at 100 µs and CPU 1 at `cpu1` µs; the worker
    /// preempted in the candidate batches of the first `preempted` pairs.
    fn log(cpu1: f64, preempted: usize) -> BatchLog {
        let mut log = BatchLog::default();
        for pair in 0..20 {
            log.batches.push(batch(pair, Side::Baseline, 0, 0));
            log.batches
                .push(batch(pair, Side::Candidate, u64::from(pair < preempted), 1));
            log.probes.push(SpeedProbe {
                pair,
                cpu: 0,
                micros: 100.0,
            });
            log.probes.push(SpeedProbe {
                pair,
                cpu: 1,
                micros: cpu1,
            });
        }
        log
    }

    #[test]
    fn the_score_is_the_larger_of_steal_and_the_slowest_cpus_slowdown() {
        let quiet = SamplingNoise::summarize([&log(101.0, 0)], 0.002).unwrap();
        assert_eq!(quiet.batches, 40);
        assert_eq!(quiet.preempted_share, 0.0);
        assert_eq!(quiet.worker_migrations_per_batch, 0.5);
        assert_eq!(quiet.slowest_cpu, Some(1));
        assert!((quiet.slowest_cpu_slowdown - 0.01).abs() < 1e-12);
        assert!((quiet.score - 0.01).abs() < 1e-12, "{quiet:?}");

        let stolen = SamplingNoise::summarize([&log(101.0, 0)], 0.09).unwrap();
        assert_eq!(stolen.score, 0.09);

        // Two logs (a first measurement and a re-measured look) count as one.
        let slow = SamplingNoise::summarize([&log(130.0, 4), &log(130.0, 4)], 0.0).unwrap();
        assert_eq!(slow.batches, 80);
        assert!((slow.preempted_share - 0.1).abs() < 1e-12);
        assert!((slow.score - 0.3).abs() < 1e-12);

        assert_eq!(SamplingNoise::summarize([&BatchLog::default()], 0.5), None);
    }

    #[test]
    fn figures_round_trip_through_measurements() {
        let noise = SamplingNoise::summarize([&log(130.0, 4)], 0.0).unwrap();
        let measurements: Vec<Measurement> = noise
            .figures()
            .into_iter()
            .map(|(metric, value, unit)| Measurement {
                tool: Tool::Paired,
                benchmark: HOST_BENCHMARK.into(),
                metric: metric.into(),
                value: Some(value),
                unit: unit.into(),
            })
            .collect();
        assert_eq!(SamplingNoise::from_measurements(&measurements), Some(noise));
        assert_eq!(
            RunNoise::from_measurements(&measurements).score(),
            Some(noise.score)
        );
        assert_eq!(SamplingNoise::from_measurements(&[]), None);
    }

    #[test]
    fn the_reason_names_the_measured_figures_at_the_contracts_limit() {
        let host = HostNoise {
            seconds: 30.0,
            foreign: 0.02,
            steal: 0.09,
            load_per_cpu: 1.0,
            involuntary_switches_per_second: 5.0,
        };
        let slow_cpu = SamplingNoise::summarize([&log(130.0, 4)], host.steal);
        let noise = RunNoise {
            host: Some(host),
            sampling: slow_cpu,
        };
        assert_eq!(
            noise.too_noisy_at(0.05).as_deref(),
            Some(
                "the hypervisor stole 9.0% of the CPU time and CPU 1 ran 30% slower during sampling (a measured thread was preempted in 10% of 40 batches)"
            )
        );
        // The same CPU is within a looser limit; the steal still is not.
        assert_eq!(
            noise.too_noisy_at(0.5).as_deref(),
            Some(
                "the hypervisor stole 9.0% of the CPU time (a measured thread was preempted in 10% of 40 batches)"
            )
        );
        let quiet_host = HostNoise {
            steal: 0.001,
            ..host
        };
        let only_cpu = RunNoise {
            host: Some(quiet_host),
            sampling: SamplingNoise::summarize([&log(106.0, 0)], quiet_host.steal),
        };
        assert_eq!(
            only_cpu.too_noisy_at(0.05).as_deref(),
            Some("CPU 1 ran 6% slower during sampling")
        );
        assert_eq!(only_cpu.too_noisy_at(0.10), None);
        assert_eq!(RunNoise::default().too_noisy_at(0.05), None);
    }

    #[test]
    fn the_score_covers_every_looks_batches() {
        let host = HostNoise {
            seconds: 30.0,
            foreign: 0.02,
            steal: 0.002,
            load_per_cpu: 1.0,
            involuntary_switches_per_second: 5.0,
        };
        // A quiet first look, then a re-measured look whose CPU 1 ran 30%
        // slower with its worker preempted in 4 of 20 pairs.
        let first = log(101.0, 0);
        let remeasured = log(130.0, 4);
        let first_only = RunNoise::over_looks(Some(host), [&first]);
        assert_eq!(first_only.sampling.map(|s| s.batches), Some(40));
        assert_eq!(
            first_only.too_noisy_for(Metric::WallClock, Bound::AtMost(0.05)),
            None
        );

        let every_look = RunNoise::over_looks(Some(host), [&first, &remeasured]);
        let sampling = every_look.sampling.unwrap();
        assert_eq!(sampling.batches, 80);
        assert!(
            (sampling.preempted_share - 0.05).abs() < 1e-12,
            "{sampling:?}"
        );
        // Half of CPU 1's probes are 30% slower: its median lies between.
        assert!(
            (sampling.slowest_cpu_slowdown - 0.155).abs() < 1e-12,
            "{sampling:?}"
        );
        assert_eq!(every_look.score(), Some(sampling.slowest_cpu_slowdown));
        assert_eq!(
            every_look
                .too_noisy_for(Metric::WallClock, Bound::AtMost(0.05))
                .as_deref(),
            Some(
                "CPU 1 ran 16% slower during sampling (a measured thread was preempted in 5% of 80 batches)"
            )
        );
        // Stored and read back whole.
        let stored = every_look.measurements();
        assert_eq!(
            stored.len(),
            host.figures().len() + sampling.figures().len()
        );
        assert_eq!(RunNoise::from_measurements(&stored), every_look);
        assert_eq!(
            RunNoise::over_looks(None, [&BatchLog::default()]),
            RunNoise::default()
        );
    }

    #[test]
    fn only_an_overhead_bounded_from_above_sets_its_own_threshold() {
        assert_eq!(
            noise_threshold(Metric::WallClock, Bound::AtMost(0.03)),
            0.03
        );
        assert_eq!(noise_threshold(Metric::CpuTime, Bound::AtMost(0.1)), 0.1);
        assert_eq!(
            noise_threshold(Metric::EventLoopStall, Bound::AtMost(1.0)),
            STEAL_MAX
        );
        assert_eq!(
            noise_threshold(Metric::Throughput, Bound::AtLeast(0.9)),
            STEAL_MAX
        );
    }
}
