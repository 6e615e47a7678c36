//! The metrics: the [`Metric`] enum and one module per metric — how it is
//! measured (I/O at the edge), how a case is judged from its samples (pure),
//! and how its figures read. Adding a metric touches this directory only: a
//! variant, a module, and an arm in each `match` of this file.

pub mod cost_per_byte;
pub mod cpu_time;
pub mod event_loop_stall;
pub mod instructions;
pub mod peak_memory;
pub mod throughput;
pub mod wall_clock;

use std::path::PathBuf;

use crate::chat::ChatRequest;
use crate::judge::contract::{Bound, Case, Contract, Variants};
use crate::measure::MeasureError;
use crate::measure::batch_noise::BatchLog;
use crate::measure::paired::{CallerPlacement, SamplingPlan};
use crate::measure::payload::Variant;
use crate::measure::subject::Subject;

/// What a contract is judged on. Each metric has one module here: its
/// measurement, its judgement and its units.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Paired, interleaved wall-clock samples: candidate / baseline − 1.
    WallClock,
    /// Callgrind instruction counts (deterministic: no interval).
    Instructions,
    /// Process CPU time of all threads per call: candidate / baseline − 1.
    CpuTime,
    /// The longest a 100 µs ticker on the caller's runtime is late while
    /// the variant runs the payload.
    EventLoopStall,
    /// Requests per second of concurrent callers on a multi-thread runtime,
    /// against one dedicated thread calling the baseline back to back.
    Throughput,
    /// Time per request byte against a reference payload's, same variant.
    CostPerByte,
    /// Peak resident memory a call adds, per request byte.
    PeakMemory,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::WallClock,
        Metric::Instructions,
        Metric::CpuTime,
        Metric::EventLoopStall,
        Metric::Throughput,
        Metric::CostPerByte,
        Metric::PeakMemory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::WallClock => "wall_clock",
            Metric::Instructions => "instructions",
            Metric::CpuTime => "cpu_time",
            Metric::EventLoopStall => "event_loop_stall",
            Metric::Throughput => "throughput",
            Metric::CostPerByte => "cost_per_byte",
            Metric::PeakMemory => "peak_memory",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// How the metric uses the contract's variants.
    pub fn shape(self) -> Shape {
        match self {
            Metric::WallClock | Metric::Instructions | Metric::CpuTime | Metric::Throughput => {
                Shape::Compare
            }
            Metric::EventLoopStall => Shape::Bound {
                reference: Reference::Variant,
            },
            Metric::CostPerByte => Shape::Bound {
                reference: Reference::PayloadRequired,
            },
            Metric::PeakMemory => Shape::Bound {
                reference: Reference::Payload,
            },
        }
    }
}

/// Whether a metric compares two variants or bounds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `baseline` and `candidate`: the bound is on their ratio.
    Compare,
    /// `variant`, with a reference row measured beside it.
    Bound { reference: Reference },
}

/// What a bounded metric's reference row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// Another variant on the same payload (`reference`, optional).
    Variant,
    /// Another payload through the same variant (`reference_payload`, optional).
    Payload,
    /// As `Payload`, and the judged figure is relative to it: required.
    PayloadRequired,
}

/// A case's samples as measured and stored, one value per pair or round:
/// the judged side, and the side it is compared with or shown beside.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaseSamples {
    pub judged: Vec<f64>,
    pub other: Vec<f64>,
    /// Per round, the judged side's 99th-percentile latency in ns
    /// (throughput only).
    pub tail: Vec<f64>,
    /// What the OS said about the paired sampler's batches (empty for the
    /// metrics measured otherwise).
    pub environment: BatchLog,
}

/// A case's judged figure: estimate and interval, in the metric's judged
/// unit (see [`judged_text`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judged {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Pairs, rounds or trials behind it.
    pub samples: usize,
}

impl Judged {
    /// A figure with no interval (a count, or a worst case).
    pub fn point(value: f64, samples: usize) -> Self {
        Self {
            estimate: value,
            low: value,
            high: value,
            samples,
        }
    }
}

