//! The noisy-host policy of tier 2 (docs/testing.md): a timing test runs its
//! body through [`judged`], which measures the host over the test. A test
//! that passes is a pass. A test that fails on a host that was quiet by the
//! thresholds below fails. A test that fails on a host that was measurably
//! too noisy is reported as `tier 2 inconclusive: <measured reason>` and does
//! not fail the build. There is no retry.
//!
//! What is measured (`perfwarden::measure::noise`, the same measurement a
//! report makes of its host), over the test alone, on the CPUs the test may
//! use (`/proc/stat`, one line per CPU, in clock ticks):
//! - steal: time the hypervisor gave the CPUs to another guest;
//! - foreign CPU: busy time of those CPUs minus the CPU time of this test's
//!   own process tree (this process and every descendant, alive or reaped,
//!   from `/proc/<pid>/stat`), so the test's own work never counts as noise.
//!
//! Also reported, not judged: the 1-minute load average per CPU (it counts the
//! test's own threads) and the test's involuntary context switches.

#![allow(dead_code)] // each test binary uses its own part

use std::io::Write;
use std::panic::AssertUnwindSafe;

use perfwarden::measure::noise::own_tree_ticks;
pub use perfwarden::measure::noise::{FOREIGN_CPU_MAX, HostNoise, STEAL_MAX, Snapshot};

/// Runs a tier-2 timing test's body and judges a failure against the noise
/// measured over it (module documentation).
pub fn judged(test: &str, body: impl FnOnce()) {
    judged_since(Snapshot::take(), test, body);
}

/// As [`judged`], with the host measured from `before`: for a body that
/// asserts on what was measured before it (taken, then, before that
/// measuring began), so that the noise judged is the measuring's.
pub fn judged_since(before: Snapshot, test: &str, body: impl FnOnce()) {
    let Err(failure) = std::panic::catch_unwind(AssertUnwindSafe(body)) else {
        return;
    };
    let noise = HostNoise::between(&before, &Snapshot::take());
    match judge_failure(test, noise.as_ref(), failure) {
        Ok(inconclusive) => report(&inconclusive),
        Err((stands, failure)) => {
            report(&stands);
            std::panic::resume_unwind(failure);
        }
    }
}

/// A failure that stands: the line saying so, and the failure to raise.
pub type Stands = (String, Box<dyn std::any::Any + Send>);

/// The policy for one failed test: `Ok` with the inconclusive line when
/// `noise` is over a threshold, otherwise the failure back, to be raised.
/// Nothing measured (no `/proc/stat`) excuses nothing.
pub fn judge_failure(
    test: &str,
    noise: Option<&HostNoise>,
    failure: Box<dyn std::any::Any + Send>,
) -> Result<String, Stands> {
    let thresholds = format!(
        "foreign CPU {:.0}%, steal {:.0}%",
        FOREIGN_CPU_MAX * 100.0,
        STEAL_MAX * 100.0
    );
    let measured = noise.map_or("nothing (no /proc/stat)".to_owned(), ToString::to_string);
    match noise.and_then(HostNoise::too_noisy) {
        Some(reason) => Ok(format!(
            "tier 2 inconclusive: {test}: {reason} (thresholds: {thresholds}); measured {measured}; the failure was:\n    {}",
            panic_message(failure.as_ref())
        )),
        None => Err((
            format!(
                "tier 2 FAILED on a quiet host: {test}: measured {measured}, under the thresholds ({thresholds}), so the failure stands"
            ),
            failure,
        )),
    }
}

/// A measurement with these shares of the CPUs' time, for the policy's own
/// tests (`tests/noise_policy.rs`).
pub fn with_shares(foreign: f64, steal: f64) -> HostNoise {
    HostNoise {
        seconds: 1.0,
        foreign,
        steal,
        load_per_cpu: 0.0,
        involuntary_switches_per_second: 0.0,
    }
}

/// The test's own CPU time (its whole process tree's) while `work` runs,
/// in clock ticks.
pub fn own_ticks_between(work: impl FnOnce()) -> u64 {
    let before = own_tree_ticks();
    work();
    own_tree_ticks().saturating_sub(before)
}

/// Written past the test harness's capture, so it shows in the run's output
/// even when the test passes; also appended to `$PERFWARDEN_TIER2_REPORT`
/// when set (`.ci/run` lists it at the end).
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "\n{line}\n");
    if let Some(path) = std::env::var_os("PERFWARDEN_TIER2_REPORT")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}

fn panic_message(failure: &(dyn std::any::Any + Send)) -> String {
    let text = failure
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| failure.downcast_ref::<&str>().copied())
        .unwrap_or("(a panic without a message)");
    // The whole message, indented, so a multi-line one (a self-test's matrix)
    // stays readable under the judgement's line.
    text.trim_end().replace('\n', "\n    ")
}
