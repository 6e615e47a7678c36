//! The batch protocol: a build of perfwarden serves timed batches of its
//! benchmarks over standard input and output (`perfwarden serve-batches`),
//! so that `compare` can drive two builds' processes alternately on one
//! machine.
//!
//! The server's first line is [`GREETING`]. Each request line is
//! `batch <benchmark> <iterations>` (a benchmark id such as `small/sync`),
//! answered by `ns <nanoseconds>` (the batch's time) or `error <message>`;
//! `quit` or the end of the input ends it.

use std::io::{self, BufRead, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use super::payload::{Payload, Variant, benchmark_id, parse_benchmark_id};
use super::subject::{ChatTemplate, Subject};
use crate::chat::{ChatRequest, MistralTokenizer};
use crate::stack_shift::StackShift;

/// The server's first line: the protocol and its version.
pub const GREETING: &str = "perfwarden-batches 1";

/// The hidden subcommand that serves the protocol.
pub const SUBCOMMAND: &str = "serve-batches";

/// Every benchmark the protocol serves, in the order reports list them.
pub fn benchmarks() -> Vec<String> {
    Payload::ALL
        .into_iter()
        .flat_map(|p| Variant::ALL.into_iter().map(move |v| benchmark_id(p, v)))
        .collect()
}

/// The protocol was not followed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("unknown request '{0}': expected `batch <benchmark> <iterations>` or `quit`")]
    UnknownRequest(String),
    #[error("unknown benchmark '{0}': expected <small|medium|large>/<sync|async>")]
    UnknownBenchmark(String),
    #[error("'{0}' is not a number of iterations (a whole number, at least 1)")]
    Iterations(String),
    #[error("the server answered '{0}', not `ns <nanoseconds>`")]
    Reply(String),
    #[error("the server failed the batch: {0}")]
    Failed(String),
}

/// One request line, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Batch {
        payload: Payload,
        variant: Variant,
        iterations: usize,
    },
    Quit,
}

pub fn parse_request(line: &str) -> Result<Request, ProtocolError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["quit"] => Ok(Request::Quit),
        ["batch", benchmark, iterations] => {
            let (payload, variant) = parse_benchmark_id(benchmark)
                .ok_or_else(|| ProtocolError::UnknownBenchmark((*benchmark).to_owned()))?;
            let iterations = iterations
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ProtocolError::Iterations((*iterations).to_owned()))?;
            Ok(Request::Batch {
                payload,
                variant,
                iterations,
            })
        }
        _ => Err(ProtocolError::UnknownRequest(line.trim().to_owned())),
    }
}