/// Where the peak-memory metric's child process comes from.
#[derive(Clone, Debug)]
pub struct ChildProbe {
    /// The perfwarden binary (it has the hidden `peak-memory` command).
    pub exe: PathBuf,
    pub tokenizer: PathBuf,
}

/// What measuring a case needs.
pub struct MeasureContext {
    pub subject: &'static dyn Subject,
    pub quick: bool,
    /// `None` when no child can be started (peak memory is then not measured).
    pub child: Option<ChildProbe>,
}

impl MeasureContext {
    /// The paired sampler's plan for `case`.
    pub fn plan(&self, case: &Case) -> SamplingPlan {
        SamplingPlan {
            caller: case.caller,
            ..SamplingPlan::for_mode(self.quick)
        }
    }

    /// `plan`, watching the thread that `variants` hand `request`'s work
    /// to, if one of them does.
    pub fn plan_watching(
        &self,
        plan: SamplingPlan,
        variants: &[Variant],
        request: &'static ChatRequest,
        runtime: &tokio::runtime::Runtime,
    ) -> SamplingPlan {
        SamplingPlan {
            worker_thread: variants
                .iter()
                .find_map(|&v| self.subject.worker_thread(v, request, runtime)),
            ..plan
        }
    }
}

/// The stored sample series of a case: `(judged, other, tail)` keys. The
/// wall-clock keys are `<payload>/<variant>`, as they always were; the others
/// start with the metric, and a reference payload's name ends both sides'.
pub fn sample_keys(contract: &Contract, case: &Case) -> (String, Option<String>, String) {
    // An unpinned case keeps its samples apart from the debiased case of the
    // same payload.
    let payload = match case.caller {
        CallerPlacement::Debiased => case.payload.key.clone(),
        CallerPlacement::Unpinned => format!("{}@unpinned", case.payload.key),
    };
    let metric = contract.metric;
    let key = |side: &str| match (metric, &contract.reference_payload) {
        (Metric::WallClock, _) => format!("{payload}/{side}"),
        (_, Some(reference)) => format!("{}/{payload}/{side}~{}", metric.name(), reference.key),
        (_, None) => format!("{}/{payload}/{side}", metric.name()),
    };
    let judged = contract.variants.judged().name();
    let other = match (&contract.variants, &contract.reference_payload) {
        (Variants::Compare { baseline, .. }, _) => Some(key(baseline.name())),
        (
            Variants::Bound {
                reference: Some(v), ..
            },
            _,
        ) => Some(key(&format!("{}-reference", v.name()))),
        (Variants::Bound { .. }, Some(_)) => Some(key("reference")),
        (Variants::Bound { .. }, None) => None,
    };
    (key(judged), other, key(&format!("{judged}-p99")))
}

/// Measures one case of `contract` on `request` (the case's payload, parsed).
/// Instruction counts come from the callgrind suite instead: nothing to do.
pub fn measure(
    context: &MeasureContext,
    contract: &Contract,
    case: &Case,
    request: &'static ChatRequest,
) -> Result<CaseSamples, MeasureError> {
    let reference = || -> Result<&'static ChatRequest, MeasureError> {
        let payload = contract
            .reference_payload
            .as_ref()
            .ok_or_else(|| MeasureError::Tool("no reference payload".into()))?;
        Ok(Box::leak(Box::new(payload.request())))
    };
    Ok(match contract.metric {
        Metric::WallClock => {
            wall_clock::measure(context, context.plan(case), &contract.variants, request)
        }
        Metric::CpuTime => {
            cpu_time::measure(context, context.plan(case), &contract.variants, request)
        }
        Metric::Instructions => CaseSamples::default(),
        Metric::EventLoopStall => event_loop_stall::measure(context, &contract.variants, request),
        Metric::Throughput => throughput::measure(context, &contract.variants, request),
        Metric::CostPerByte => cost_per_byte::measure(
            context,
            context.plan(case),
            contract.variants.judged(),
            (request, case.payload.bytes),
            (
                reference()?,
                contract.reference_payload.as_ref().map_or(1, |p| p.bytes),
            ),
        ),
        Metric::PeakMemory => peak_memory::measure(
            context,
            contract.variants.judged(),
            &case.payload,
            contract.reference_payload.as_ref(),
        )?,
    })
}

