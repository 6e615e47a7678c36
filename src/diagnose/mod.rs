//! The spec's regression checklist, walked automatically.
//!
//! Tracing cannot tell the four causes apart on small VMs (a fresh thread per
//! request costs about as much as a hand-off to a warm one), so the probes
//! observe structure: which OS thread ran each job and when it was created
//! (thread ids grow), whether jobs overlapped, and callgrind's instruction
//! counts. Only the warm-up item uses tracing, because it is about time.

pub mod calibrate;
pub mod fixtures;
pub mod instructions;
pub mod probes;
pub mod profile_diff;
pub mod selftest;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::chat::worker::{JobTrace, Tracing};
use crate::chat::{ChatRequest, ChatTemplateError, MistralTokenizer};

/// A probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error(
        "unknown wrapper '{0}'; known: real, sync, per-request-executor, worker-pool, cold-worker, per-byte-work, slowdown-<percent>"
    )]
    UnknownWrapper(String),
    #[error("probe failed: {0}")]
    Probe(String),
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a call returns: the tokens and, when traced, where the job ran.
pub type TracedResult = Result<(Vec<u32>, Option<JobTrace>), ChatTemplateError>;

/// An async wrapper under diagnosis: the real one or a deliberately broken
/// fixture.
pub trait AsyncWrapper: Send + Sync {
    fn name(&self) -> String;

    /// Whether it has run a job yet (its first call is the cold one).
    fn started(&self) -> bool;

    fn call(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        tracing: Tracing,
    ) -> BoxFuture<TracedResult>;

    /// Runs `iterations` calls back to back on `runtime` and returns the time
    /// they took (the verdict's candidate batch).
    fn batch(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        runtime: &tokio::runtime::Runtime,
        iterations: usize,
    ) -> Duration {
        calls_back_to_back(self, tokenizer, request, runtime, iterations)
    }
}

/// [`AsyncWrapper::batch`]'s default: `iterations` untraced calls of
/// `wrapper` back to back on `runtime`, timed together.
pub fn calls_back_to_back(
    wrapper: &(impl AsyncWrapper + ?Sized),
    tokenizer: &'static MistralTokenizer,
    request: &'static ChatRequest,
    runtime: &tokio::runtime::Runtime,
    iterations: usize,
) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(wrapper.call(tokenizer, request, Tracing::Off).await.ok());
        }
        start.elapsed()
    })
}

/// The real `async_apply_mistral_chat_template`.
pub struct RealWrapper;

impl AsyncWrapper for RealWrapper {
    fn name(&self) -> String {
        "real".into()
    }

    fn started(&self) -> bool {
        crate::chat::worker::stats().worker_threads_started > 0
    }

    fn call(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        tracing: Tracing,
    ) -> BoxFuture<TracedResult> {
        Box::pin(
            crate::chat::worker::async_apply_mistral_chat_template_traced(
                tokenizer, request, tracing,
            ),
        )
    }

    /// Unboxed, untraced calls: exactly what a server does.
    fn batch(
        &self,
        tokenizer: &'static MistralTokenizer,
        request: &'static ChatRequest,
        runtime: &tokio::runtime::Runtime,
        iterations: usize,
    ) -> Duration {
        crate::measure::run::async_batch(tokenizer, request, runtime)(iterations)
    }
}

/// Every wrapper `perfwarden selftest` knows, by name.
pub const WRAPPER_NAMES: [&str; 6] = [
    "real",
    "per-request-executor",
    "worker-pool",
    "cold-worker",
    "per-byte-work",
    "slowdown-10",
];

/// The wrapper called `name`; `slowdown-<X>` takes any percentage.
pub fn wrapper(name: &str) -> Option<Box<dyn AsyncWrapper>> {
    if name == "real" {
        return Some(Box::new(RealWrapper));
    }
    fixtures::fixture(name)
}
