//! Instruction counts (gungraun, callgrind): sync and async on the contract's
//! three payloads.
//!
//! Callgrind counts only the benchmarked call tree by default, which would
//! miss the async variant's real work on the worker thread. The worker runs
//! every job through `perfwarden::chat::worker::run_job`, so collection is
//! also toggled on there: the worker's jobs count, its idle loop and all
//! setup (tokenizer load, runtime, worker start) do not.
//!
//! Each benchmark is one call in a fresh process, before the wrapper has
//! timed any request: the small payload runs inline, the medium and large
//! ones go to the worker (`chat::worker::INLINE_MAX_BYTES`), so the async
//! count includes the hand-off. No deadline is reached on that path, so
//! callgrind's slowness does not change where a job runs.

use std::hint::black_box;

use gungraun::prelude::*;
use gungraun::{Callgrind, LibraryBenchmarkConfig};
use perfwarden::chat::{
    ChatRequest, MistralTokenizer, apply_mistral_chat_template, async_apply_mistral_chat_template,
};
use perfwarden::measure::payload::Payload;

struct Context {
    tokenizer: &'static MistralTokenizer,
    request: &'static ChatRequest,
    runtime: tokio::runtime::Runtime,
}

fn setup(payload: Payload) -> Context {
    let tokenizer: &'static MistralTokenizer = Box::leak(Box::new(
        perfwarden::chat::load_tokenizer(None, &mut |note| eprintln!("{note}"))
            .expect("the tokenizer model loads"),
    ));
    let request: &'static ChatRequest = Box::leak(Box::new(payload.request()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // Warm the tokenizer's cache and start the worker, without a job: a job
    // here would be counted, since the worker's toggle cannot tell setup apart.
    apply_mistral_chat_template(tokenizer, request).expect("the payload tokenizes");
    perfwarden::chat::worker::global().expect("the worker starts");
    Context {
        tokenizer,
        request,
        runtime,
    }
}

#[library_benchmark]
#[bench::small(args = (Payload::Small), setup = setup)]
#[bench::medium(args = (Payload::Medium), setup = setup)]
#[bench::large(args = (Payload::Large), setup = setup)]
fn sync_template(context: Context) -> (Context, Vec<u32>) {
    let tokens = apply_mistral_chat_template(context.tokenizer, black_box(context.request))
        .expect("the payload tokenizes");
    (context, tokens)
}

#[library_benchmark]
#[bench::small(args = (Payload::Small), setup = setup)]
#[bench::medium(args = (Payload::Medium), setup = setup)]
#[bench::large(args = (Payload::Large), setup = setup)]
fn async_template(context: Context) -> (Context, Vec<u32>) {
    let tokens = context
        .runtime
        .block_on(async_apply_mistral_chat_template(
            context.tokenizer,
            black_box(context.request),
        ))
        .expect("the payload tokenizes");
    (context, tokens)
}

library_benchmark_group!(
    name = contract,
    benchmarks = [sync_template, async_template]
);

main!(
    config = LibraryBenchmarkConfig::default()
        .env_clear(false)
        // One malloc arena for all threads, so the worker allocates from the
        // same heap as the sync call and the two counts differ by the hand-off,
        // not by one thread having a fresh heap (docs/methodology.md).
        .env("GLIBC_TUNABLES", "glibc.malloc.arena_max=1")
        .tool(Callgrind::with_args([
            "--toggle-collect=perfwarden::chat::worker::run_job"
        ])),
    library_benchmark_groups = contract
);
