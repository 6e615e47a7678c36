//! `perfwarden run`: both benchmark suites, the spec's method and every
//! contract's metric on the current checkout, gathered into one [`NewRun`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::MeasureError;
use super::batch_noise::RunNoise;
use super::callgrind::{self, InstructionCounts};
use super::criterion::{self, WallClock};
use super::decompose;
use super::environment;
use super::machine_lock::MachineLock;
use super::noise::{HostNoise, STEAL_MAX};
use super::payload::{Payload, Variant, benchmark_id};
use super::spec_method::{self, SPEC_ITERATIONS};
use super::subject::ChatTemplate;
use crate::chat::{
    ChatRequest, MistralTokenizer, apply_mistral_chat_template, async_apply_mistral_chat_template,
};
use crate::judge::contract::{Case, Contract};
use crate::metric::{self, CaseSamples, ChildProbe, MeasureContext, Metric};
use crate::store::{BenchmarkProfile, Measurement, NewRun, RawSample, SeriesEnvironment, Tool};

/// The gungraun runner must match the library version exactly.
pub const GUNGRAUN_VERSION: &str = "0.20.0";

/// What `perfwarden run` reports while it works.
pub enum Progress<'a> {
    /// Stage `index` of `total` begins.
    Stage {
        index: usize,
        total: usize,
        name: &'a str,
    },
    /// A line of a tool's output.
    Output(&'a str),
    /// Something the user must know (a skipped measurement).
    Warning(&'a str),
}

pub struct RunOptions {
    pub checkout_dir: PathBuf,
    pub quick: bool,
    pub tokenizer_path: PathBuf,
    /// The perfwarden binary, found when it started (the benchmarks may
    /// rebuild the file it ran from): peak memory is measured in fresh
    /// processes of it, and not at all without it.
    pub perfwarden_exe: Option<PathBuf>,
    pub base_commit: Option<String>,
    pub pr_number: Option<u64>,
}

/// Runs `command`, forwarding its output lines; fails with its last lines.
pub(crate) fn run_tool(
    mut command: Command,
    what: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), MeasureError> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| MeasureError::Tool(format!("cannot start {what}: {e}")))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    let err_sender = sender.clone();
    let err_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_sender.send(line);
        }
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    let out_thread = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut tail = std::collections::VecDeque::new();
    for line in receiver {
        progress(Progress::Output(&line));
        tail.push_back(line);
        if tail.len() > 12 {
            tail.pop_front();
        }
    }
    let _ = (err_thread.join(), out_thread.join());
    let status = child
        .wait()
        .map_err(|e| MeasureError::Tool(format!("{what}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(MeasureError::Tool(format!(
            "{what} failed ({status}):\n{}",
            Vec::from(tail).join("\n")
        )))
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// A cargo command without the variables `cargo run` set for this program.
/// Passed on, they read as a changed environment to build scripts that watch
/// them (ring's watches `CARGO_MANIFEST_DIR` and `CARGO_PKG_*`): every
/// `cargo run -- report` rebuilt ring and all that depends on it twice, for
/// the benchmarks and then for itself again, about two minutes a report.
pub(crate) fn cargo_command() -> Command {
    let mut command = Command::new(cargo());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_run) {
            command.env_remove(name);
        }
    }
    command
}

/// Whether Cargo sets `name` for the crates, build scripts or programs it
/// compiles and runs (its documented list), as opposed to a variable that
/// configures Cargo itself.
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
        .join("bin")
}

fn runner_version(path: &Path) -> Option<String> {
    let output = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace().last().map(str::to_owned)
}

