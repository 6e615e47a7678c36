//! Where an async call's time goes: each traced call of the real wrapper
//! split into dispatch (the call until the job starts, any queue wait
//! included), execution (the job's own run) and return (the job's end until
//! the caller has the answer), with the same request's execution on the
//! caller (a sync call) beside it. Medians of calls that alternate with the
//! sync ones, so "+3.4%" can read as "dispatch and return +0.1%, the worker
//! ran the job 3.3% slower than the caller".

use std::time::Instant;

use crate::chat::worker::{Tracing, async_apply_mistral_chat_template_traced};
use crate::chat::{ChatRequest, MistralTokenizer, apply_mistral_chat_template};
use crate::judge::stats;

/// Medians over the traced calls, in ns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decomposition {
    pub calls: usize,
    /// Calls the wrapper ran on the caller itself (no hand-off).
    pub inline: usize,
    pub dispatch_ns: f64,
    pub execution_ns: f64,
    /// The same request as a sync call on the caller.
    pub caller_execution_ns: f64,
    pub return_ns: f64,
}

/// One traced call's parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CallParts {
    pub inline: bool,
    pub dispatch_ns: f64,
    pub execution_ns: f64,
    pub return_ns: f64,
}

impl CallParts {
    /// From the call's start and end on the caller and the job's span.
    pub fn new(call: (Instant, Instant), job: (Instant, Instant), inline: bool) -> Self {
        let ns = |from: Instant, to: Instant| to.saturating_duration_since(from).as_nanos() as f64;
        Self {
            inline,
            dispatch_ns: ns(call.0, job.0),
            execution_ns: ns(job.0, job.1),
            return_ns: ns(job.1, call.1),
        }
    }
}

impl Decomposition {
    /// The medians of `parts` beside the caller's own execution times.
    pub fn of(parts: &[CallParts], caller_ns: &[f64]) -> Option<Self> {
        let median = |pick: fn(&CallParts) -> f64| {
            stats::median(&parts.iter().map(pick).collect::<Vec<_>>())
        };
        Some(Self {
            calls: parts.len(),
            inline: parts.iter().filter(|p| p.inline).count(),
            dispatch_ns: median(|p| p.dispatch_ns)?,
            execution_ns: median(|p| p.execution_ns)?,
            caller_execution_ns: stats::median(caller_ns)?,
            return_ns: median(|p| p.return_ns)?,
        })
    }

    /// The overhead over the caller's execution, split: (hand-off: dispatch
    /// and return, execution: the worker's run against the caller's), as
    /// fractions of the caller's execution.
    pub fn split(&self) -> (f64, f64) {
        let base = self.caller_execution_ns.max(1.0);
        (
            (self.dispatch_ns + self.return_ns) / base,
            self.execution_ns / base - 1.0,
        )
    }

    /// As stored with a run: (metric, value, unit), under the payload's
    /// `async` benchmark.
    pub fn figures(&self) -> [(&'static str, f64, &'static str); 6] {
        [
            ("traced_calls", self.calls as f64, "count"),
            ("inline_calls", self.inline as f64, "count"),
            ("dispatch", self.dispatch_ns, "ns"),
            ("execution", self.execution_ns, "ns"),
            ("caller_execution", self.caller_execution_ns, "ns"),
            ("return", self.return_ns, "ns"),
        ]
    }

    /// Back from stored figures, by metric name.
    pub fn from_figures(value: impl Fn(&str) -> Option<f64>) -> Option<Self> {
        Some(Self {
            calls: value("traced_calls")? as usize,
            inline: value("inline_calls")? as usize,
            dispatch_ns: value("dispatch")?,
            execution_ns: value("execution")?,
            caller_execution_ns: value("caller_execution")?,
            return_ns: value("return")?,
        })
    }
}

/// `calls` traced calls of the real wrapper on `request`, each after a sync
/// call of it, on a current-thread runtime as a server's caller.
pub fn measure(
    tokenizer: &'static MistralTokenizer,
    request: &'static ChatRequest,
    calls: usize,
) -> Option<Decomposition> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let mut parts = Vec::with_capacity(calls);
    let mut caller = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        std::hint::black_box(apply_mistral_chat_template(tokenizer, request).ok());
        caller.push(start.elapsed().as_nanos() as f64);
        let start = Instant::now();
        let traced = runtime.block_on(async_apply_mistral_chat_template_traced(
            tokenizer,
            request,
            Tracing::On,
        ));
        let end = Instant::now();
        if let Ok((_, Some(trace))) = traced {
            parts.push(CallParts::new((start, end), trace.span, trace.inline));
        }
    }
    Decomposition::of(&parts, &caller)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_call_splits_into_dispatch_execution_and_return() {
        let t0 = Instant::now();
        let at = |us| t0 + Duration::from_micros(us);
        let parts = CallParts::new((at(0), at(1_100)), (at(40), at(1_070)), false);
        assert_eq!(parts.dispatch_ns, 40_000.0);
        assert_eq!(parts.execution_ns, 1_030_000.0);
        assert_eq!(parts.return_ns, 30_000.0);
        let calls = [
            parts,
            parts,
            CallParts::new((at(0), at(5_000)), (at(10), at(4_990)), false),
        ];
        let decomposition =
            Decomposition::of(&calls, &[1_000_000.0, 1_000_000.0, 990_000.0]).unwrap();
        assert_eq!(decomposition.calls, 3);
        assert_eq!(
            decomposition.execution_ns, 1_030_000.0,
            "the median, not the slow call"
        );
        let (hand_off, execution) = decomposition.split();
        assert!((hand_off - 0.07).abs() < 1e-12, "{hand_off}");
        assert!((execution - 0.03).abs() < 1e-12, "{execution}");
        let figures = decomposition.figures();
        let back = Decomposition::from_figures(|name| {
            figures
                .iter()
                .find(|(n, ..)| *n == name)
                .map(|(_, v, _)| *v)
        });
        assert_eq!(back, Some(decomposition));
        assert_eq!(Decomposition::of(&[], &[1.0]), None);
    }
}
