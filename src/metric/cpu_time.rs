//! CPU time per call: the process's CPU time over all its threads (the
//! caller's, the worker's, any spinning), taken around the same alternating
//! batches as the wall clock, so a wrapper that buys speed with a second
//! busy CPU shows what it spends.

use std::time::Duration;

use super::{CaseSamples, MeasureContext};
use crate::chat::ChatRequest;
use crate::judge::contract::Variants;
use crate::measure::paired;

/// Time after each batch that is counted to it: a worker that polls its
/// queue for a while after its last job (`chat::worker::WORKER_SPIN`) is
/// charged to the batch that left it running, not to the next one.
const SETTLE: Duration = Duration::from_millis(3);

/// CPU time of every thread of this process (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; the clock id is a constant.
    let status = unsafe { libc::clock_gettime(clock, &mut now) };
    assert_eq!(
        status, 0,
        "the process and thread CPU clocks are always available on Linux"
    );
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

pub fn measure(
    context: &MeasureContext,
    plan: paired::SamplingPlan,
    variants: &Variants,
    request: &'static ChatRequest,
) -> CaseSamples {
    let (baseline, candidate) = super::wall_clock::compared(variants);
    let runtime = super::wall_clock::current_thread_runtime();
    let on_cpu = |variant| {
        let runtime = &runtime;
        move |n| {
            let start = process_cpu_time();
            context.subject.batch(variant, request, runtime, n);
            std::thread::sleep(SETTLE);
            process_cpu_time() - start
        }
    };
    let plan = context.plan_watching(plan, &[baseline, candidate], request, &runtime);
    let (mut b, mut c) = (on_cpu(baseline), on_cpu(candidate));
    let samples = paired::sample(&mut b, &mut c, plan, None);
    CaseSamples {
        judged: samples.candidate_ns,
        other: samples.baseline_ns,
        tail: Vec::new(),
        environment: samples.environment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU time of the calling thread alone.
    fn thread_cpu_time() -> Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write; the clock id is a constant.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }

    #[test]
    fn the_clock_counts_work_on_other_threads() {
        let before = process_cpu_time();
        // Another thread works until it has itself used 20 ms of CPU, however
        // long that takes on a busy host.
        std::thread::spawn(|| {
            let mut x = 0u64;
            while thread_cpu_time() < Duration::from_millis(20) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        })
        .join()
        .unwrap();
        assert!(process_cpu_time() - before >= Duration::from_millis(20));
    }

    #[test]
    fn a_second_busy_cpu_is_judged_as_cost() {
        use super::super::Metric;
        use crate::judge::contract::Bound;
        use crate::judge::verdict::{Status, classify};
        // The async side keeps the caller spinning while the worker works:
        // twice the CPU of the sync call, whatever the wall clock says.
        let sync: Vec<f64> = (0..20).map(|i| 2e6 + (i % 3) as f64 * 1e4).collect();
        let samples = CaseSamples {
            judged: sync.iter().map(|s| s * 2.0).collect(),
            other: sync,
            tail: Vec::new(),
            environment: Default::default(),
        };
        let judged = Metric::CpuTime.judge(&samples, 0.95).unwrap();
        assert!((judged.estimate - 1.0).abs() < 1e-9, "{judged:?}");
        assert_eq!(classify(&judged, Bound::AtMost(0.2)), Status::Fail);
    }
}