/// Finds gungraun-runner 0.20.0, installing it with `cargo install` when it
/// is missing or another version.
pub fn ensure_gungraun_runner(progress: &mut dyn FnMut(Progress)) -> Result<PathBuf, MeasureError> {
    let installed = cargo_bin_dir().join("gungraun-runner");
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("gungraun-runner"))
            .find(|p| p.is_file())
    });
    for candidate in on_path.iter().chain([&installed]) {
        if runner_version(candidate).as_deref() == Some(GUNGRAUN_VERSION) {
            return Ok(candidate.clone());
        }
    }
    progress(Progress::Warning(&format!(
        "gungraun-runner {GUNGRAUN_VERSION} is not installed; installing it with `cargo install gungraun-runner --version {GUNGRAUN_VERSION} --locked` (about 2 minutes)"
    )));
    let mut install = cargo_command();
    install.args([
        "install",
        "gungraun-runner",
        "--version",
        GUNGRAUN_VERSION,
        "--locked",
    ]);
    run_tool(install, "cargo install gungraun-runner", progress)?;
    match runner_version(&installed) {
        Some(v) if v == GUNGRAUN_VERSION => Ok(installed),
        other => Err(MeasureError::Tool(format!(
            "after installing, {} reports version {other:?}; install gungraun-runner {GUNGRAUN_VERSION} by hand",
            installed.display()
        ))),
    }
}

/// Runs the Criterion suite; its JSON goes to a fresh directory under `scratch`.
pub fn run_criterion(
    options: &RunOptions,
    scratch: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<WallClock>, MeasureError> {
    let home = scratch.join("criterion");
    let mut command = cargo_command();
    command
        .current_dir(&options.checkout_dir)
        .args(["bench", "--bench", "wallclock", "--", "--noplot"])
        .env("CRITERION_HOME", &home)
        .env("PERFWARDEN_TOKENIZER", &options.tokenizer_path);
    if options.quick {
        command.args([
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.5",
            "--sample-size",
            "10",
        ]);
    }
    run_tool(
        command,
        "the Criterion benchmarks (cargo bench --bench wallclock)",
        progress,
    )?;
    criterion::read_output(&home)
}

/// How many functions a stored profile keeps, by self and by inclusive count.
pub const PROFILE_TOP: usize = 50;

/// Runs the gungraun suite under callgrind: its counts, and each
/// benchmark's profile (the top functions).
pub fn run_gungraun(
    options: &RunOptions,
    runner: &Path,
    scratch: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<InstructionCounts>, Vec<BenchmarkProfile>), MeasureError> {
    let home = scratch.join("gungraun");
    let mut command = cargo_command();
    command
        .current_dir(&options.checkout_dir)
        .args([
            "bench",
            "--bench",
            "instructions",
            "--",
            "--save-summary=json",
        ])
        .env("GUNGRAUN_HOME", &home)
        .env("GUNGRAUN_RUNNER", runner)
        .env("GUNGRAUN_VALGRIND_BIN", environment::valgrind_program())
        .env("PERFWARDEN_TOKENIZER", &options.tokenizer_path);
    run_tool(
        command,
        "the callgrind benchmarks (cargo bench --bench instructions)",
        progress,
    )?;
    Ok((
        callgrind::read_output(&home)?,
        callgrind::read_profiles(&home, PROFILE_TOP)?,
    ))
}

fn wall_clock_measurements(results: &[WallClock], run: &mut NewRun) {
    for r in results {
        let figures = [
            ("mean", r.mean_ns),
            ("median", r.median_ns),
            ("std_dev", r.std_dev_ns),
            ("ci_low", r.mean_ci_low_ns),
            ("ci_high", r.mean_ci_high_ns),
        ];
        for (metric, value) in figures {
            run.measurements.push(measurement(
                Tool::Criterion,
                &r.benchmark,
                metric,
                Some(value),
                "ns",
            ));
        }
        run.measurements.push(measurement(
            Tool::Criterion,
            &r.benchmark,
            "samples",
            Some(r.samples.len() as f64),
            "count",
        ));
        run.samples.extend(r.samples.iter().map(|s| RawSample {
            tool: Tool::Criterion,
            benchmark: r.benchmark.clone(),
            iterations: s.iterations,
            total_ns: s.total_ns,
        }));
    }
}

/// The callgrind figures stored per benchmark, with their units.
pub const CALLGRIND_METRICS: [(&str, &str); 6] = [
    ("instructions", "instructions"),
    ("estimated_cycles", "cycles"),
    ("l1_hits", "count"),
    ("ll_hits", "count"),
    ("ram_hits", "count"),
    ("total_rw", "count"),
];

fn callgrind_measurements(results: Option<&[InstructionCounts]>, run: &mut NewRun) {
    for payload in Payload::ALL {
        for variant in Variant::ALL {
            let benchmark = benchmark_id(payload, variant);
            let counts = results.and_then(|r| r.iter().find(|c| c.benchmark == benchmark));
            for (metric, unit) in CALLGRIND_METRICS {
                let value = counts.and_then(|c| match metric {
                    "instructions" => Some(c.instructions),
                    "estimated_cycles" => c.estimated_cycles,
                    "l1_hits" => c.l1_hits,
                    "ll_hits" => c.ll_hits,
                    "ram_hits" => c.ram_hits,
                    _ => c.total_rw,
                });
                run.measurements.push(measurement(
                    Tool::Callgrind,
                    &benchmark,
                    metric,
                    value.map(|v| v as f64),
                    unit,
                ));
            }
        }
    }
}

fn measurement(
    tool: Tool,
    benchmark: &str,
    metric: &str,
    value: Option<f64>,
    unit: &str,
) -> Measurement {
    Measurement {
        tool,
        benchmark: benchmark.to_owned(),
        metric: metric.to_owned(),
        value,
        unit: unit.to_owned(),
    }
}

/// The sync function as a batch for the paired sampler.
pub fn sync_batch(
    tokenizer: &'static MistralTokenizer,
    request: &'static ChatRequest,
) -> impl FnMut(usize) -> Duration {
    move |iterations: usize| {
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(apply_mistral_chat_template(tokenizer, request).ok());
        }
        start.elapsed()
    }
}

