//! Verdicts: pure functions of samples and a contract.
//!
//! PASS when the whole confidence interval of the overhead lies under the
//! limit (a non-inferiority test: "not more than 5% slower", proven), FAIL
//! when it lies wholly over it, INCONCLUSIVE when it straddles the limit.

use serde::Serialize;

use super::contract::{Bound, Case, Contract, Variants};
use super::stats;
use crate::measure::batch_noise::RunNoise;
use crate::metric::{CaseSamples, Judged, Metric};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Inconclusive,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Inconclusive => "INCONCLUSIVE",
        }
    }

    pub fn parse(label: &str) -> Option<Self> {
        [Status::Pass, Status::Fail, Status::Inconclusive]
            .into_iter()
            .find(|s| s.label() == label)
    }
}

/// Where a judged figure's interval lies relative to its bound.
pub fn classify(judged: &Judged, bound: Bound) -> Status {
    let (good, bad) = match bound {
        Bound::AtMost(v) => (judged.high < v, judged.low > v),
        Bound::AtLeast(v) => (judged.low > v, judged.high < v),
    };
    if good {
        Status::Pass
    } else if bad {
        Status::Fail
    } else {
        Status::Inconclusive
    }
}

/// What one case is judged from.
#[derive(Clone, Debug, Default)]
pub struct CaseEvidence {
    pub samples: CaseSamples,
    /// The spec's method: (baseline mean, candidate mean), ns.
    pub literal_means: Option<(f64, f64)>,
    /// Callgrind: (baseline, candidate) instructions.
    pub instructions: Option<(f64, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseVerdict {
    pub case: String,
    /// The payload's key (`small`, `spaces-1000000`, ...).
    pub payload: String,
    pub payload_bytes: usize,
    /// Medians of the other side's and the judged side's samples, in the
    /// metric's sample unit ([`crate::metric::sample_unit`]).
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// The judged figure and its interval, in the metric's judged unit.
    pub estimate: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// In the judged unit.
    pub bound: Bound,
    pub status: Status,
    /// Pairs, rounds or trials behind the figure.
    pub samples: usize,
    /// Why it could not be decided, or what else was seen.
    pub note: Option<String>,
    /// The spec's own figure: (async mean − sync mean) / sync mean, 10 iterations.
    pub literal_overhead: Option<f64>,
    pub instructions_baseline: Option<f64>,
    pub instructions_candidate: Option<f64>,
    pub instruction_overhead: Option<f64>,
}

/// Judges one case with intervals at `confidence` (the contract's, or a
/// look's share of it: [`super::per_look_confidence`]).
pub fn judge_case(
    contract: &Contract,
    case: &Case,
    evidence: &CaseEvidence,
    confidence: f64,
) -> CaseVerdict {
    let samples = &evidence.samples;
    let judged = contract.metric.judge(samples, confidence);
    let bound = contract.metric.judged_bound(case.bound);
    let status = judged.map_or(Status::Inconclusive, |j| classify(&j, bound));
    let note = match judged {
        None if samples.judged.is_empty() => Some(match contract.metric {
            Metric::Instructions if case.payload.as_spec().is_none() => {
                "no instruction counts: the callgrind suite runs the spec's payloads (small, medium, large) only".to_owned()
            }
            Metric::Instructions => "no instruction counts in this run (valgrind missing?)".to_owned(),
            _ => format!(
                "no {} samples in this run: it was measured without this contract, or the metric could not run (see the run's notes)",
                contract.metric.name()
            ),
        }),
        None => Some(format!(
            "{} samples are too few for a {:.1}% interval",
            samples.judged.len(),
            confidence * 100.0
        )),
        Some(_) if !samples.tail.is_empty() => stats::median(&samples.tail).map(|p99| {
            format!(
                "p99 latency {} (median of {} windows)",
                crate::render::duration_text(p99),
                samples.tail.len()
            )
        }),
        Some(_) => None,
    };
    let instruction_overhead = evidence.instructions.map(|(b, c)| c / b - 1.0);
    CaseVerdict {
        case: case.name.clone(),
        payload: case.payload.key.clone(),
        payload_bytes: case.payload.bytes,
        baseline: stats::median(&samples.other),
        candidate: stats::median(&samples.judged),
        estimate: judged.map(|j| j.estimate),
        low: judged.map(|j| j.low),
        high: judged.map(|j| j.high),
        bound,
        status,
        samples: judged.map_or(samples.judged.len(), |j| j.samples),
        note,
        literal_overhead: evidence.literal_means.map(|(b, c)| (c - b) / b),
        instructions_baseline: evidence.instructions.map(|(b, _)| b),
        instructions_candidate: evidence.instructions.map(|(_, c)| c),
        instruction_overhead,
    }
}

/// FAIL if any case fails, PASS if all pass, INCONCLUSIVE otherwise.
pub fn overall(cases: &[CaseVerdict]) -> Status {
    cases
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Inconclusive)
}

/// How many looks a verdict took, of how many its design allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Looks {
    pub taken: usize,
    pub max: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContractVerdict {
    pub contract: String,
    pub title: String,
    /// The contract's content hash ([`Contract::hash`]).
    pub contract_hash: String,
    pub metric: Metric,
    /// The judged variant and what it is set against (a variant, or the
    /// reference payload), for the reader.
    pub judged: String,
    pub other: Option<String>,
    /// The contract's bound, in the judged unit.
    pub bound: Bound,
    pub confidence: f64,
    pub status: Status,
    pub cases: Vec<CaseVerdict>,
    /// `None` for verdicts stored before looks were recorded.
    pub looks: Option<Looks>,
}

impl ContractVerdict {
    pub fn new(contract: &Contract, cases: Vec<CaseVerdict>, looks: Looks) -> Self {
        let other = match (&contract.variants, &contract.reference_payload) {
            (Variants::Compare { baseline, .. }, _) => Some(baseline.name().to_owned()),
            (
                Variants::Bound {
                    reference: Some(v), ..
                },
                _,
            ) => Some(format!("{} (reference)", v.name())),
            (_, Some(payload)) => Some(format!("payload {} (reference)", payload.key)),
            _ => None,
        };
        Self {
            contract: contract.id.clone(),
            title: contract.title.clone(),
            contract_hash: contract.hash.clone(),
            metric: contract.metric,
            judged: contract.variants.judged().name().to_owned(),
            other,
            bound: contract.metric.judged_bound(contract.bound),
            confidence: contract.confidence,
            status: overall(&cases),
            cases,
            looks: Some(looks),
        }
    }
}

impl ContractVerdict {
    /// On a host measured as too noisy to decide (`reason`), a timed
    /// contract's failing cases are undecided: the noise, not the subject,
    /// may have made them slow. A pass stays a pass: its interval held
    /// despite the noise.
    pub fn on_noisy_host(mut self, reason: &str) -> Self {
        if !self.metric.is_timed() {
            return self;
        }
        for case in &mut self.cases {
            if case.status == Status::Fail {
                case.status = Status::Inconclusive;
                case.note = Some(format!("too noisy to decide: {reason}"));
            }
        }
        self.status = overall(&self.cases);
        self
    }

