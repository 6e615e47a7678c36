//! Judging: contract verdicts with confidence intervals, re-measuring what
//! is inconclusive, and head-versus-base comparisons.

pub mod compare;
pub mod contract;
pub mod stats;
pub mod verdict;

use std::time::{Duration, Instant};

use crate::metric::CaseSamples;
use crate::metric::Metric;
use contract::{Case, Contract};
use verdict::{CaseEvidence, ContractVerdict, Status, judge_case};

/// Judges every case; an INCONCLUSIVE wall-clock case gets more samples from
/// `sample_more` until it is decided or `budget` is spent.
pub fn judge_with_remeasure(
    contract: &Contract,
    mut evidence: Vec<CaseEvidence>,
    sample_more: &mut dyn FnMut(&Case) -> CaseSamples,
    budget: Duration,
) -> ContractVerdict {
    let deadline = Instant::now() + budget;
    loop {
        let cases: Vec<_> = contract
            .cases
            .iter()
            .zip(&evidence)
            .map(|(case, e)| judge_case(contract, case, e))
            .collect();
        let open: Vec<usize> = cases
            .iter()
            .enumerate()
            .filter(|(_, c)| c.status == Status::Inconclusive)
            .map(|(i, _)| i)
            .collect();
        if open.is_empty() || contract.metric != Metric::WallClock || Instant::now() >= deadline {
            return ContractVerdict::new(contract, cases);
        }
        for i in open {
            let more = sample_more(&contract.cases[i]);
            let samples = &mut evidence[i].samples;
            samples.judged.extend(more.judged);
            samples.other.extend(more.other);
            samples.tail.extend(more.tail);
        }
    }
}