/// The async wrapper as a batch: unboxed, untraced calls, as a server makes them.
pub fn async_batch<'r>(
    tokenizer: &'static MistralTokenizer,
    request: &'static ChatRequest,
    runtime: &'r tokio::runtime::Runtime,
) -> impl FnMut(usize) -> Duration + 'r {
    move |iterations: usize| {
        runtime.block_on(async {
            let start = Instant::now();
            for _ in 0..iterations {
                std::hint::black_box(
                    async_apply_mistral_chat_template(tokenizer, request)
                        .await
                        .ok(),
                );
            }
            start.elapsed()
        })
    }
}

/// What the metrics need to measure `subject` as `options` say.
pub fn measure_context(subject: ChatTemplate, options: &RunOptions) -> MeasureContext {
    MeasureContext {
        subject: Box::leak(Box::new(subject)),
        quick: options.quick,
        child: options.perfwarden_exe.clone().map(|exe| ChildProbe {
            exe,
            tokenizer: options.tokenizer_path.clone(),
        }),
    }
}

/// A case's samples as stored: `paired` samples under the case's keys
/// ([`metric::sample_keys`]), one value each.
pub fn case_raw_samples(contract: &Contract, case: &Case, samples: &CaseSamples) -> Vec<RawSample> {
    let (judged, other, tail) = metric::sample_keys(contract, case);
    let series = [
        (Some(judged), &samples.judged),
        (other, &samples.other),
        (Some(tail), &samples.tail),
    ];
    series
        .into_iter()
        .filter_map(|(key, values)| Some((key?, values)))
        .flat_map(|(key, values)| {
            values.iter().map(move |value| RawSample {
                tool: Tool::Paired,
                benchmark: key.clone(),
                iterations: 1.0,
                total_ns: *value,
            })
        })
        .collect()
}

