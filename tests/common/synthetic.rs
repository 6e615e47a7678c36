//! Made-up runs with every figure a real run has, for exercising storage,
//! rendering and publishing at scale without measuring. Test support: the
//! integration tests and the dashboard-scale benchmark use them; nothing in
//! perfwarden does.

use perfwarden::measure::batch_noise::{
    BatchEnvironment, BatchLog, SamplingNoise, Side, SpeedProbe,
};
use perfwarden::measure::noise::{HOST_BENCHMARK, HostNoise};
use perfwarden::measure::payload::{Payload, Variant, benchmark_id};
use perfwarden::store::{Machine, Measurement, NewRun, RawSample, SeriesEnvironment, Tool};

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
    // The OS's view of the medium payload's 20 pairs: CPU 1 probes up to
    // 4% slower than CPU 0, the worker preempted now and then.
    let mut log = BatchLog::default();
    for pair in 0..20 {
        for side in [Side::Baseline, Side::Candidate] {
            log.batches.push(BatchEnvironment {
                pair,
                side,
                sampler_cpu: Some((pair / 2 % 2) as u32),
                worker_cpu: Some((pair / 2 % 2) as u32 ^ 1),
                sampler_involuntary_switches: Some(0),
                sampler_migrations: Some(0),
                worker_involuntary_switches: Some(u64::from((pair + index).is_multiple_of(7))),
                worker_migrations: Some(1),
            });
        }
        for cpu in 0..2 {
            log.probes.push(SpeedProbe {
                pair,
                cpu,
                micros: 30.0 * (1.0 + 0.04 * f64::from(cpu) * ((pair + index) % 3) as f64 / 2.0),
            });
        }
    }
    let host = HostNoise {
        seconds: 40.0,
        foreign: 0.03,
        steal: 0.002 * (index % 3) as f64,
        load_per_cpu: 1.0,
        involuntary_switches_per_second: 20.0,
    };
    let sampling = SamplingNoise::summarize([&log], host.steal).expect("batches were made");
    for (metric, value, unit) in host.figures().into_iter().chain(sampling.figures()) {
        measurements.push(Measurement {
            tool: Tool::Paired,
            benchmark: HOST_BENCHMARK.into(),
            metric: metric.into(),
            value: Some(value),
            unit: unit.into(),
        });
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
        environment: vec![SeriesEnvironment {
            benchmark: benchmark_id(Payload::Medium, Variant::Async),
            log,
        }],
    }
}
