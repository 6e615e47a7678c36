//! Made-up runs with every figure a real run has, for exercising storage,
//! rendering and publishing at scale without measuring. Test support: the
//! integration tests and the dashboard-scale benchmark use them; nothing in
//! perfwarden does.

use perfwarden::measure::payload::{Payload, Variant, benchmark_id};
use perfwarden::store::{Machine, Measurement, NewRun, RawSample, Tool};

/// Run `index` of a plausible history: sync times per payload near the
/// contract machine's, async a little above, slow drift, and a step up in
/// async time from `regression_from` on.
pub fn run(index: usize, regression_from: Option<usize>) -> NewRun {
    let machine = Machine {
        cpu_model: "Synthetic CPU".into(),
        cores: 2,
        os: "Synthetic OS".into(),
        rustc: "rustc 1.95.0".into(),
        valgrind: Some("valgrind-3.19.0".into()),
    };
    let wobble = |k: usize| 1.0 + 0.01 * (((index * 7 + k * 13) % 11) as f64 - 5.0) / 5.0;
    let step = if regression_from.is_some_and(|r| index >= r) {
        1.08
    } else {
        1.0
    };
    let mut measurements = Vec::new();
    let mut samples = Vec::new();
    for (k, payload) in Payload::ALL.into_iter().enumerate() {
        let sync_ns = [1_800.0, 300_000.0, 1_800_000.0][k] * wobble(k);
        let sync_ir = [35_000.0, 6_590_000.0, 38_840_000.0][k];
        for variant in Variant::ALL {
            let benchmark = benchmark_id(payload, variant);
            let factor = if variant == Variant::Async {
                1.01 * step
            } else {
                1.0
            };
            let mean = sync_ns * factor;
            let figure = |tool, metric: &str, value, unit: &str| Measurement {
                tool,
                benchmark: benchmark.clone(),
                metric: metric.into(),
                value: Some(value),
                unit: unit.into(),
            };
            measurements.push(figure(Tool::Criterion, "mean", mean, "ns"));
            measurements.push(figure(Tool::Criterion, "median", mean, "ns"));
            measurements.push(figure(Tool::Criterion, "ci_low", mean * 0.995, "ns"));
            measurements.push(figure(Tool::Criterion, "ci_high", mean * 1.005, "ns"));
            measurements.push(figure(Tool::Spec, "mean", mean * 1.02, "ns"));
            measurements.push(figure(
                Tool::Callgrind,
                "instructions",
                sync_ir
                    + if variant == Variant::Async {
                        4_000.0
                    } else {
                        0.0
                    },
                "instructions",
            ));
            // The shipped contract also samples medium and large with an
            // unpinned caller, under keys of their own.
            let mut paired = vec![benchmark.clone()];
            if payload != Payload::Small {
                paired.push(format!("{}@unpinned/{}", payload.name(), variant.name()));
            }
            for key in paired {
                for pair in 0..20 {
                    let jitter = 1.0 + 0.004 * ((pair * 5 + k) % 7) as f64 / 7.0;
                    samples.push(RawSample {
                        tool: Tool::Paired,
                        benchmark: key.clone(),
                        iterations: 1.0,
                        total_ns: mean * jitter,
                    });
                }
            }
        }
    }
    let started_at_ms = 1_790_000_000_000 + index as i64 * 3_600_000;
    NewRun {
        commit: format!("{:040x}", 0xabc000 + index),
        branch: Some("main".into()),
        base_commit: None,
        pr_number: None,
        dirty: false,
        quick: false,
        machine,
        started_at_ms,
        finished_at_ms: started_at_ms + 600_000,
        notes: Vec::new(),
        measurements,
        samples,
        profiles: Vec::new(),
    }
}
