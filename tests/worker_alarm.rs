//! A caller waiting for a long job sleeps through most of it: it is not
//! polled between the job's start and shortly before its predicted end, and
//! it still gets an answer at once when the job ends earlier than predicted.
//! (Its own test binary: the worker's learned cost of a byte is process-wide.)

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use perfwarden::chat::worker::{self, Placement, Tracing};

/// A future that records when it is polled.
struct PollLog<F> {
    inner: Pin<Box<F>>,
    polls: Arc<Mutex<Vec<Instant>>>,
}

impl<F: Future> Future for PollLog<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.lock().unwrap().push(Instant::now());
        self.inner.as_mut().poll(cx)
    }
}

/// Runs a job that sleeps `takes` for a request of `text_bytes`, and returns
/// when it was started, when its answer came, and when it was polled.
fn timed_job(
    runtime: &tokio::runtime::Runtime,
    text_bytes: usize,
    takes: Duration,
) -> (Instant, Instant, Vec<Instant>) {
    let polls = Arc::new(Mutex::new(Vec::new()));
    let job =
        worker::global()
            .unwrap()
            .run(Placement::worker(text_bytes), Tracing::Off, move || {
                std::thread::sleep(takes)
            });
    let logged = PollLog {
        inner: Box::pin(job),
        polls: polls.clone(),
    };
    let start = Instant::now();
    runtime.block_on(logged).unwrap();
    let answered = Instant::now();
    let polls = polls.lock().unwrap().clone();
    (start, answered, polls)
}

#[test]
fn a_long_jobs_caller_is_left_alone_until_shortly_before_the_predicted_end() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Teaches the worker that a byte takes about 40 µs.
    for _ in 0..3 {
        timed_job(&runtime, 1000, Duration::from_millis(40));
    }

    // Predicted 40 ms: the caller should sleep until about 36 ms.
    let (start, answered, polls) = timed_job(&runtime, 1000, Duration::from_millis(40));
    let quiet = polls
        .iter()
        .filter(|&&at| {
            at > start + Duration::from_millis(2) && at < start + Duration::from_millis(30)
        })
        .count();
    assert_eq!(
        quiet,
        0,
        "polled {quiet} times mid-job ({} in all)",
        polls.len()
    );
    assert!(answered >= start + Duration::from_millis(40));

    // Predicted 40 ms, done in 2: the worker's answer wakes the caller, not
    // the alarm at ~36 ms.
    let (start, answered, _) = timed_job(&runtime, 1000, Duration::from_millis(2));
    let waited = answered - start;
    assert!(
        waited < Duration::from_millis(25),
        "answered after {waited:?}"
    );
}