/// What the OS said about a case's batches, stored under its judged key;
/// `None` for a case measured without the paired sampler.
pub fn case_environment(
    contract: &Contract,
    case: &Case,
    samples: &CaseSamples,
) -> Option<SeriesEnvironment> {
    (!samples.environment.is_empty()).then(|| SeriesEnvironment {
        benchmark: metric::sample_keys(contract, case).0,
        log: samples.environment.clone(),
    })
}

/// Measures every case of every contract, each series once: a case whose
/// samples another contract already took is not measured again. Returns
/// the samples and what the OS said about their batches.
pub fn measure_contracts(
    context: &MeasureContext,
    contracts: &[Contract],
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<RawSample>, Vec<SeriesEnvironment>), MeasureError> {
    let mut taken = std::collections::HashSet::new();
    let mut raw = Vec::new();
    let mut environment = Vec::new();
    for contract in contracts {
        if contract.metric == Metric::Instructions {
            continue;
        }
        for case in &contract.cases {
            let (judged, ..) = metric::sample_keys(contract, case);
            if !taken.insert(judged) {
                continue;
            }
            let started = Instant::now();
            let request: &'static ChatRequest = Box::leak(Box::new(case.payload.request()));
            let samples = metric::measure(context, contract, case, request)?;
            progress(Progress::Output(&format!(
                "{} {} ({}, {} B): {} samples in {:.1?}",
                contract.id,
                case.name,
                contract.metric.name(),
                case.payload.bytes,
                samples.judged.len(),
                started.elapsed()
            )));
            raw.extend(case_raw_samples(contract, case, &samples));
            environment.extend(case_environment(contract, case, &samples));
        }
    }
    Ok((raw, environment))
}

