//! The paired sampler on the real wrapper records what the OS said about
//! every batch: the worker thread it hands the medium payload to is found
//! and watched beside the sampling thread, each CPU is probed before each
//! pair, and the run sums up to a noise score. Presence and structure only:
//! the figures themselves depend on the host (docs/methodology.md).

mod common;

use perfwarden::judge::contract::Variants;
use perfwarden::measure::batch_noise::{SamplingNoise, Side};
use perfwarden::measure::payload::{Payload, Variant};
use perfwarden::measure::subject::ChatTemplate;
use perfwarden::metric::{MeasureContext, wall_clock};

#[test]
fn each_batch_of_the_real_wrapper_has_its_environment() {
    let context = MeasureContext {
        subject: Box::leak(Box::new(ChatTemplate::new(common::tokenizer()))),
        quick: true,
        child: None,
    };
    let request = Box::leak(Box::new(Payload::Medium.request()));
    let variants = Variants::Compare {
        baseline: Variant::Sync,
        candidate: Variant::Async,
    };
    let plan = perfwarden::measure::paired::SamplingPlan::for_mode(true);
    let samples = wall_clock::measure(&context, plan, &variants, request);
    let pairs = samples.judged.len();
    let log = &samples.environment;
    assert_eq!(log.batches.len(), 2 * pairs);
    let cpus = perfwarden::affinity::allowed_cpus();
    if cfg!(not(target_os = "linux")) {
        return;
    }
    assert_eq!(log.probes.len(), pairs * cpus.len());
    for (pair, batches) in log.batches.chunks(2).enumerate() {
        assert!(batches.iter().all(|b| b.pair == pair));
        let sides: Vec<Side> = batches.iter().map(|b| b.side).collect();
        assert!(sides.contains(&Side::Baseline) && sides.contains(&Side::Candidate));
        for b in batches {
            assert!(b.sampler_involuntary_switches.is_some(), "{b:?}");
            // The medium payload always goes to the worker: it was found.
            assert!(b.worker_involuntary_switches.is_some(), "{b:?}");
            assert!(b.worker_cpu.is_some(), "{b:?}");
        }
    }
    let noise = SamplingNoise::summarize([log], 0.0).unwrap();
    assert_eq!(noise.batches, 2 * pairs);
    assert!(
        noise.score >= 0.0 && noise.slowest_cpu.is_some(),
        "{noise:?}"
    );
    eprintln!("environment while sampling: {noise}");
}
