//! Wall clock (Criterion): sync and async on the contract's three payloads.
//! Tokenizer load, runtime creation and worker warm-up happen before any
//! measurement. `perfwarden run` drives this and reads Criterion's JSON.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use perfwarden::chat::{
    ChatRequest, MistralTokenizer, apply_mistral_chat_template, async_apply_mistral_chat_template,
};
use perfwarden::measure::payload::{Payload, Variant};

fn contract_payloads(c: &mut Criterion) {
    let tokenizer: &'static MistralTokenizer = Box::leak(Box::new(
        perfwarden::chat::load_tokenizer(None, &mut |note| eprintln!("{note}"))
            .expect("the tokenizer model loads"),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for payload in Payload::ALL {
        let request: &'static ChatRequest = Box::leak(Box::new(payload.request()));
        // Warm the tokenizer's cache and start the worker, outside the measurement.
        apply_mistral_chat_template(tokenizer, request).expect("the payload tokenizes");
        runtime
            .block_on(async_apply_mistral_chat_template(tokenizer, request))
            .expect("the payload tokenizes");
        let mut group = c.benchmark_group(payload.name());
        group.bench_function(Variant::Sync.name(), |b| {
            b.iter(|| apply_mistral_chat_template(tokenizer, black_box(request)))
        });
        group.bench_function(Variant::Async.name(), |b| {
            b.to_async(&runtime)
                .iter(|| async_apply_mistral_chat_template(tokenizer, black_box(request)))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = contract_payloads
}
criterion_main!(benches);
