//! The worker survives what a caller's types do to it: a request or a
//! tokenizer whose `Drop` panics on a cancelled job, and a wrapper call made
//! from inside a job (through a `Borrow` implementation), which would wait
//! for itself. (Its own test binary: the counters are process-wide.)

mod common;

use std::borrow::Borrow;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use perfwarden::chat::worker::{self, Tracing};
use perfwarden::chat::{
    ChatRequest, ChatTemplateError, MistralTokenizer, apply_mistral_chat_template,
    async_apply_mistral_chat_template,
};

/// The tests here share the worker and assert on it: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A request that goes to the worker whatever the wrapper has timed so far:
/// an inline start stops at once, before its first word, which is longer
/// than an inline run may encode.
fn large_request() -> ChatRequest {
    ChatRequest::single_user_message(format!(
        "{} {}",
        "x".repeat(perfwarden::chat::tokenizer::LONG_WORD_BYTES + 1),
        "Large test content ".repeat(2000)
    ))
}

/// A request whose `Drop` panics.
struct ExplodingRequest(ChatRequest);

impl Borrow<ChatRequest> for ExplodingRequest {
    fn borrow(&self) -> &ChatRequest {
        &self.0
    }
}

impl Drop for ExplodingRequest {
    fn drop(&mut self) {
        panic!("a request's Drop panicked");
    }
}

/// A tokenizer handle whose `Drop` panics.
struct ExplodingTokenizer(&'static MistralTokenizer);

impl Borrow<MistralTokenizer> for ExplodingTokenizer {
    fn borrow(&self) -> &MistralTokenizer {
        self.0
    }
}

impl Drop for ExplodingTokenizer {
    fn drop(&mut self) {
        panic!("a tokenizer's Drop panicked");
    }
}

/// Waits until the worker has let go of its last job: it counts the job
/// done only after its answer has been sent, so the caller may see the
/// answer first. No time limit: a job that is never let go hangs the test
/// here (the harness names it after 60 s) instead of failing on a slow host.
fn queue_drained() -> u64 {
    while worker::stats().queue_depth != 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    worker::stats().queue_depth
}

/// Queues `cancelled` behind a job that keeps the worker busy, drops the
/// caller's future while it waits, and lets the worker reach it.
async fn cancel_behind_a_busy_worker<F>(cancelled: F)
where
    F: std::future::Future<Output = Result<Vec<u32>, ChatTemplateError>>,
{
    let executor = worker::global().unwrap();
    // The worker stays busy until the caller's future is dropped, however
    // slow the host: no guess at how long anything takes.
    let (started, has_started) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let blocker = tokio::spawn(executor.run(Tracing::Off, move || {
        started.send(()).unwrap();
        released.recv().unwrap();
    }));
    has_started.await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(5), cancelled)
            .await
            .is_err(),
        "the job should still be queued"
    );
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
}

#[test]
fn a_panicking_drop_on_a_cancelled_job_leaves_nothing_held() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tokenizer = common::tokenizer();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        cancel_behind_a_busy_worker(async_apply_mistral_chat_template(
            tokenizer,
            ExplodingRequest(large_request()),
        ))
        .await;
        cancel_behind_a_busy_worker(async_apply_mistral_chat_template(
            ExplodingTokenizer(tokenizer),
            large_request(),
        ))
        .await;
        // The worker dropped both jobs, caught both panics and goes on; the
        // queue is empty again, and small requests run inline.
        let expected = apply_mistral_chat_template(tokenizer, &large_request());
        let queued = async_apply_mistral_chat_template(tokenizer, large_request()).await;
        assert_eq!(queued, expected);
        assert_eq!(queue_drained(), 0);
        let inline_before = worker::stats().jobs_inline;
        let small = ChatRequest::single_user_message("Hello ".repeat(50));
        async_apply_mistral_chat_template(tokenizer, small)
            .await
            .unwrap();
        assert_eq!(worker::stats().jobs_inline, inline_before + 1);
    });
    assert_eq!(queue_drained(), 0);
    let stats = worker::stats();
    assert_eq!(stats.worker_threads_started, 1, "{stats:?}");
    assert!(stats.jobs_panicked >= 2, "{stats:?}");
    assert!(stats.jobs_cancelled >= 2, "{stats:?}");
}

/// What the inner calls returned.
type InnerOutcomes = Arc<Mutex<Vec<Result<Vec<u32>, ChatTemplateError>>>>;

/// A request whose `borrow` calls the wrapper, as a careless `Borrow`
/// implementation might, and keeps what that inner call returned.
struct ReentrantRequest {
    request: ChatRequest,
    inner: InnerOutcomes,
}

impl Borrow<ChatRequest> for ReentrantRequest {
    fn borrow(&self) -> &ChatRequest {
        let inner = async_apply_mistral_chat_template(
            common::tokenizer(),
            ChatRequest::single_user_message("inner"),
        );
        let outcome = if tokio::runtime::Handle::try_current().is_ok() {
            // Inline, on the caller's event loop: one poll must answer.
            let mut inner = std::pin::pin!(inner);
            match inner.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(outcome) => outcome,
                Poll::Pending => panic!("the inner call was queued behind its own job"),
            }
        } else {
            // On the worker: a runtime of its own, as a blocking caller has.
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(inner)
        };
        self.inner.lock().unwrap().push(outcome);
        &self.request
    }
}

#[test]
fn a_wrapper_call_from_inside_a_job_is_refused_not_deadlocked() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tokenizer = common::tokenizer();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for request in [
        ChatRequest::single_user_message("Hello ".repeat(50)),
        large_request(),
    ] {
        let inline = worker::fits_inline(&request, worker::INLINE_BUDGET);
        let inner = Arc::new(Mutex::new(Vec::new()));
        let expected = apply_mistral_chat_template(tokenizer, &request);
        let outer = runtime.block_on(async_apply_mistral_chat_template(
            tokenizer,
            ReentrantRequest {
                request,
                inner: inner.clone(),
            },
        ));
        assert_eq!(outer, expected, "inline {inline}");
        // `borrow` is also called outside the job (to place it), where the
        // inner call is an ordinary one; inside the job it is refused.
        let inner = inner.lock().unwrap();
        assert!(
            inner.contains(&Err(ChatTemplateError::CalledFromJob)),
            "inline {inline}: {inner:?}"
        );
        for outcome in inner.iter() {
            assert!(
                matches!(outcome, Ok(_) | Err(ChatTemplateError::CalledFromJob)),
                "inline {inline}: {outcome:?}"
            );
        }
    }
    assert_eq!(queue_drained(), 0);
}
