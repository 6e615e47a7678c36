//! Verdicts: pure functions of samples and a contract.
//!
//! PASS when the whole confidence interval of the overhead lies under the
//! limit (a non-inferiority test: "not more than 5% slower", proven), FAIL
//! when it lies wholly over it, INCONCLUSIVE when it straddles the limit.

use serde::Serialize;

use super::contract::{Case, Contract, Metric};
use super::stats::{self, OverheadInterval};
use crate::measure::paired::PairedSamples;
use crate::measure::payload::Payload;

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

/// Where an interval lies relative to the limit.
pub fn classify(low: f64, high: f64, limit: f64) -> Status {
    if high < limit {
        Status::Pass
    } else if low > limit {
        Status::Fail
    } else {
        Status::Inconclusive
    }
}

/// What one case is judged from.
#[derive(Clone, Debug, Default)]
pub struct CaseEvidence {
    pub samples: PairedSamples,
    /// The spec's method: (baseline mean, candidate mean), ns.
    pub literal_means: Option<(f64, f64)>,
    /// Callgrind: (baseline, candidate) instructions.
    pub instructions: Option<(f64, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseVerdict {
    pub case: String,
    pub payload: Payload,
    pub payload_bytes: usize,
    /// Median per-iteration time of the baseline's and candidate's batches.
    pub baseline_ns: Option<f64>,
    pub candidate_ns: Option<f64>,
    pub overhead: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub limit: f64,
    pub status: Status,
    pub pairs: usize,
    /// The spec's own figure: (async mean − sync mean) / sync mean, 10 iterations.
    pub literal_overhead: Option<f64>,
    pub instructions_baseline: Option<f64>,
    pub instructions_candidate: Option<f64>,
    pub instruction_overhead: Option<f64>,
}

pub fn judge_case(contract: &Contract, case: &Case, evidence: &CaseEvidence) -> CaseVerdict {
    let samples = &evidence.samples;
    let instruction_overhead = evidence.instructions.map(|(b, c)| c / b - 1.0);
    let interval: Option<OverheadInterval> = match contract.metric {
        Metric::WallClock => stats::paired_overhead(
            &samples.baseline_ns,
            &samples.candidate_ns,
            contract.confidence,
        ),
        Metric::Instructions => instruction_overhead.map(|o| OverheadInterval {
            estimate: o,
            low: o,
            high: o,
            pairs: 1,
        }),
    };
    let status = match interval {
        Some(i) => classify(i.low, i.high, contract.limit),
        None => Status::Inconclusive,
    };
    CaseVerdict {
        case: case.name.clone(),
        payload: case.payload,
        payload_bytes: case.payload.content().len(),
        baseline_ns: stats::median(&samples.baseline_ns),
        candidate_ns: stats::median(&samples.candidate_ns),
        overhead: interval.map(|i| i.estimate),
        ci_low: interval.map(|i| i.low),
        ci_high: interval.map(|i| i.high),
        limit: contract.limit,
        status,
        pairs: interval.map_or(0, |i| i.pairs),
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

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContractVerdict {
    pub contract: String,
    pub title: String,
    pub limit: f64,
    pub confidence: f64,
    pub status: Status,
    pub cases: Vec<CaseVerdict>,
}

impl ContractVerdict {
    pub fn new(contract: &Contract, cases: Vec<CaseVerdict>) -> Self {
        Self {
            contract: contract.id.clone(),
            title: contract.title.clone(),
            limit: contract.limit,
            confidence: contract.confidence,
            status: overall(&cases),
            cases,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_classified_against_the_limit() {
        assert_eq!(classify(-0.01, 0.03, 0.05), Status::Pass);
        assert_eq!(classify(0.06, 0.09, 0.05), Status::Fail);
        assert_eq!(classify(0.02, 0.07, 0.05), Status::Inconclusive);
        // "No significant difference" is not enough: a wide interval around 0 is not a pass.
        assert_eq!(classify(-0.08, 0.08, 0.05), Status::Inconclusive);
    }

    #[test]
    fn the_worst_case_decides() {
        let verdict = |status| CaseVerdict {
            case: "c".into(),
            payload: Payload::Small,
            payload_bytes: 300,
            baseline_ns: None,
            candidate_ns: None,
            overhead: None,
            ci_low: None,
            ci_high: None,
            limit: 0.05,
            status,
            pairs: 0,
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
