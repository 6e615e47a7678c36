//! The executor's counters are exact when callers on several threads race
//! for the inline path and the worker at once. (Its own test binary: the
//! counters are process-wide.)

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use perfwarden::chat::worker::{self, Placement, Tracing};
use perfwarden::chat::{ChatRequest, async_apply_mistral_chat_template};

#[test]
fn racing_callers_are_each_counted_once() {
    let tokenizer = common::tokenizer();
    let small = Arc::new(ChatRequest::single_user_message("Hello ".repeat(50)));
    let medium = Arc::new(ChatRequest::single_user_message(
        "Test content ".repeat(400),
    ));
    const THREADS: u64 = 4;
    const CALLS: u64 = 1500;
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (small, medium) = (small.clone(), medium.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    for call in 0..CALLS {
                        // Every tenth call of two threads keeps the worker busy,
                        // so the others find it idle at some times and not at others.
                        let request = if thread < 2 && call % 10 == 0 {
                            medium.clone()
                        } else {
                            small.clone()
                        };
                        async_apply_mistral_chat_template(tokenizer, request)
                            .await
                            .unwrap();
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // The worker lets go of a job (queue_depth) only after sending its
    // answer, so the callers may finish first: wait for it, with no limit.
    while worker::stats().queue_depth != 0 {
        std::thread::yield_now();
    }
    let stats = worker::stats();
    let total = THREADS * CALLS;
    assert_eq!(stats.jobs_submitted, total, "{stats:?}");
    assert_eq!(stats.jobs_completed, total, "{stats:?}");
    assert_eq!(stats.max_concurrent_jobs, 1, "{stats:?}");
    // Which path each racing call took is the scheduler's choice (usually
    // some of each); that a small call takes each path, and is counted once
    // on it, is shown without a race: inline on an idle worker, queued
    // behind a job that holds the worker.
    eprintln!("{} of {total} racing calls ran inline", stats.jobs_inline);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(async_apply_mistral_chat_template(tokenizer, small.clone()))
        .unwrap();
    let after_inline = worker::stats();
    assert_eq!(after_inline.jobs_inline, stats.jobs_inline + 1);
    assert_eq!(after_inline.jobs_completed, total + 1);

    let (started, has_started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(
                worker::global()
                    .unwrap()
                    .run(Placement::Worker, Tracing::Off, move || {
                        started.send(()).unwrap();
                        released.recv().unwrap();
                    }),
            )
            .unwrap();
    });
    has_started.recv().unwrap();
    runtime.block_on(async {
        let mut call = std::pin::pin!(async_apply_mistral_chat_template(tokenizer, small));
        // One poll places it: the worker holds the token, so it is queued.
        let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        assert!(
            first.is_pending(),
            "a small call ran while a job held the worker"
        );
        release.send(()).unwrap();
        call.await.unwrap();
    });
    holder.join().unwrap();
    let stats = worker::stats();
    assert_eq!(stats.jobs_inline, after_inline.jobs_inline, "{stats:?}");
    assert_eq!(stats.jobs_submitted, total + 3, "{stats:?}");
    assert_eq!(stats.jobs_completed, total + 3, "{stats:?}");
}
