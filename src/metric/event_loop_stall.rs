//! Event-loop stalls: how late a 100 µs ticker on the caller's runtime is
//! while requests run through a variant. A thread sets the tick and wakes a
//! task on the caller's current-thread runtime; the task's delay from the
//! oldest unserved tick to its poll is time the event loop could not run
//! anything else. Each round runs calls for 20 ms; its figure is the
//! longest delay seen, and the case is judged on the median round with the
//! sign test's interval, so one preemption of the host does not decide it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{CaseSamples, Judged, MeasureContext};
use crate::chat::ChatRequest;
use crate::judge::contract::Variants;
use crate::judge::stats;
use crate::measure::payload::Variant;

const TICK: Duration = Duration::from_micros(100);
/// How long one round's calls run.
const ROUND: Duration = Duration::from_millis(20);

fn rounds(quick: bool) -> usize {
    if quick { 8 } else { 30 }
}

pub fn measure(
    context: &MeasureContext,
    variants: &Variants,
    request: &'static ChatRequest,
) -> CaseSamples {
    let (judged, reference) = match variants {
        Variants::Bound { variant, reference } => (*variant, *reference),
        Variants::Compare {
            baseline,
            candidate,
        } => (*candidate, Some(*baseline)),
    };
    let mut samples = CaseSamples::default();
    for round in 0..rounds(context.quick) {
        // Alternate which side goes first, as the paired sampler does.
        let mut sides = [Some(judged), reference];
        if round % 2 == 1 {
            sides.reverse();
        }
        for variant in sides.into_iter().flatten() {
            let late = longest_delay(context, variant, request);
            if variant == judged && samples.judged.len() == round {
                samples.judged.push(late);
            } else {
                samples.other.push(late);
            }
        }
    }
    samples
}

/// One round: the longest ticker delay, in ns, while calls run one after
/// another for [`ROUND`]. The round is timed, not counted from one call's
/// time: a first call that went to the worker took 260 µs where the later
/// inline ones take 0.5 µs, and a round counted from it ended before the
/// first tick, reading 0 ns.
fn longest_delay(context: &MeasureContext, variant: Variant, request: &'static ChatRequest) -> f64 {
    let runtime = super::wall_clock::current_thread_runtime();
    let epoch = Instant::now();
    let since_epoch = move || epoch.elapsed().as_nanos() as u64 + 1;
    // 0: no tick waits; otherwise when the oldest unserved tick was set.
    let pending = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(tokio::sync::Notify::new());
    let ticker = {
        let (pending, stop, wake) = (pending.clone(), stop.clone(), wake.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                let _ =
                    pending.compare_exchange(0, since_epoch(), Ordering::AcqRel, Ordering::Relaxed);
                wake.notify_one();
            }
        })
    };
    let longest = runtime.block_on(async {
        let watcher = {
            let (pending, stop, wake) = (pending.clone(), stop.clone(), wake.clone());
            tokio::spawn(async move {
                let mut longest = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    wake.notified().await;
                    let set = pending.swap(0, Ordering::AcqRel);
                    if set != 0 {
                        longest = longest.max(since_epoch().saturating_sub(set));
                    }
                }
                longest
            })
        };
        // Let the watcher start waiting before the calls begin.
        tokio::task::yield_now().await;
        let end = Instant::now() + ROUND;
        loop {
            context.subject.call(variant, request).await;
            // Each call stands for one request of a server, a task of its
            // own: the runtime may run others between them.
            tokio::task::yield_now().await;
            if Instant::now() >= end {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        wake.notify_one();
        watcher.await.unwrap_or(0)
    });
    let _ = ticker.join();
    longest as f64
}

/// The median round's longest delay, with the sign test's interval.
pub fn judge(samples: &CaseSamples, confidence: f64) -> Option<Judged> {
    stats::median_interval(&samples.judged, confidence).map(|i| Judged {
        estimate: i.estimate,
        low: i.low,
        high: i.high,
        samples: i.pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::contract::Bound;
    use crate::judge::verdict::{Status, classify};

    #[test]
    fn the_median_round_decides_not_one_preempted_round() {
        let mut rounds = vec![200_000.0; 30];
        rounds[3] = 40e6; // the host took the CPU away once for 40 ms
        let judged = judge(
            &CaseSamples {
                judged: rounds,
                ..CaseSamples::default()
            },
            0.95,
        )
        .unwrap();
        assert_eq!(judged.estimate, 200_000.0);
        assert_eq!(classify(&judged, Bound::AtMost(1e6)), Status::Pass);
        let blocked = judge(
            &CaseSamples {
                judged: vec![3e6; 30],
                ..CaseSamples::default()
            },
            0.95,
        )
        .unwrap();
        assert_eq!(classify(&blocked, Bound::AtMost(1e6)), Status::Fail);
    }
}