/// The time of a batch from the server's answer.
pub fn parse_reply(line: &str) -> Result<Duration, ProtocolError> {
    let line = line.trim_end();
    if let Some(message) = line.strip_prefix("error ") {
        return Err(ProtocolError::Failed(message.to_owned()));
    }
    line.strip_prefix("ns ")
        .and_then(|n| n.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .ok_or_else(|| ProtocolError::Reply(line.to_owned()))
}

/// Serves requests from `input` until `quit` or its end. Each batch runs at
/// a freshly drawn stack depth, as the in-process sampler's do.
pub fn serve(
    tokenizer: &'static MistralTokenizer,
    input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    let subject = ChatTemplate::new(tokenizer);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut requests: Vec<(Payload, &'static ChatRequest)> = Vec::new();
    let mut shift = StackShift::default();
    writeln!(output, "{GREETING}")?;
    output.flush()?;
    for line in input.lines() {
        let line = line?;
        let reply = match parse_request(&line) {
            Ok(Request::Quit) => break,
            Ok(Request::Batch {
                payload,
                variant,
                iterations,
            }) => {
                let request = match requests.iter().find(|(p, _)| *p == payload) {
                    Some((_, request)) => *request,
                    None => {
                        let request: &'static ChatRequest = Box::leak(Box::new(payload.request()));
                        requests.push((payload, request));
                        request
                    }
                };
                let took = shift.run(|| subject.batch(variant, request, &runtime, iterations));
                format!("ns {}", took.as_nanos())
            }
            Err(error) => format!("error {error}"),
        };
        writeln!(output, "{reply}")?;
        output.flush()?;
    }
    Ok(())
}

/// A running `serve-batches` process of one build.
pub struct BatchServer {
    child: Child,
    input: ChildStdin,
    output: io::BufReader<ChildStdout>,
    /// Names the build in errors.
    name: String,
}

impl BatchServer {
    /// Starts `exe serve-batches` and reads its greeting; `name` says which
    /// build it is in messages.
    pub fn start(
        exe: &std::path::Path,
        tokenizer_path: &std::path::Path,
        name: &str,
    ) -> Result<Self, ServerError> {
        let mut child = Command::new(exe)
            .arg(SUBCOMMAND)
            .env("PERFWARDEN_TOKENIZER", tokenizer_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ServerError::Start {
                name: name.to_owned(),
                reason: format!("cannot run {}: {e}", exe.display()),
            })?;
        let input = child.stdin.take().expect("stdin is piped");
        let mut output = io::BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut greeting = String::new();
        let _ = output.read_line(&mut greeting);
        if greeting.trim_end() != GREETING {
            let _ = child.kill();
            let stderr = child
                .wait_with_output()
                .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
                .unwrap_or_default();
            return Err(ServerError::Start {
                name: name.to_owned(),
                reason: if greeting.is_empty() {
                    format!("it printed no greeting; its error output: {stderr}")
                } else {
                    format!(
                        "it greeted with '{}', not '{GREETING}'",
                        greeting.trim_end()
                    )
                },
            });
        }
        Ok(Self {
            child,
            input,
            output,
            name: name.to_owned(),
        })
    }

    /// Lets the server's main thread, which runs its batches, run on `cpu`
    /// only; false when the OS cannot pin it. Set from outside, so a build
    /// of any version is pinned the same way.
    pub fn run_on(&self, cpu: usize) -> bool {
        crate::affinity::restrict_thread_to(self.child.id(), &[cpu])
    }

    /// Runs one batch of `benchmark` in the server and returns its time.
    pub fn batch(&mut self, benchmark: &str, iterations: usize) -> Result<Duration, ServerError> {
        let failed = |reason: String| ServerError::Batch {
            name: self.name.clone(),
            reason,
        };
        writeln!(self.input, "batch {benchmark} {iterations}")
            .and_then(|()| self.input.flush())
            .map_err(|e| failed(format!("it stopped reading requests: {e}")))?;
        let mut reply = String::new();
        match self.output.read_line(&mut reply) {
            Ok(0) => Err(failed("it exited".to_owned())),
            Ok(_) => parse_reply(&reply).map_err(|e| failed(e.to_string())),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

impl Drop for BatchServer {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit");
        let _ = self.input.flush();
        let _ = self.child.wait();
    }
}

/// A build's batch server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot start the {name} build's batch server: {reason}")]
    Start { name: String, reason: String },
    #[error("the {name} build's batch server failed: {reason}")]
    Batch { name: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_or_say_what_is_expected() {
        assert_eq!(
            parse_request("batch medium/async 250\n"),
            Ok(Request::Batch {
                payload: Payload::Medium,
                variant: Variant::Async,
                iterations: 250
            })
        );
        assert_eq!(parse_request("quit"), Ok(Request::Quit));
        assert_eq!(
            parse_request("batch huge/sync 1"),
            Err(ProtocolError::UnknownBenchmark("huge/sync".into()))
        );
        assert_eq!(
            parse_request("batch small/sync 0"),
            Err(ProtocolError::Iterations("0".into()))
        );
        assert_eq!(
            parse_request("batch small/sync -3"),
            Err(ProtocolError::Iterations("-3".into()))
        );
        assert_eq!(
            parse_request("run small/sync 3"),
            Err(ProtocolError::UnknownRequest("run small/sync 3".into()))
        );
        assert!(matches!(
            parse_request(""),
            Err(ProtocolError::UnknownRequest(_))
        ));
    }

    #[test]
    fn replies_parse_or_carry_the_servers_error() {
        assert_eq!(
            parse_reply("ns 1234567\n"),
            Ok(Duration::from_nanos(1_234_567))
        );
        assert_eq!(
            parse_reply("error unknown benchmark 'x'"),
            Err(ProtocolError::Failed("unknown benchmark 'x'".into()))
        );
        assert_eq!(
            parse_reply("ns 1.5"),
            Err(ProtocolError::Reply("ns 1.5".into()))
        );
        assert_eq!(
            parse_reply("Usage: perfwarden <COMMAND>"),
            Err(ProtocolError::Reply("Usage: perfwarden <COMMAND>".into()))
        );
    }

    #[test]
    fn every_served_benchmark_parses_back() {
        let all = benchmarks();
        assert_eq!(all.len(), 6);
        for benchmark in all {
            assert!(matches!(
                parse_request(&format!("batch {benchmark} 1")),
                Ok(Request::Batch { .. })
            ));
        }
    }
}
