//! What perfwarden measures, behind one small trait: the variants it offers,
//! how to run a batch of one, and one call as a future for the probes that
//! watch the caller's event loop. The chat template is its implementation;
//! the metrics know nothing else about it.

use std::time::Duration;

use super::payload::Variant;
use crate::chat::{ChatRequest, MistralTokenizer, apply_mistral_chat_template};
use crate::diagnose::{AsyncWrapper, BoxFuture, RealWrapper};

pub trait Subject: Send + Sync {
    /// The variants a contract may name.
    fn variants(&self) -> &'static [Variant];

    /// Runs `iterations` calls of `variant` back to back on the calling
    /// thread (an async variant on `runtime`) and returns how long they took.
    fn batch(
        &self,
        variant: Variant,
        request: &'static ChatRequest,
        runtime: &tokio::runtime::Runtime,
        iterations: usize,
    ) -> Duration;

    /// One call of `variant` as a future. A sync variant runs when first
    /// polled, blocking the runtime as a direct call in a handler does.
    fn call(&self, variant: Variant, request: &'static ChatRequest) -> BoxFuture<()>;

    /// The kernel id of the thread `variant` runs `request`'s work on when
    /// that is not the caller (found by one traced call); `None` when it
    /// runs on the caller or cannot tell.
    fn worker_thread(
        &self,
        variant: Variant,
        request: &'static ChatRequest,
        runtime: &tokio::runtime::Runtime,
    ) -> Option<u32>;
}

/// The Mistral chat template: `sync` is `apply_mistral_chat_template`,
/// `async` the wrapper (the real one, or a fixture under diagnosis).
#[derive(Clone, Copy)]
pub struct ChatTemplate {
    pub tokenizer: &'static MistralTokenizer,
    pub wrapper: &'static dyn AsyncWrapper,
}

impl ChatTemplate {
    pub fn new(tokenizer: &'static MistralTokenizer) -> Self {
        Self {
            tokenizer,
            wrapper: &RealWrapper,
        }
    }
}

impl Subject for ChatTemplate {
    fn variants(&self) -> &'static [Variant] {
        &Variant::ALL
    }

    fn batch(
        &self,
        variant: Variant,
        request: &'static ChatRequest,
        runtime: &tokio::runtime::Runtime,
        iterations: usize,
    ) -> Duration {
        match variant {
            Variant::Sync => super::run::sync_batch(self.tokenizer, request)(iterations),
            Variant::Async => self
                .wrapper
                .batch(self.tokenizer, request, runtime, iterations),
        }
    }

    fn worker_thread(
        &self,
        variant: Variant,
        request: &'static ChatRequest,
        runtime: &tokio::runtime::Runtime,
    ) -> Option<u32> {
        if variant == Variant::Sync {
            return None;
        }
        let traced = runtime.block_on(self.wrapper.call(
            self.tokenizer,
            request,
            crate::chat::worker::Tracing::On,
        ));
        let (_, trace) = traced.ok()?;
        trace.filter(|t| !t.inline)?.os_thread
    }

    fn call(&self, variant: Variant, request: &'static ChatRequest) -> BoxFuture<()> {
        let tokenizer = self.tokenizer;
        match variant {
            Variant::Sync => Box::pin(async move {
                std::hint::black_box(apply_mistral_chat_template(tokenizer, request).ok());
            }),
            Variant::Async => {
                let call = self
                    .wrapper
                    .call(tokenizer, request, crate::chat::worker::Tracing::Off);
                Box::pin(async move {
                    std::hint::black_box(call.await.ok());
                })
            }
        }
    }
}
