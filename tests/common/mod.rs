//! Shared by the integration tests: the tokenizer, located or fetched once
//! per test binary (concurrent fetches are safe: the cache is renamed in whole).
#![allow(dead_code)] // each test binary uses its own part

pub mod synthetic;

use std::path::Path;
use std::sync::OnceLock;

use perfwarden::chat::MistralTokenizer;
use perfwarden::chat::acquire::{LocatedModel, ModelSearch};

/// The verified model, located (or fetched) as the CLI would.
fn located() -> &'static LocatedModel {
    static LOCATED: OnceLock<LocatedModel> = OnceLock::new();
    LOCATED.get_or_init(|| {
        ModelSearch::from_env(std::env::var_os("PERFWARDEN_TOKENIZER").map(Into::into))
            .locate(&mut |note| eprintln!("{note}"))
            .expect("the tokenizer model must be available or fetchable")
    })
}

pub fn model_path() -> &'static Path {
    &located().path
}

pub fn tokenizer() -> &'static MistralTokenizer {
    static TOKENIZER: OnceLock<MistralTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| located().load().expect("the tokenizer model loads"))
}

/// One case of `harness/corpus/conformance.jsonl`.
#[derive(serde::Deserialize)]
pub struct Case {
    pub name: String,
    pub request: String,
    pub expected: serde_json::Value,
}

pub fn corpus() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/harness/corpus/conformance.jsonl"
    );
    std::fs::read_to_string(path)
        .expect("the conformance corpus exists")
        .lines()
        .map(|line| serde_json::from_str(line).expect("corpus lines are JSON"))
        .collect()
}
