//! Cost per request byte: a payload's time per byte against a reference
//! payload's (the contract's large one), through the same variant, in
//! alternating batches. Judged on the median per-pair ratio: "at most 10×
//! the large payload's time per byte".

use super::{CaseSamples, MeasureContext};
use crate::chat::ChatRequest;
use crate::measure::paired;
use crate::measure::payload::Variant;

pub fn measure(
    context: &MeasureContext,
    plan: paired::SamplingPlan,
    variant: Variant,
    (request, bytes): (&'static ChatRequest, usize),
    (reference, reference_bytes): (&'static ChatRequest, usize),
) -> CaseSamples {
    let runtime = super::wall_clock::current_thread_runtime();
    let mut b = |n| context.subject.batch(variant, reference, &runtime, n);
    let mut c = |n| context.subject.batch(variant, request, &runtime, n);
    // A worst-case payload can cost thousands of times the reference's per
    // call, or next to nothing: each side's batches are sized on that side.
    let plan = context.plan_watching(plan, &[variant], request, &runtime);
    let samples = paired::sample_each_sized(&mut b, &mut c, plan);
    let per_byte = |values: Vec<f64>, bytes: usize| -> Vec<f64> {
        values
            .into_iter()
            .map(|ns| ns / bytes.max(1) as f64)
            .collect()
    };
    CaseSamples {
        judged: per_byte(samples.candidate_ns, bytes),
        other: per_byte(samples.baseline_ns, reference_bytes),
        tail: Vec::new(),
        environment: samples.environment,
    }
}

#[cfg(test)]
mod tests {
    use super::super::CaseSamples;
    use super::super::Metric;
    use crate::judge::contract::Bound;
    use crate::judge::verdict::{Status, classify};

    #[test]
    fn a_cliff_is_a_ratio_of_costs_per_byte() {
        let reference: Vec<f64> = (0..10).map(|i| 5.0 + i as f64 * 0.01).collect();
        let samples = |times: f64| CaseSamples {
            judged: reference.iter().map(|r| r * times).collect(),
            other: reference.clone(),
            tail: Vec::new(),
            environment: Default::default(),
        };
        let judged = Metric::CostPerByte.judge(&samples(7.0), 0.95).unwrap();
        assert!((judged.estimate - 7.0).abs() < 1e-9);
        assert_eq!(classify(&judged, Bound::AtMost(10.0)), Status::Pass);
        let cliff = Metric::CostPerByte.judge(&samples(15.0), 0.95).unwrap();
        assert_eq!(classify(&cliff, Bound::AtMost(10.0)), Status::Fail);
    }
}