    /// The noise rule, the one every verdict is judged under (`report`,
    /// `calibrate`, `selftest`): when `noise` says the machine could not
    /// decide at this contract's limit, [`Self::on_noisy_host`] with that
    /// reason; otherwise the verdict as it is.
    pub fn under_noise(self, noise: &RunNoise) -> Self {
        match noise.too_noisy_for(self.metric, self.bound) {
            Some(reason) => self.on_noisy_host(&reason),
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(low: f64, high: f64) -> Judged {
        Judged {
            estimate: (low + high) / 2.0,
            low,
            high,
            samples: 10,
        }
    }

    #[test]
    fn intervals_are_classified_against_the_bound() {
        let limit = Bound::AtMost(0.05);
        assert_eq!(classify(&interval(-0.01, 0.03), limit), Status::Pass);
        assert_eq!(classify(&interval(0.06, 0.09), limit), Status::Fail);
        assert_eq!(classify(&interval(0.02, 0.07), limit), Status::Inconclusive);
        // "No significant difference" is not enough: a wide interval around 0 is not a pass.
        assert_eq!(
            classify(&interval(-0.08, 0.08), limit),
            Status::Inconclusive
        );
        let floor = Bound::AtLeast(0.9);
        assert_eq!(classify(&interval(0.92, 0.97), floor), Status::Pass);
        assert_eq!(classify(&interval(0.5, 0.8), floor), Status::Fail);
        assert_eq!(classify(&interval(0.85, 0.95), floor), Status::Inconclusive);
    }

    #[test]
    fn a_noisy_host_turns_timed_failures_into_undecided_ones() {
        let case = |status| CaseVerdict {
            case: "c".into(),
            payload: "medium".into(),
            payload_bytes: 65_043,
            baseline: Some(1.0),
            candidate: Some(2.0),
            estimate: Some(1.0),
            low: Some(0.9),
            high: Some(1.1),
            bound: Bound::AtMost(0.05),
            status,
            samples: 10,
            note: None,
            literal_overhead: None,
            instructions_baseline: None,
            instructions_candidate: None,
            instruction_overhead: None,
        };
        let verdict = |metric| ContractVerdict {
            contract: "c".into(),
            title: "c".into(),
            contract_hash: "h".into(),
            metric,
            judged: "async".into(),
            other: Some("sync".into()),
            bound: Bound::AtMost(0.05),
            confidence: 0.95,
            status: Status::Fail,
            cases: vec![case(Status::Pass), case(Status::Fail)],
            looks: None,
        };
        let noisy = verdict(Metric::WallClock).on_noisy_host("steal 9%");
        assert_eq!(noisy.status, Status::Inconclusive);
        assert_eq!(noisy.cases[0].status, Status::Pass);
        assert_eq!(
            noisy.cases[1].note.as_deref(),
            Some("too noisy to decide: steal 9%")
        );
        // Instruction counts do not depend on the host's load.
        assert_eq!(
            verdict(Metric::Instructions)
                .on_noisy_host("steal 9%")
                .status,
            Status::Fail
        );
    }

    #[test]
    fn the_noise_rule_withholds_a_fail_only_when_the_noise_reaches_the_limit() {
        use crate::measure::batch_noise::{BatchEnvironment, BatchLog, Side, SpeedProbe};
        let case = |status, high| CaseVerdict {
            case: "medium".into(),
            payload: "medium".into(),
            payload_bytes: 4_000,
            baseline: Some(1.0),
            candidate: Some(1.1),
            estimate: Some(high - 0.02),
            low: Some(high - 0.04),
            high: Some(high),
            bound: Bound::AtMost(0.05),
            status,
            samples: 20,
            note: None,
            literal_overhead: None,
            instructions_baseline: None,
            instructions_candidate: None,
            instruction_overhead: None,
        };
        let verdict = |bound, cases: Vec<CaseVerdict>| ContractVerdict {
            contract: "c".into(),
            title: "c".into(),
            contract_hash: "h".into(),
            metric: Metric::WallClock,
            judged: "async".into(),
            other: Some("sync".into()),
            bound,
            confidence: 0.95,
            status: overall(&cases),
            cases,
            looks: None,
        };
        // Two looks of ten pairs each; CPU 1's probes `slower` than CPU 0's.
        let looks = |slower: f64| {
            let mut look = BatchLog::default();
            for pair in 0..10 {
                for side in [Side::Baseline, Side::Candidate] {
                    look.batches.push(BatchEnvironment {
                        pair,
                        side,
                        sampler_cpu: Some(0),
                        worker_cpu: Some(1),
                        sampler_involuntary_switches: Some(0),
                        sampler_migrations: None,
                        worker_involuntary_switches: Some(0),
                        worker_migrations: None,
                    });
                }
                for (cpu, micros) in [(0, 40.0), (1, 40.0 * (1.0 + slower))] {
                    look.probes.push(SpeedProbe { pair, cpu, micros });
                }
            }
            RunNoise::over_looks(None, [&look, &look])
        };
        let failing = || {
            verdict(
                Bound::AtMost(0.05),
                vec![case(Status::Pass, 0.04), case(Status::Fail, 0.09)],
            )
        };

        // Quiet: a FAIL stands.
        assert_eq!(failing().under_noise(&looks(0.01)), failing());
        // A CPU 6% slower at a 5% limit: the FAIL is withheld, with the reason.
        let withheld = failing().under_noise(&looks(0.06));
        assert_eq!(withheld.status, Status::Inconclusive);
        assert_eq!(withheld.cases[0], failing().cases[0], "a PASS stays");
        assert_eq!(
            withheld.cases[1].note.as_deref(),
            Some("too noisy to decide: CPU 1 ran 6% slower during sampling")
        );
        // The same noise under a 10% limit does not reach it.
        let looser = || verdict(Bound::AtMost(0.10), vec![case(Status::Fail, 0.2)]);
        assert_eq!(looser().under_noise(&looks(0.06)), looser());
        // No measured noise, no change.
        assert_eq!(failing().under_noise(&RunNoise::default()), failing());
    }

    #[test]
    fn the_worst_case_decides() {
        let verdict = |status| CaseVerdict {
            case: "c".into(),
            payload: "small".into(),
            payload_bytes: 300,
            baseline: None,
            candidate: None,
            estimate: None,
            low: None,
            high: None,
            bound: Bound::AtMost(0.05),
            status,
            samples: 0,
            note: None,
            literal_overhead: None,
            instructions_baseline: None,
            instructions_candidate: None,
            instruction_overhead: None,
        };
        assert_eq!(
            overall(&[verdict(Status::Pass), verdict(Status::Pass)]),
            Status::Pass
        );
        assert_eq!(
            overall(&[verdict(Status::Pass), verdict(Status::Inconclusive)]),
            Status::Inconclusive
        );
        assert_eq!(
            overall(&[verdict(Status::Inconclusive), verdict(Status::Fail)]),
            Status::Fail
        );
    }
}