impl Metric {
    /// The judged figure of a case from its samples; `None` when they cannot
    /// decide anything (too few, or none).
    pub fn judge(self, samples: &CaseSamples, confidence: f64) -> Option<Judged> {
        match self {
            Metric::WallClock | Metric::CpuTime => {
                wall_clock::overhead(&samples.other, &samples.judged, confidence)
            }
            Metric::Instructions => instructions::judge(samples),
            Metric::EventLoopStall => event_loop_stall::judge(samples, confidence),
            Metric::Throughput | Metric::CostPerByte => {
                wall_clock::overhead(&samples.other, &samples.judged, confidence).map(|o| Judged {
                    estimate: 1.0 + o.estimate,
                    low: 1.0 + o.low,
                    high: 1.0 + o.high,
                    samples: o.samples,
                })
            }
            Metric::PeakMemory => peak_memory::judge(samples),
        }
    }

    /// The bounds that make sense for a metric's judged figure.
    pub fn check_bound(self, bound: Bound) -> Result<(), String> {
        let value = bound.value();
        let ok = match self {
            Metric::WallClock | Metric::CpuTime | Metric::Instructions => {
                matches!(bound, Bound::AtMost(_)) && value > 0.0 && value < 100.0
            }
            Metric::Throughput => matches!(bound, Bound::AtLeast(_)) && value > 0.0,
            Metric::EventLoopStall | Metric::CostPerByte | Metric::PeakMemory => {
                matches!(bound, Bound::AtMost(_)) && value > 0.0
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{} {value} does not fit the metric {}: {}",
                match bound {
                    Bound::AtMost(_) => "limit",
                    Bound::AtLeast(_) => "at_least",
                },
                self.name(),
                self.bound_help()
            ))
        }
    }

    fn bound_help(self) -> &'static str {
        match self {
            Metric::WallClock | Metric::CpuTime | Metric::Instructions => {
                "give `limit`, the largest allowed overhead as a fraction (0.05 = 5%)"
            }
            Metric::Throughput => {
                "give `at_least`, the smallest allowed ratio of the candidate's requests per second to the baseline's (0.9 = 90%)"
            }
            Metric::EventLoopStall => {
                "give `limit`, the longest allowed ticker delay in milliseconds (1.0 = 1 ms)"
            }
            Metric::CostPerByte => {
                "give `limit`, the largest allowed ratio of time per byte to the reference payload's (10 = 10×)"
            }
            Metric::PeakMemory => {
                "give `limit`, the largest allowed peak memory as a multiple of the request's size (20 = 20×)"
            }
        }
    }

    /// The unit of a metric's stored samples.
    pub fn sample_unit(self) -> &'static str {
        match self {
            Metric::WallClock | Metric::CpuTime | Metric::EventLoopStall => "ns",
            Metric::Instructions => "instructions",
            Metric::Throughput => "requests/s",
            Metric::CostPerByte => "ns/B",
            Metric::PeakMemory => "B/B",
        }
    }

    /// A stored sample as a reader wants it.
    pub fn sample_text(self, value: f64) -> String {
        match self {
            Metric::WallClock | Metric::CpuTime | Metric::EventLoopStall => {
                crate::render::duration_text(value)
            }
            Metric::Instructions => crate::render::count_text(value),
            Metric::Throughput => format!("{value:.0}/s"),
            Metric::CostPerByte => format!("{value:.2} ns/B"),
            Metric::PeakMemory => format!("{value:.1} B/B"),
        }
    }

    /// A judged figure (an estimate, an interval end or a bound) as a reader
    /// wants it. The event loop's bound is written in milliseconds in the
    /// contract and judged in nanoseconds.
    pub fn judged_text(self, value: f64) -> String {
        match self {
            Metric::WallClock | Metric::CpuTime | Metric::Instructions => {
                crate::render::percent(Some(value))
            }
            Metric::EventLoopStall => crate::render::duration_text(value),
            Metric::Throughput | Metric::CostPerByte | Metric::PeakMemory => format!("{value:.2}×"),
        }
    }

    /// The bound in the judged figure's unit (the contract writes the event
    /// loop's in milliseconds).
    pub fn judged_bound(self, bound: Bound) -> Bound {
        match (self, bound) {
            (Metric::EventLoopStall, Bound::AtMost(ms)) => Bound::AtMost(ms * 1e6),
            (Metric::EventLoopStall, Bound::AtLeast(ms)) => Bound::AtLeast(ms * 1e6),
            _ => bound,
        }
    }

    /// What the judged figure is, in a few words.
    pub fn judged_name(self) -> &'static str {
        match self {
            Metric::WallClock => "wall-clock overhead",
            Metric::CpuTime => "CPU-time overhead",
            Metric::Instructions => "instruction overhead",
            Metric::EventLoopStall => "longest ticker delay (median of rounds)",
            Metric::Throughput => "throughput ratio",
            Metric::CostPerByte => "time per byte against the reference",
            Metric::PeakMemory => "peak memory per request byte",
        }
    }

    /// How a metric is measured and judged, in a sentence or two.
    pub fn method_text(self, judged: &str, other: Option<&str>, samples: usize) -> String {
        let other = other.unwrap_or("nothing");
        match self {
            Metric::WallClock => format!(
                "Overhead = {judged} / {other} − 1 in wall-clock time per call, from {samples} pairs of batches alternating (median of the per-pair ratios, sign-test interval)."
            ),
            Metric::CpuTime => format!(
                "Overhead = {judged} / {other} − 1 in CPU time of all the process's threads per call, from {samples} pairs of batches alternating."
            ),
            Metric::Instructions => format!(
                "Overhead = {judged} / {other} − 1 in callgrind instructions (one count each, no interval)."
            ),
            Metric::EventLoopStall => format!(
                "The longest delay of a 100 µs ticker on the caller's current-thread runtime while {judged} runs the payload, per round of about 20 ms of calls; judged on the median of {samples} rounds. {other} is measured the same way for reference."
            ),
            Metric::Throughput => format!(
                "Requests per second of {} concurrent callers of {judged} on a multi-thread runtime over one dedicated thread calling {other} back to back, from {samples} pairs of windows alternating; the note gives {judged}'s p99 latency.",
                throughput::CALLERS
            ),
            Metric::CostPerByte => format!(
                "Time per request byte through {judged}, over the {other}'s, from {samples} pairs of batches alternating."
            ),
            Metric::PeakMemory => format!(
                "How far one call of {judged} raises the peak resident memory of a fresh process, per request byte; the worst of {samples} trials."
            ),
        }
    }

    /// Whether its figures are times a busy host can distort (all but the
    /// counts and the memory).
    pub fn is_timed(self) -> bool {
        !matches!(self, Metric::Instructions | Metric::PeakMemory)
    }

    /// How its judged figures are drawn.
    pub fn chart_scale(self) -> ChartScale {
        match self {
            Metric::WallClock | Metric::CpuTime | Metric::Instructions => ChartScale {
                factor: 100.0,
                unit: "overhead %",
                origin: 0.0,
            },
            Metric::EventLoopStall => ChartScale {
                factor: 1e-6,
                unit: "ms",
                origin: 0.0,
            },
            Metric::Throughput | Metric::CostPerByte | Metric::PeakMemory => ChartScale {
                factor: 1.0,
                unit: "×",
                origin: 1.0,
            },
        }
    }
}

/// How a metric's judged figures are drawn: multiplied by `factor`, in `unit`.
pub struct ChartScale {
    pub factor: f64,
    pub unit: &'static str,
    /// Where the zero line goes (0 for overheads, 1 for ratios).
    pub origin: f64,
}
