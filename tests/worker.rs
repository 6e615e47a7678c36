//! `async_apply_mistral_chat_template`: same answers as the sync function, one
//! process-wide worker running jobs one at a time, panics and cancellation
//! handled, clear errors on bad use.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use perfwarden::chat::worker::{self, Tracing};
use perfwarden::chat::{
    ChatRequest, ChatTemplateError, apply_mistral_chat_template, async_apply_mistral_chat_template,
};

fn corpus_requests() -> Vec<(String, ChatRequest)> {
    common::corpus()
        .into_iter()
        .filter_map(|case| {
            ChatRequest::from_json(&case.request)
                .ok()
                .map(|r| (case.name, r))
        })
        .collect()
}

fn same_answers_on(runtime: tokio::runtime::Runtime) {
    let tokenizer = common::tokenizer();
    let requests = corpus_requests();
    assert!(requests.len() > 300);
    runtime.block_on(async {
        for (name, request) in requests {
            let expected = apply_mistral_chat_template(tokenizer, &request);
            let shared = Arc::new(request);
            let got = async_apply_mistral_chat_template(tokenizer, shared.clone()).await;
            assert_eq!(got, expected, "{name}");
            // Owned, from a spawned task.
            let owned = (*shared).clone();
            let spawned = tokio::spawn(async_apply_mistral_chat_template(tokenizer, owned));
            assert_eq!(spawned.await.unwrap(), expected, "{name} (spawned)");
        }
    });
}

#[test]
fn same_tokens_and_errors_as_sync_on_current_thread_runtime() {
    same_answers_on(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    );
}

#[test]
fn same_tokens_and_errors_as_sync_on_multi_thread_runtime() {
    same_answers_on(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
}

#[test]
fn one_executor_and_one_worker_thread_for_the_process() {
    let tokenizer = common::tokenizer();
    // The large payload: predicted far over the inline budget, so every
    // call goes to the worker.
    let request = Arc::new(ChatRequest::single_user_message(
        "Large test content ".repeat(20000),
    ));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let request = request.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let mut threads = Vec::new();
                    for _ in 0..5 {
                        let (_, trace) = worker::async_apply_mistral_chat_template_traced(
                            tokenizer,
                            request.clone(),
                            Tracing::On,
                        )
                        .await
                        .unwrap();
                        let trace = trace.expect("traced");
                        assert!(!trace.inline, "a 380 KB request must go to the worker");
                        threads.push(trace.thread);
                    }
                    threads
                })
            })
        })
        .collect();
    let mut threads: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    threads.dedup();
    assert_eq!(threads.len(), 1, "jobs ran on threads {threads:?}");
    assert_ne!(
        threads[0],
        worker::thread_tag(),
        "jobs must not run on the caller"
    );
    let stats = worker::stats();
    assert_eq!(stats.executors_created, 1, "{stats:?}");
    assert_eq!(stats.worker_threads_started, 1, "{stats:?}");
    assert_eq!(stats.max_concurrent_jobs, 1, "{stats:?}");
}

#[test]
fn jobs_run_one_at_a_time_in_submission_order() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let traces = runtime.block_on(async {
        // Spawned tasks are first polled, and so submit, in spawn order.
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let order = order.clone();
                tokio::spawn(async move {
                    worker::global()
                        .unwrap()
                        .run(Tracing::On, move || {
                            std::thread::sleep(Duration::from_micros(300));
                            order.lock().unwrap().push(i);
                        })
                        .await
                        .unwrap()
                        .1
                        .expect("traced")
                })
            })
            .collect();
        let mut traces = Vec::new();
        for handle in handles {
            traces.push(handle.await.unwrap());
        }
        traces
    });
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    for pair in traces.windows(2) {
        let (_, first_end) = pair[0].span;
        let (second_start, _) = pair[1].span;
        assert!(first_end <= second_start, "two jobs overlapped");
        assert_eq!(pair[0].thread, pair[1].thread);
    }
}

#[test]
fn a_panicking_job_is_an_error_and_the_worker_goes_on() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let executor = worker::global().unwrap();
        let error = executor
            .run(Tracing::Off, || -> u32 { panic!("boom in a job") })
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ChatTemplateError::JobPanicked("boom in a job".into())
        );
        assert!(error.to_string().contains("boom in a job"));
        let (value, _) = executor.run(Tracing::Off, || 7).await.unwrap();
        assert_eq!(value, 7);
    });
    assert_eq!(worker::stats().worker_threads_started, 1);
}

