//! Instruction counts from the callgrind suite (gungraun): one count per
//! side, so the judged overhead is a point with no interval. The suite runs
//! the spec's payloads only; a case with another payload has no counts.

use super::{CaseSamples, Judged};
use crate::judge::contract::Case;
use crate::measure::payload::{Variant, benchmark_id};
use crate::store::{Measurement, Tool};

/// The case's counts from a run's callgrind figures.
pub fn samples(
    measurements: &[Measurement],
    case: &Case,
    baseline: Variant,
    candidate: Variant,
) -> CaseSamples {
    let count = |variant| {
        let payload = case.payload.as_spec()?;
        let benchmark = benchmark_id(payload, variant);
        measurements
            .iter()
            .find(|m| {
                m.tool == Tool::Callgrind && m.benchmark == benchmark && m.metric == "instructions"
            })
            .and_then(|m| m.value)
    };
    CaseSamples {
        judged: count(candidate).into_iter().collect(),
        other: count(baseline).into_iter().collect(),
        tail: Vec::new(),
        environment: Default::default(),
    }
}

pub fn judge(samples: &CaseSamples) -> Option<Judged> {
    match (samples.other.first(), samples.judged.first()) {
        (Some(b), Some(c)) if *b > 0.0 => Some(Judged::point(c / b - 1.0, 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_give_a_point_overhead() {
        let samples = CaseSamples {
            judged: vec![1010.0],
            other: vec![1000.0],
            tail: Vec::new(),
            environment: Default::default(),
        };
        let judged = judge(&samples).unwrap();
        assert!((judged.estimate - 0.01).abs() < 1e-12);
        assert_eq!(
            (judged.low, judged.high),
            (judged.estimate, judged.estimate)
        );
        assert_eq!(judge(&CaseSamples::default()), None);
    }
}
