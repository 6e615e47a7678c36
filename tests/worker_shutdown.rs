//! After the worker has stopped, calls fail at once with a clear error; jobs
//! queued before the stop still get their answers. (Its own test binary: the
//! worker is process-wide.)

mod common;

use std::sync::Arc;
use std::time::Duration;

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
        // Queue work, then stop: the queued job is still answered.
        let queued = tokio::spawn(async_apply_mistral_chat_template(
            tokenizer,
            request.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::task::spawn_blocking(|| worker::global().unwrap().shutdown())
            .await
            .unwrap();
        assert!(queued.await.unwrap().is_ok());
        let after = tokio::time::timeout(
            Duration::from_secs(5),
            async_apply_mistral_chat_template(tokenizer, request.clone()),
        )
        .await
        .expect("a call after shutdown must not hang");
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
