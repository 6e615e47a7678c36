//! What a waiting caller costs: the caller sleeps through its job and polls
//! only in a short window before the job's predicted end, so its thread's
//! CPU time is a small part of the job's, and a job that runs far past its
//! prediction does not keep it polling. (Its own test binary: the prediction
//! is process-wide, and no other test's jobs may move it.)
//!
//! Tier 2: CPU time depends on the scheduler; a failure is judged against
//! the host's measured noise (`tests/noise`, docs/testing.md).

mod common;
mod noise;

use std::time::Duration;

use perfwarden::chat::{
    ChatRequest, apply_mistral_chat_template, async_apply_mistral_chat_template,
};
use perfwarden::measure::adversarial;

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut spec = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut spec) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(spec.tv_sec as u64, spec.tv_nsec as u32)
}

/// The calling thread's CPU time over `calls` awaited requests, on a
/// current-thread runtime (the runtime runs on this thread).
fn caller_cpu(request: &ChatRequest, calls: usize) -> Duration {
    let tokenizer = common::tokenizer();
    let request = std::sync::Arc::new(request.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = thread_cpu();
    runtime.block_on(async {
        for _ in 0..calls {
            async_apply_mistral_chat_template(tokenizer, request.clone())
                .await
                .unwrap();
        }
    });
    thread_cpu() - before
}

fn sync_cpu(request: &ChatRequest, calls: usize) -> Duration {
    let before = thread_cpu();
    for _ in 0..calls {
        apply_mistral_chat_template(common::tokenizer(), request).unwrap();
    }
    thread_cpu() - before
}

#[test]
#[ignore = "tier 2, timing: CPU time of a waiting thread depends on the scheduler"]
fn a_waiting_caller_spends_a_small_part_of_the_jobs_cpu() {
    noise::judged(
        "caller_cpu::a_waiting_caller_spends_a_small_part_of_the_jobs_cpu",
        || {
            let large = ChatRequest::single_user_message("Large test content ".repeat(20000));
            // Teach the worker the request's cost.
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

#[test]
#[ignore = "tier 2, timing: CPU time of a waiting thread depends on the scheduler"]
fn a_job_far_slower_than_predicted_does_not_keep_its_caller_polling() {
    noise::judged(
        "caller_cpu::a_job_far_slower_than_predicted_does_not_keep_its_caller_polling",
        || {
            // Text of the contract's kind teaches the worker a few
            // nanoseconds a byte; one unbroken word costs several times that.
            let medium = ChatRequest::single_user_message("Test content ".repeat(5000));
            caller_cpu(&medium, 20);
            let word = adversarial::generate("unbroken_word", 256 * 1024).unwrap();
            let slow = ChatRequest::from_json(&word).unwrap();
            let working = sync_cpu(&slow, 1);
            let waiting = caller_cpu(&slow, 1);
            eprintln!("caller {waiting:?} while the job took {working:?} of CPU");
            assert!(
                waiting < working / 4,
                "the caller used {waiting:?} of CPU waiting for a job of {working:?}"
            );
        },
    );
}
