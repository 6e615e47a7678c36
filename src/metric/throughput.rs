//! Throughput under load: [`CALLERS`] tasks on a multi-thread runtime call
//! the candidate back to back for a window, against one dedicated thread
//! calling the baseline back to back for as long. Windows alternate; each
//! pair gives the ratio of requests per second, judged on its median. The
//! candidate's 99th-percentile latency per window is kept beside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{CaseSamples, MeasureContext};
use crate::chat::ChatRequest;
use crate::judge::contract::Variants;
use crate::measure::payload::Variant;

/// Concurrent callers of the candidate.
pub const CALLERS: usize = 8;

fn windows(quick: bool) -> (usize, Duration) {
    if quick {
        (6, Duration::from_millis(120))
    } else {
        (20, Duration::from_millis(300))
    }
}

pub fn measure(
    context: &MeasureContext,
    variants: &Variants,
    request: &'static ChatRequest,
) -> CaseSamples {
    let (baseline, candidate) = super::wall_clock::compared(variants);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime builds");
    let (pairs, window) = windows(context.quick);
    let mut samples = CaseSamples::default();
    // A first window of each warms the worker and the caches.
    dedicated(context, baseline, request, window / 4);
    concurrent(context, &runtime, candidate, request, window / 4);
    for pair in 0..pairs {
        let mut run_candidate = || {
            let (rate, p99) = concurrent(context, &runtime, candidate, request, window);
            samples.judged.push(rate);
            samples.tail.push(p99);
        };
        if pair % 2 == 0 {
            run_candidate();
            samples
                .other
                .push(dedicated(context, baseline, request, window));
        } else {
            samples
                .other
                .push(dedicated(context, baseline, request, window));
            run_candidate();
        }
    }
    samples
}

/// Requests per second of one thread calling `variant` back to back.
fn dedicated(
    context: &MeasureContext,
    variant: Variant,
    request: &'static ChatRequest,
    window: Duration,
) -> f64 {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = super::wall_clock::current_thread_runtime();
                let start = Instant::now();
                let mut calls = 0usize;
                while start.elapsed() < window {
                    context.subject.batch(variant, request, &runtime, 1);
                    calls += 1;
                }
                calls as f64 / start.elapsed().as_secs_f64()
            })
            .join()
            .expect("the dedicated caller does not panic")
    })
}

/// Requests per second and the 99th-percentile latency (ns) of [`CALLERS`]
/// tasks calling `variant` back to back on `runtime`.
fn concurrent(
    context: &MeasureContext,
    runtime: &tokio::runtime::Runtime,
    variant: Variant,
    request: &'static ChatRequest,
    window: Duration,
) -> (f64, f64) {
    let completed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let subject = context.subject;
    let mut latencies: Vec<f64> = runtime.block_on(async {
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let completed = completed.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while start.elapsed() < window {
                        let began = Instant::now();
                        subject.call(variant, request).await;
                        latencies.push(began.elapsed().as_nanos() as f64);
                        completed.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for caller in callers {
            all.extend(caller.await.expect("a caller does not panic"));
        }
        all
    });
    let rate = completed.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies
        .get(((latencies.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0);
    (rate, p99)
}

#[cfg(test)]
mod tests {
    use super::super::CaseSamples;
    use super::super::Metric;
    use crate::judge::contract::Bound;
    use crate::judge::verdict::{Status, classify};

    #[test]
    fn the_ratio_of_rates_is_held_to_a_floor() {
        let dedicated: Vec<f64> = (0..20).map(|i| 500.0 + (i % 4) as f64).collect();
        let judged_at = |share: f64| {
            let samples = CaseSamples {
                judged: dedicated.iter().map(|d| d * share).collect(),
                other: dedicated.clone(),
                tail: vec![1e6; 20],
                environment: Default::default(),
            };
            Metric::Throughput.judge(&samples, 0.95).unwrap()
        };
        let near = judged_at(0.95);
        assert!((near.estimate - 0.95).abs() < 1e-9, "{near:?}");
        assert_eq!(classify(&near, Bound::AtLeast(0.9)), Status::Pass);
        assert_eq!(classify(&judged_at(0.6), Bound::AtLeast(0.9)), Status::Fail);
    }
}