/// Measures the checkout: Criterion, callgrind (when valgrind is present),
/// the spec's method and each contract's metric. `lock` is the machine's
/// measuring lock, held by the caller for as long as it measures.
pub fn measure(
    options: &RunOptions,
    contracts: &[Contract],
    tokenizer: &'static MistralTokenizer,
    lock: &MachineLock,
    progress: &mut dyn FnMut(Progress),
) -> Result<NewRun, MeasureError> {
    let started_at_ms = environment::now_ms();
    let checkout = environment::checkout(&options.checkout_dir);
    let machine = environment::machine();
    let mut run = NewRun {
        commit: checkout.commit,
        branch: checkout.branch,
        base_commit: options.base_commit.clone(),
        pr_number: options.pr_number,
        dirty: checkout.dirty,
        quick: options.quick,
        machine: machine.clone(),
        started_at_ms,
        finished_at_ms: started_at_ms,
        notes: Vec::new(),
        measurements: Vec::new(),
        samples: Vec::new(),
        profiles: Vec::new(),
        environment: Vec::new(),
    };
    let scratch = lock.scratch_dir()?;
    let total = 5;

    progress(Progress::Stage {
        index: 1,
        total,
        name: "wall clock (Criterion)",
    });
    wall_clock_measurements(&run_criterion(options, scratch.path(), progress)?, &mut run);

    progress(Progress::Stage {
        index: 2,
        total,
        name: "instruction counts (gungraun, callgrind)",
    });
    if machine.valgrind.is_none() {
        let note = "valgrind is not installed: instruction counts were NOT measured and are stored as missing. Install valgrind (e.g. `apt-get install valgrind`) and run again.";
        progress(Progress::Warning(note));
        run.notes.push(note.to_owned());
        callgrind_measurements(None, &mut run);
    } else {
        let runner = ensure_gungraun_runner(progress)?;
        let (counts, profiles) = run_gungraun(options, &runner, scratch.path(), progress)?;
        callgrind_measurements(Some(&counts), &mut run);
        run.profiles = profiles;
    }

    progress(Progress::Stage {
        index: 3,
        total,
        name: "the spec's method (10 iterations, mean)",
    });
    for payload in Payload::ALL {
        let request: &'static ChatRequest = Box::leak(Box::new(payload.request()));
        let comparison =
            spec_method::measure(tokenizer, request, SPEC_ITERATIONS).map_err(|e| {
                MeasureError::Tool(format!(
                    "the {} payload failed to tokenize: {e}",
                    payload.name()
                ))
            })?;
        for (variant, stats) in [
            (Variant::Sync, &comparison.sync),
            (Variant::Async, &comparison.r#async),
        ] {
            let benchmark = benchmark_id(payload, variant);
            for (metric, value) in [
                ("mean", stats.mean_ns),
                ("median", stats.median_ns),
                ("stdev", stats.stdev_ns),
            ] {
                run.measurements.push(measurement(
                    Tool::Spec,
                    &benchmark,
                    metric,
                    Some(value),
                    "ns",
                ));
            }
            run.samples.extend(stats.times_ns.iter().map(|t| RawSample {
                tool: Tool::Spec,
                benchmark: benchmark.clone(),
                iterations: 1.0,
                total_ns: *t,
            }));
        }
    }

    progress(Progress::Stage {
        index: 4,
        total,
        name: "the contracts' metrics (paired samples, CPU time, event loop, load, worst case)",
    });
    let context = measure_context(ChatTemplate::new(tokenizer), options);
    if context.child.is_none() && contracts.iter().any(|c| c.metric == Metric::PeakMemory) {
        let note = "peak memory was NOT measured: its trials run in fresh perfwarden processes, and the perfwarden binary was not found";
        progress(Progress::Warning(note));
        run.notes.push(note.to_owned());
    }
    let (measured, noise) = HostNoise::over(|| measure_contracts(&context, contracts, progress));
    let (samples, environment) = measured?;
    run.samples.extend(samples);
    let noise = RunNoise::over_looks(noise, environment.iter().map(|s| &s.log));
    run.environment = environment;
    if let Some(sampling) = noise.sampling {
        progress(Progress::Output(&format!(
            "environment while sampling: {sampling}"
        )));
    }
    if let Some(reason) = noise.too_noisy_at(STEAL_MAX) {
        progress(Progress::Warning(&format!(
            "the host was too noisy while the contracts were measured ({reason}): a timing contract that would fail is INCONCLUSIVE instead"
        )));
    }
    run.measurements.extend(noise.measurements());

    progress(Progress::Stage {
        index: 5,
        total,
        name: "where the async call's time goes (traced calls)",
    });
    let calls = if options.quick { 20 } else { 100 };
    for payload in Payload::ALL {
        let request: &'static ChatRequest = Box::leak(Box::new(payload.request()));
        if let Some(parts) = decompose::measure(tokenizer, request, calls) {
            let benchmark = benchmark_id(payload, Variant::Async);
            for (metric, value, unit) in parts.figures() {
                run.measurements.push(measurement(
                    Tool::Paired,
                    &benchmark,
                    metric,
                    Some(value),
                    unit,
                ));
            }
        }
    }

    run.finished_at_ms = environment::now_ms();
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_cargo_run_sets_is_held_back() {
        for set in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_MANIFEST_DIR",
            "CARGO_PRIMARY_PACKAGE",
            "OUT_DIR",
        ] {
            assert!(set_by_cargo_run(set), "{set}");
        }
        for kept in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO_PROFILE_RELEASE_DEBUG",
            "RUSTFLAGS",
        ] {
            assert!(!set_by_cargo_run(kept), "{kept}");
        }
    }

    #[test]
    fn nested_cargo_does_not_inherit_this_package() {
        // `cargo test` sets these for this process, as `cargo run` does.
        for name in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME"] {
            assert!(
                std::env::var_os(name).is_some(),
                "{name} is unset: run this test with `cargo test`, which sets it"
            );
        }
        let removed: Vec<_> = cargo_command()
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_owned())
            .collect();
        for name in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME"] {
            assert!(removed.iter().any(|r| r == name), "{name} in {removed:?}");
        }
    }
}