#[test]
fn the_worker_moves_its_stack_between_runs_of_jobs() {
    // The worker draws a new stack depth every few dozen jobs, so one depth
    // cannot bias every job of a process.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let depths: std::collections::BTreeSet<usize> = runtime.block_on(async {
        let executor = worker::global().unwrap();
        let mut depths = std::collections::BTreeSet::new();
        for _ in 0..400 {
            let (depth, _) = executor
                .run(Tracing::Off, || {
                    let local = 0u8;
                    std::hint::black_box(&local) as *const u8 as usize
                })
                .await
                .unwrap();
            depths.insert(depth);
        }
        depths
    });
    // 400 jobs span at least six draws from 256 depths.
    assert!(depths.len() >= 3, "{depths:?}");
}

#[test]
fn a_dropped_caller_neither_wedges_nor_leaks() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let executor = worker::global().unwrap();
        // The worker stays busy until this test lets it go, however slow
        // the host: no guess at how long anything takes.
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn(executor.run(Tracing::Off, move || {
            started.send(()).unwrap();
            released.recv().unwrap();
        }));
        has_started.await.unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let captured = ran.clone();
        let cancelled = executor.run(Tracing::Off, move || {
            captured.store(true, Ordering::SeqCst);
        });
        // Queued behind the held job, so it cannot finish: the timeout
        // fires and the future is dropped.
        assert!(
            tokio::time::timeout(Duration::from_millis(5), cancelled)
                .await
                .is_err()
        );
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        // The worker skips the abandoned job and serves the next one.
        let (after, _) = executor.run(Tracing::Off, || "after").await.unwrap();
        assert_eq!(after, "after");
        assert!(!ran.load(Ordering::SeqCst), "an abandoned job ran");
        assert_eq!(Arc::strong_count(&ran), 1, "the abandoned job leaked");
    });
    assert!(worker::stats().jobs_cancelled >= 1);
}

#[test]
fn a_runtime_used_before_on_this_thread_does_not_count_later() {
    let tokenizer = common::tokenizer();
    // The check remembers the runtime's waker, not the thread: once the
    // runtime is gone, a poller without one still gets the error.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let request = ChatRequest::single_user_message("hi");
        assert!(
            runtime
                .block_on(async_apply_mistral_chat_template(
                    tokenizer,
                    request.clone()
                ))
                .is_ok()
        );
        drop(runtime);
        let mut future = std::pin::pin!(async_apply_mistral_chat_template(tokenizer, request));
        let mut context = Context::from_waker(Waker::noop());
        assert!(matches!(
            future.as_mut().poll(&mut context),
            Poll::Ready(Err(ChatTemplateError::NoRuntime))
        ));
    })
    .join()
    .unwrap();
}

#[test]
fn outside_a_runtime_it_is_a_clear_error() {
    let request = ChatRequest::single_user_message("hi");
    let mut future = std::pin::pin!(async_apply_mistral_chat_template(
        common::tokenizer(),
        request
    ));
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(Err(error)) => {
            assert_eq!(error, ChatTemplateError::NoRuntime);
            assert!(error.to_string().contains("tokio runtime"));
        }
        other => panic!("expected an immediate error, got {other:?}"),
    }
}

#[test]
fn the_inline_decision_counts_every_byte_the_template_may_process() {
    // 3 MB of empty arrays and 1 MB of long integers in tool arguments hold
    // almost no text, but all of it is written out and tokenized.
    let arrays = format!("[{}[]]", "[], ".repeat(750_000));
    let integers = format!("[{}1]", format!("{}, ", "9".repeat(4000)).repeat(250));
    for arguments in [arrays, integers] {
        let text = format!(
            r#"{{"messages":[{{"role":"user","content":"q"}},{{"role":"assistant","tool_calls":[{{"id":"abcDEF123","function":{{"name":"f","arguments":{{"a":{arguments}}}}}}}]}},{{"role":"tool","tool_call_id":"abcDEF123","content":"r"}}]}}"#
        );
        let request = ChatRequest::from_json(&text).unwrap();
        assert!(
            request.work_bytes() >= arguments.len(),
            "{} estimated for {} bytes of arguments",
            request.work_bytes(),
            arguments.len()
        );
        assert!(!worker::fits_inline(&request, worker::INLINE_BUDGET));
    }
    let small = ChatRequest::single_user_message("Hello ".repeat(50));
    assert!(worker::fits_inline(&small, worker::INLINE_BUDGET));
    assert!(
        !worker::fits_inline(&small, Duration::ZERO),
        "a budget of 0 sends everything to the worker"
    );
}
