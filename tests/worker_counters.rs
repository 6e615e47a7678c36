//! The executor's counters are exact when callers on several threads race
//! for the inline path and the worker at once. (Its own test binary: the
//! counters are process-wide.)

mod common;

use std::sync::Arc;

use perfwarden::chat::worker;
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
    let stats = worker::stats();
    let total = THREADS * CALLS;
    assert_eq!(stats.jobs_submitted, total, "{stats:?}");
    assert_eq!(stats.jobs_completed, total, "{stats:?}");
    assert_eq!(stats.queue_depth, 0, "{stats:?}");
    assert_eq!(stats.max_concurrent_jobs, 1, "{stats:?}");
    // Some small calls ran inline, some waited behind a job on the worker.
    assert!(stats.jobs_inline > 0, "{stats:?}");
    assert!(stats.jobs_inline < total - 2 * CALLS / 10, "{stats:?}");
}
