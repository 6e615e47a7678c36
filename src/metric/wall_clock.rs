//! Wall-clock time per call: baseline and candidate batches alternate (the
//! paired sampler), judged on the median of per-pair ratios.

use super::{CaseSamples, Judged, MeasureContext};
use crate::chat::ChatRequest;
use crate::judge::contract::Variants;
use crate::judge::stats;
use crate::measure::paired;

pub fn measure(
    context: &MeasureContext,
    plan: paired::SamplingPlan,
    variants: &Variants,
    request: &'static ChatRequest,
) -> CaseSamples {
    let (baseline, candidate) = compared(variants);
    let runtime = current_thread_runtime();
    let mut b = |n| context.subject.batch(baseline, request, &runtime, n);
    let mut c = |n| context.subject.batch(candidate, request, &runtime, n);
    let plan = context.plan_watching(plan, &[baseline, candidate], request, &runtime);
    let samples = paired::sample(&mut b, &mut c, plan, None);
    CaseSamples {
        judged: samples.candidate_ns,
        other: samples.baseline_ns,
        tail: Vec::new(),
        environment: samples.environment,
    }
}

/// The compared variants; only compare-shaped contracts reach here.
pub(super) fn compared(
    variants: &Variants,
) -> (
    crate::measure::payload::Variant,
    crate::measure::payload::Variant,
) {
    match variants {
        Variants::Compare {
            baseline,
            candidate,
        } => (*baseline, *candidate),
        Variants::Bound { variant, .. } => (*variant, *variant),
    }
}

pub(super) fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

/// Candidate over baseline − 1, per pair: median with the sign test's
/// distribution-free interval.
pub fn overhead(baseline: &[f64], candidate: &[f64], confidence: f64) -> Option<Judged> {
    stats::paired_overhead(baseline, candidate, confidence).map(|i| Judged {
        estimate: i.estimate,
        low: i.low,
        high: i.high,
        samples: i.pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Metric;
    use super::*;
    use crate::judge::contract::Bound;
    use crate::judge::verdict::{Status, classify};

    #[test]
    fn a_known_overhead_is_judged_against_the_limit() {
        let baseline: Vec<f64> = (0..40).map(|i| 1000.0 + (i % 5) as f64 * 10.0).collect();
        let slower: Vec<f64> = baseline.iter().map(|b| b * 1.02).collect();
        let samples = CaseSamples {
            judged: slower,
            other: baseline.clone(),
            tail: Vec::new(),
            environment: Default::default(),
        };
        let judged = Metric::WallClock.judge(&samples, 0.95).unwrap();
        assert!((judged.estimate - 0.02).abs() < 1e-9, "{judged:?}");
        assert_eq!(classify(&judged, Bound::AtMost(0.05)), Status::Pass);
        assert_eq!(classify(&judged, Bound::AtMost(0.01)), Status::Fail);
        let too_few = CaseSamples {
            judged: baseline[..3].to_vec(),
            other: baseline[..3].to_vec(),
            tail: Vec::new(),
            environment: Default::default(),
        };
        assert_eq!(Metric::WallClock.judge(&too_few, 0.95), None);
    }
}
