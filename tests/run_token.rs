//! The run token biased toward the thread that runs inline: jobs still never
//! overlap when other threads take the token from it, and an owner that
//! queues a job gives the bias up without the revoking system call. Its own
//! test binary, so no other test's jobs break the streaks it needs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use perfwarden::chat::run_token::{self, BIAS_AFTER_RUNS};
use perfwarden::chat::worker::{self, Placement, Tracing};

static RUNNING: AtomicBool = AtomicBool::new(false);
static OVERLAPS: AtomicU64 = AtomicU64::new(0);

/// A job that counts it when another job is running.
fn guarded_job(length: Duration) {
    if RUNNING.swap(true, Ordering::SeqCst) {
        OVERLAPS.fetch_add(1, Ordering::SeqCst);
    }
    let until = Instant::now() + length;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    RUNNING.store(false, Ordering::SeqCst);
}

const SHORT_JOB: Duration = Duration::from_micros(2);
/// Longer than a revocation (12–30 µs here), so a revoker that did not wait
/// for the owner would run its job inside one of these.
const OWNER_JOB: Duration = Duration::from_micros(100);

/// The owner's next job: short while it builds a streak, long once biased.
fn owner_job() -> Duration {
    if run_token::is_biased_to_this_thread() {
        OWNER_JOB
    } else {
        SHORT_JOB
    }
}

async fn run(placement: Placement, length: Duration) {
    worker::global()
        .unwrap()
        .run(placement, Tracing::Off, move || guarded_job(length))
        .await
        .unwrap();
}

/// Runs inline jobs until the token is biased toward this thread: after
/// the streak, once the `membarrier` registration has finished, however long
/// that takes on a busy host.
async fn run_until_biased() {
    let mut runs = 0u64;
    while !run_token::is_biased_to_this_thread() {
        assert!(
            !run_token::bias_unavailable(),
            "not biased after {runs} inline runs in a row: the bias needs the membarrier system call, which is unavailable"
        );
        run(Placement::InlineWhenIdle, SHORT_JOB).await;
        runs += 1;
    }
    assert!(runs >= BIAS_AFTER_RUNS, "biased after only {runs} runs");
}

#[test]
fn a_biased_token_keeps_jobs_apart_and_is_given_up_for_free() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run_until_biased());

    // The owner queues a job: it drops its bias itself, no system call.
    let revocations = worker::stats().bias_revocations;
    runtime.block_on(run(Placement::Worker, SHORT_JOB));
    assert!(!run_token::is_biased_to_this_thread());
    assert_eq!(worker::stats().bias_revocations, revocations);

    // Another thread takes the token, in bursts, while this one runs inline
    // jobs back to back and regains the bias between the bursts. Each burst
    // waits for the owner to say it is biased again (a new bias, raised once
    // per regain), so each one must revoke a bias: only another thread's
    // take ends one while the owner runs inline jobs alone.
    const BURSTS: u64 = 5;
    let revocations = worker::stats().bias_revocations;
    let done = AtomicBool::new(false);
    let biased_again = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let other = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            for _ in 0..BURSTS {
                while !biased_again.swap(false, Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                other.block_on(async {
                    for i in 0..200 {
                        let placement = if i % 2 == 0 {
                            Placement::InlineWhenIdle
                        } else {
                            Placement::Worker
                        };
                        run(placement, SHORT_JOB).await;
                    }
                });
            }
            done.store(true, Ordering::SeqCst);
        });
        runtime.block_on(async {
            let mut was_biased = false;
            while !done.load(Ordering::SeqCst) {
                run(Placement::InlineWhenIdle, owner_job()).await;
                let biased = run_token::is_biased_to_this_thread();
                if biased && !was_biased {
                    biased_again.store(true, Ordering::SeqCst);
                }
                was_biased = biased;
            }
        });
    });
    assert_eq!(OVERLAPS.load(Ordering::SeqCst), 0, "jobs overlapped");
    // Each burst followed a new bias of the owner and ended it.
    assert!(
        worker::stats().bias_revocations >= revocations + BURSTS,
        "the other thread revoked the bias {} times",
        worker::stats().bias_revocations - revocations
    );
}
