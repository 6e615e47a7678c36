//! What a waiting caller costs: it sleeps through its job, so its thread's
//! CPU time is a small part of the job's. (Its own test binary, so that no
//! other test's threads compete for the CPUs.)
//!
//! Tier 2: CPU time depends on the scheduler; a failure is judged against
//! the host's measured noise (`tests/noise`, docs/testing.md).

mod common;
mod noise;

use std::time::Duration;

use perfwarden::chat::{
    ChatRequest, apply_mistral_chat_template, async_apply_mistral_chat_template,
};
use perfwarden::metric::cpu_time::thread_cpu_time;

/// The calling thread's CPU time over `calls` awaited requests, on a
/// current-thread runtime (the runtime runs on this thread).
fn caller_cpu(request: &ChatRequest, calls: usize) -> Duration {
    let tokenizer = common::tokenizer();
    let request = std::sync::Arc::new(request.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = thread_cpu_time();
    runtime.block_on(async {
        for _ in 0..calls {
            async_apply_mistral_chat_template(tokenizer, request.clone())
                .await
                .unwrap();
        }
    });
    thread_cpu_time() - before
}

fn sync_cpu(request: &ChatRequest, calls: usize) -> Duration {
    let before = thread_cpu_time();
    for _ in 0..calls {
        apply_mistral_chat_template(common::tokenizer(), request).unwrap();
    }
    thread_cpu_time() - before
}

#[test]
#[ignore = "tier 2, timing: CPU time of a waiting thread depends on the scheduler"]
fn a_waiting_caller_spends_a_small_part_of_the_jobs_cpu() {
    noise::judged(
        "caller_cpu::a_waiting_caller_spends_a_small_part_of_the_jobs_cpu",
        || {
            let large = ChatRequest::single_user_message("Large test content ".repeat(20000));
            // Start the worker and warm the tokenizer's cache.
            caller_cpu(&large, 5);
            let calls = 20;
            let waiting = caller_cpu(&large, calls);
            let working = sync_cpu(&large, calls);
            eprintln!("caller {waiting:?}, the same calls sync {working:?}");
            assert!(
                waiting < working / 4,
                "the waiting caller used {waiting:?} of CPU over {calls} large requests, \
                 against {working:?} for the requests themselves"
            );
        },
    );
}
