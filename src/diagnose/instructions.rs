//! Instruction counts of one call of any wrapper, for the async-overhead
//! probe: perfwarden runs itself under callgrind (`perfwarden probe-call`)
//! and reads callgrind's totals from its profile.
//!
//! Collection is on only inside [`measured_call`] (the caller's side) and in
//! the functions that run jobs on worker threads (`run_job` for the real
//! worker, `fixture_job` for the fixtures'), so setup is never counted.

use std::path::Path;
use std::process::Command;

use super::DiagnoseError;
use crate::chat::{ChatRequest, MistralTokenizer, apply_mistral_chat_template};
use crate::measure::payload::{Payload, Variant};
use crate::measure::profile::Profile;

/// The functions callgrind collects in.
pub const COLLECTED_FUNCTIONS: [&str; 3] = [
    "perfwarden::diagnose::instructions::measured_call",
    "perfwarden::chat::worker::run_job",
    "perfwarden::diagnose::fixtures::fixture_job",
];

/// The call being counted.
#[inline(never)]
pub fn measured_call(call: &mut dyn FnMut()) {
    call()
}

/// The body of `perfwarden probe-call`: one call of `wrapper` (or of the sync
/// function) on `payload`, after warming the tokenizer's cache.
pub fn probe_call(
    tokenizer: &'static MistralTokenizer,
    wrapper: &str,
    payload: Payload,
    variant: Variant,
) -> Result<(), DiagnoseError> {
    let request: &'static ChatRequest = Box::leak(Box::new(payload.request()));
    apply_mistral_chat_template(tokenizer, request)
        .map_err(|e| DiagnoseError::Probe(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DiagnoseError::Probe(e.to_string()))?;
    let wrapper =
        super::wrapper(wrapper).ok_or_else(|| DiagnoseError::UnknownWrapper(wrapper.to_owned()))?;
    let mut failure = None;
    match variant {
        Variant::Sync => measured_call(&mut || {
            failure = apply_mistral_chat_template(tokenizer, request)
                .err()
                .map(|e| e.to_string());
        }),
        Variant::Async => measured_call(&mut || {
            failure = runtime
                .block_on(wrapper.call(tokenizer, request, crate::chat::worker::Tracing::Off))
                .err()
                .map(|e| e.to_string());
        }),
    }
    failure.map_or(Ok(()), |e| Err(DiagnoseError::Probe(e)))
}

/// Runs `exe probe-call ...` under callgrind and returns its instruction count.
pub fn count_instructions(
    exe: &Path,
    valgrind: &str,
    tokenizer_path: &Path,
    wrapper: &str,
    payload: Payload,
    variant: Variant,
) -> Result<u64, DiagnoseError> {
    profile_call(exe, valgrind, tokenizer_path, wrapper, payload, variant)
        .map(|profile| profile.total_ir)
}

/// Runs `exe probe-call ...` under callgrind and returns its profile: the
/// instruction count (its total) and where they went, from one run.
pub fn profile_call(
    exe: &Path,
    valgrind: &str,
    tokenizer_path: &Path,
    wrapper: &str,
    payload: Payload,
    variant: Variant,
) -> Result<Profile, DiagnoseError> {
    let dir = tempfile::tempdir().map_err(|e| DiagnoseError::Probe(e.to_string()))?;
    let out = dir.path().join("callgrind.out");
    let mut command = Command::new(valgrind);
    command.args(["--tool=callgrind", "--quiet"]);
    command.arg(format!("--callgrind-out-file={}", out.display()));
    for function in COLLECTED_FUNCTIONS {
        command.arg(format!("--toggle-collect={function}"));
    }
    command
        .arg(exe)
        .args([
            "probe-call",
            "--wrapper",
            wrapper,
            "--payload",
            payload.name(),
            "--variant",
            variant.name(),
        ])
        .env("PERFWARDEN_TOKENIZER", tokenizer_path)
        // As in the instruction benchmark: one heap for all threads.
        .env("GLIBC_TUNABLES", "glibc.malloc.arena_max=1");
    let output = command.output().map_err(|e| {
        DiagnoseError::Probe(format!("cannot run {valgrind}: {e}; install valgrind"))
    })?;
    if !output.status.success() {
        return Err(DiagnoseError::Probe(format!(
            "callgrind run of {wrapper} {}/{} failed: {}",
            payload.name(),
            variant.name(),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )));
    }
    let text = std::fs::read_to_string(&out)
        .map_err(|e| DiagnoseError::Probe(format!("{}: {e}", out.display())))?;
    crate::measure::profile::parse_profile(&text).map_err(|e| DiagnoseError::Probe(e.to_string()))
}
