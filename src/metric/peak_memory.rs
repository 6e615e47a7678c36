//! Peak memory per request byte. Each trial runs in a fresh child process
//! (`perfwarden peak-memory`, hidden), so memory freed by earlier work in
//! this process cannot hide what a call needs: the child parses the request,
//! resets its peak resident set (`/proc/self/clear_refs`), makes one call
//! and reports how far the peak rose above the resident set before the call.
//! Judged on the largest trial, divided by the request's size.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{CaseSamples, Judged, MeasureContext};
use crate::chat::{ChatRequest, MistralTokenizer};
use crate::measure::MeasureError;
use crate::measure::payload::{CasePayload, Variant};
use crate::measure::subject::{ChatTemplate, Subject};

fn trials(quick: bool) -> usize {
    if quick { 1 } else { 3 }
}

pub fn measure(
    context: &MeasureContext,
    variant: Variant,
    payload: &CasePayload,
    reference: Option<&CasePayload>,
) -> Result<CaseSamples, MeasureError> {
    let Some(child) = &context.child else {
        return Ok(CaseSamples::default());
    };
    let trial = |payload: &CasePayload| -> Result<f64, MeasureError> {
        let failed = |why: String| {
            MeasureError::Tool(format!(
                "the peak-memory child for the payload {} failed: {why}",
                payload.key
            ))
        };
        let mut process = Command::new(&child.exe)
            .args(["peak-memory", "--variant", variant.name(), "--tokenizer"])
            .arg(&child.tokenizer)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot start {}: {e}", child.exe.display())))?;
        process
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(payload.json.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
        let output = process
            .wait_with_output()
            .map_err(|e| failed(e.to_string()))?;
        if !output.status.success() {
            return Err(failed(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let grown: f64 = text
            .trim()
            .parse()
            .map_err(|_| failed(format!("it printed {text:?}, not a byte count")))?;
        Ok(grown / payload.bytes.max(1) as f64)
    };
    let mut samples = CaseSamples::default();
    for _ in 0..trials(context.quick) {
        samples.judged.push(trial(payload)?);
        if let Some(reference) = reference {
            samples.other.push(trial(reference)?);
        }
    }
    Ok(samples)
}

/// The child's side: one call of `variant` on the request in `json`; returns
/// how many bytes the peak resident set rose above the resident set before.
pub fn child_peak_growth(
    tokenizer: &'static MistralTokenizer,
    variant: Variant,
    json: &str,
) -> Result<u64, String> {
    let request: &'static ChatRequest = Box::leak(Box::new(
        ChatRequest::from_json(json).map_err(|e| e.to_string())?,
    ));
    let subject = ChatTemplate::new(tokenizer);
    let runtime = super::wall_clock::current_thread_runtime();
    // Starts the worker thread (and its stack) before the peak is reset, as
    // in a server that has served a request before.
    if variant == Variant::Async {
        let warm: &'static ChatRequest =
            Box::leak(Box::new(ChatRequest::single_user_message("hi")));
        subject.batch(variant, warm, &runtime, 1);
    }
    std::fs::write("/proc/self/clear_refs", "5")
        .map_err(|e| format!("cannot reset the peak resident set (/proc/self/clear_refs): {e}"))?;
    let before = status_kib("VmRSS")?;
    subject.batch(variant, request, &runtime, 1);
    let peak = status_kib("VmHWM")?;
    Ok(peak.saturating_sub(before) * 1024)
}

fn status_kib(field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    parse_status_kib(&status, field).ok_or_else(|| format!("/proc/self/status has no {field}"))
}

/// `field` of `/proc/<pid>/status` text, in KiB.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// The largest trial: memory is nearly deterministic, and the bound is on
/// the worst call.
pub fn judge(samples: &CaseSamples) -> Option<Judged> {
    let worst = samples
        .judged
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))?;
    Some(Judged::point(worst, samples.judged.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tperfwarden\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(51234));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(40000));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn the_worst_trial_is_judged() {
        let samples = CaseSamples {
            judged: vec![3.0, 12.5, 4.0],
            ..CaseSamples::default()
        };
        assert_eq!(judge(&samples), Some(Judged::point(12.5, 3)));
        assert_eq!(judge(&CaseSamples::default()), None);
    }
}
