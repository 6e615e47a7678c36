//! The executor's counters are exact when callers on several threads race
//! for the inline path and the worker at once. (Its own test binary: the
//! counters are process-wide.)

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use perfwarden::chat::worker::{self, Tracing};
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
    // Which path each racing call took depends on what the wrapper had
    // timed so far; that each path counts a call once is shown without a
    // race: inline, inline beside a busy worker, and an inline run that
    // stops before a long word and is finished by the worker.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(async_apply_mistral_chat_template(tokenizer, small.clone()))
        .unwrap();
    let after_inline = worker::stats();
    assert_eq!(after_inline.jobs_inline, stats.jobs_inline + 1);
    assert_eq!(after_inline.jobs_completed, total + 1);

    // Over the tiny size, so it has a deadline; predicted far under the
    // budget from the calls above, so it starts inline.
    let long_word = ChatRequest::single_user_message(format!(
        "{}{}",
        "Hello ".repeat(500),
        "x".repeat(perfwarden::chat::tokenizer::LONG_WORD_BYTES + 1)
    ));
    let expected = perfwarden::chat::apply_mistral_chat_template(tokenizer, &long_word).unwrap();
    let tokens = runtime
        .block_on(async_apply_mistral_chat_template(tokenizer, long_word))
        .unwrap();
    assert_eq!(tokens, expected);
    while worker::stats().queue_depth != 0 {
        std::thread::yield_now();
    }
    let continued = worker::stats();
    assert_eq!(
        continued.jobs_continued,
        stats.jobs_continued + 1,
        "{continued:?}"
    );
    assert_eq!(
        continued.jobs_inline, after_inline.jobs_inline,
        "{continued:?}"
    );
    assert_eq!(continued.jobs_submitted, total + 2, "{continued:?}");
    assert_eq!(continued.jobs_completed, total + 2, "{continued:?}");

    let (started, has_started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(worker::global().unwrap().run(Tracing::Off, move || {
                started.send(()).unwrap();
                released.recv().unwrap();
            }))
            .unwrap();
    });
    has_started.recv().unwrap();
    runtime.block_on(async {
        let mut call = std::pin::pin!(async_apply_mistral_chat_template(tokenizer, small));
        // A small call runs on its caller, as the sync function would, even
        // while the worker is busy: one poll finishes it.
        let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        assert!(first.is_ready(), "a small call waited for the worker's job");
        release.send(()).unwrap();
    });
    holder.join().unwrap();
    let stats = worker::stats();
    assert_eq!(stats.jobs_inline, continued.jobs_inline + 1, "{stats:?}");
    assert_eq!(stats.jobs_submitted, total + 4, "{stats:?}");
    assert_eq!(stats.jobs_completed, total + 4, "{stats:?}");
}
