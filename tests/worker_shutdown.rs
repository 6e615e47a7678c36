//! After the worker has stopped, calls fail at once with a clear error; jobs
//! queued before the stop still get their answers. (Its own test binary: the
//! worker is process-wide.)

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use perfwarden::chat::worker;
use perfwarden::chat::{ChatRequest, ChatTemplateError, async_apply_mistral_chat_template};

#[test]
fn calls_after_shutdown_fail_fast() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tokenizer = common::tokenizer();
    let request = Arc::new(ChatRequest::single_user_message(
        "Test content ".repeat(5000),
    ));
    runtime.block_on(async {
        let before = async_apply_mistral_chat_template(tokenizer, request.clone()).await;
        assert!(before.is_ok());
        // Queue work, then stop: the queued job is still answered. The
        // first poll queues it (a request this large never runs inline), so
        // it is queued before the stop whatever the host's speed.
        let mut queued = Box::pin(async_apply_mistral_chat_template(
            tokenizer,
            request.clone(),
        ));
        let first = poll_once(queued.as_mut()).await;
        tokio::task::spawn_blocking(|| worker::global().unwrap().shutdown())
            .await
            .unwrap();
        let answer = match first {
            Poll::Ready(answer) => answer,
            Poll::Pending => queued.await,
        };
        assert!(answer.is_ok(), "{answer:?}");
        // Fails at once: the first poll answers.
        let after = poll_once(std::pin::pin!(async_apply_mistral_chat_template(
            tokenizer,
            request.clone(),
        )))
        .await;
        let Poll::Ready(after) = after else {
            panic!("a call after shutdown waits instead of failing at once");
        };
        let error = after.unwrap_err();
        assert!(
            matches!(error, ChatTemplateError::WorkerUnavailable(_)),
            "{error}"
        );
        assert!(error.to_string().contains("shut down"), "{error}");
        // A request small enough to run inline is refused too.
        let small =
            async_apply_mistral_chat_template(tokenizer, ChatRequest::single_user_message("hi"))
                .await;
        assert!(
            matches!(small, Err(ChatTemplateError::WorkerUnavailable(_))),
            "{small:?}"
        );
    });
}

/// Polls `future` once, with the runtime's waker.
async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}
