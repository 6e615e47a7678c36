//! `perfwarden report`: the pipeline for one run, stage by stage —
//! measure, store, judge, diagnose, compare, render — and the files it writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::chat::MistralTokenizer;
use crate::diagnose::RealWrapper;
use crate::diagnose::probes::{self, ProbeResult};
use crate::judge::compare::{self, Comparison, RunFigures};
use crate::judge::contract::Contract;
use crate::judge::judge_with_remeasure;
use crate::judge::verdict::{CaseEvidence, ContractVerdict, Status};
use crate::measure::machine_lock::MachineLock;
use crate::measure::paired::{PairedSamples, SamplingPlan};
use crate::measure::payload::{Payload, Variant, benchmark_id};
use crate::measure::run::{self as measure_run, Progress, RunOptions};
use crate::measure::{MeasureError, environment};
use crate::render::dashboard;
use crate::render::report::{self as render_report, ReportData};
use crate::store::{
    CaseRow, CheckRow, ComparisonRow, Judgement, Measurement, RunInfo, Store, StoreError, Tool,
    VerdictRow,
};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Measure(#[from] MeasureError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "no run is stored yet in this database; run `perfwarden report` (without --no-measure) first"
    )]
    NoRuns,
    #[error("cannot write the report to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The warning for a database that should hold a history and holds no run.
pub fn missing_history(database_url: &str) -> String {
    format!(
        "no stored history was found in {} although it was expected (--expect-history): every comparison with the base is missing. The history was lost (an evicted Actions cache, a wrong DATABASE_URL) unless this is the very first run; keep it in a durable store (README, \"Keeping the history in CI\")",
        crate::store::redact_url(database_url)
    )
}

/// How `report` gets its run.
pub enum Source {
    /// Measure the checkout now.
    Measure(RunOptions),
    /// A stored run (the latest when `None`).
    Stored(Option<i64>),
}

pub struct ReportOptions {
    pub source: Source,
    pub contract: Contract,
    pub out_dir: PathBuf,
    /// The branch whose latest run is the base when the run names no base commit.
    pub base_branch: Option<String>,
    pub artifact_url: Option<String>,
    pub dashboard_url: Option<String>,
    /// How many stored runs the dashboard shows.
    pub history: u32,
    /// Problems found before the run (e.g. a history that should exist and
    /// does not), shown at the top of the report.
    pub warnings: Vec<String>,
}

pub struct ReportOutcome {
    pub data: ReportData,
    pub files: Vec<PathBuf>,
}

impl ReportOutcome {
    /// The contract holds and nothing regressed.
    pub fn holds(&self) -> bool {
        self.data
            .verdict()
            .is_some_and(|v| v.status == Status::Pass.label())
            && self.data.regressions().is_empty()
    }
}

fn value(measurements: &[Measurement], tool: Tool, benchmark: &str, metric: &str) -> Option<f64> {
    measurements
        .iter()
        .find(|m| m.tool == tool && m.benchmark == benchmark && m.metric == metric)
        .and_then(|m| m.value)
}

fn evidence(
    contract: &Contract,
    measurements: &[Measurement],
    paired: &[(Payload, PairedSamples)],
) -> Vec<CaseEvidence> {
    let pair = |tool, payload, metric| {
        let b = value(
            measurements,
            tool,
            &benchmark_id(payload, contract.baseline),
            metric,
        )?;
        let c = value(
            measurements,
            tool,
            &benchmark_id(payload, contract.candidate),
            metric,
        )?;
        Some((b, c))
    };
    contract
        .cases
        .iter()
        .map(|case| CaseEvidence {
            samples: paired
                .iter()
                .find(|(p, _)| *p == case.payload)
                .map(|(_, s)| s.clone())
                .unwrap_or_default(),
            literal_means: pair(Tool::Spec, case.payload, "mean"),
            instructions: pair(Tool::Callgrind, case.payload, "instructions"),
        })
        .collect()
}

async fn stored_paired(
    store: &Store,
    run_id: i64,
    contract: &Contract,
) -> Result<Vec<(Payload, PairedSamples)>, StoreError> {
    let mut out = Vec::new();
    for case in &contract.cases {
        let side = |variant| benchmark_id(case.payload, variant);
        let baseline = store
            .samples(run_id, Tool::Paired, &side(contract.baseline))
            .await?;
        let candidate = store
            .samples(run_id, Tool::Paired, &side(contract.candidate))
            .await?;
        out.push((
            case.payload,
            PairedSamples {
                batch_iterations: 0,
                baseline_ns: baseline.iter().map(|s| s.total_ns / s.iterations).collect(),
                candidate_ns: candidate
                    .iter()
                    .map(|s| s.total_ns / s.iterations)
                    .collect(),
            },
        ));
    }
    Ok(out)
}

fn verdict_row(verdict: &ContractVerdict, contract_hash: &str) -> VerdictRow {
    VerdictRow {
        contract: verdict.contract.clone(),
        contract_hash: contract_hash.to_owned(),
        status: verdict.status.label().into(),
        limit: verdict.limit,
        confidence: verdict.confidence,
        judged_at_ms: environment::now_ms(),
        cases: verdict
            .cases
            .iter()
            .map(|c| CaseRow {
                case_name: c.case.clone(),
                payload: c.payload.name().into(),
                payload_bytes: c.payload_bytes as i64,
                baseline_ns: c.baseline_ns,
                candidate_ns: c.candidate_ns,
                overhead: c.overhead,
                ci_low: c.ci_low,
                ci_high: c.ci_high,
                status: c.status.label().into(),
                pairs: c.pairs as i64,
                literal_overhead: c.literal_overhead,
                instructions_baseline: c.instructions_baseline,
                instructions_candidate: c.instructions_candidate,
                instruction_overhead: c.instruction_overhead,
            })
            .collect(),
    }
}

fn check_row(probe: &ProbeResult) -> CheckRow {
    CheckRow {
        check_id: probe.check.id().into(),
        status: probe.status.label().into(),
        evidence: probe.evidence.clone(),
        figures: serde_json::to_string(&probe.figures).unwrap_or_else(|_| "{}".into()),
    }
}

fn comparison_row(c: &Comparison) -> ComparisonRow {
    ComparisonRow {
        base_run_id: c.base_run_id,
        tool: c.tool.name().into(),
        benchmark: c.benchmark.clone(),
        metric: c.metric.clone(),
        head: c.head,
        base: c.base,
        change: c.change,
        threshold: c.threshold,
        learned: c.learned,
        status: c.status.label().into(),
    }
}

/// The async-overhead probe from a run's callgrind figures (smallest payload first).
fn overhead_probe(measurements: &[Measurement]) -> ProbeResult {
    let counts: Vec<(Payload, f64, f64)> = Payload::ALL
        .into_iter()
        .filter_map(|p| {
            let sync = value(
                measurements,
                Tool::Callgrind,
                &benchmark_id(p, Variant::Sync),
                "instructions",
            )?;
            let asynchronous = value(
                measurements,
                Tool::Callgrind,
                &benchmark_id(p, Variant::Async),
                "instructions",
            )?;
            Some((p, sync, asynchronous))
        })
        .collect();
    probes::async_overhead(&counts)
}

fn write(path: &Path, contents: &str) -> Result<(), ReportError> {
    let failed = |source| ReportError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    // Write to a new file beside it, then rename: a reader never sees half a
    // file. The staged file is created exclusively under a fresh name, so a
    // symbolic link planted where it would go is never followed, and the
    // rename replaces a link at `path` rather than writing through it.
    let name = path
        .file_name()
        .map_or("report".into(), |n| n.to_string_lossy());
    let mut staged = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(failed)?;
    std::io::Write::write_all(&mut staged, contents.as_bytes()).map_err(failed)?;
    staged
        .persist(path)
        .map(|_| ())
        .map_err(|e| failed(e.error))
}

/// Runs the pipeline and writes `<out>/runs/<id>/`, `<out>/latest/` and
/// `<out>/dashboard/`.
pub fn report(
    options: &ReportOptions,
    store: &Store,
    runtime: &tokio::runtime::Runtime,
    tokenizer: Option<&'static MistralTokenizer>,
    progress: &mut dyn FnMut(Progress),
) -> Result<ReportOutcome, ReportError> {
    let contract = &options.contract;
    // Held until the report is written: judging re-measures and the checklist
    // probes run the wrapper too.
    let mut held_lock = None;
    let (run_id, live) = match &options.source {
        Source::Measure(run_options) => {
            let tokenizer = tokenizer.expect("measuring needs the tokenizer");
            let lock = held_lock.insert(MachineLock::acquire(progress)?);
            let run = measure_run::measure(run_options, tokenizer, lock, progress)?;
            let id = runtime.block_on(store.insert_run(&run))?;
            (id, Some((tokenizer, run_options.quick)))
        }
        Source::Stored(Some(id)) => (*id, None),
        Source::Stored(None) => (
            runtime
                .block_on(store.runs(Some(1)))?
                .first()
                .ok_or(ReportError::NoRuns)?
                .id,
            None,
        ),
    };
    let run: RunInfo = runtime.block_on(store.run(run_id))?;
    let measurements = runtime.block_on(store.measurements(run_id))?;
    let paired = runtime.block_on(stored_paired(store, run_id, contract))?;

    let stored = runtime.block_on(store.judgement(run_id))?;
    // Nothing stored is replaced: a verdict is reused for the same contract
    // content (hash) and judged anew for any other; the checklist and the
    // comparisons belong to the run and are computed only when missing.
    let stored_verdict = stored
        .verdicts
        .iter()
        .find(|v| v.contract_hash == contract.hash)
        .filter(|_| live.is_none())
        .cloned();
    let mut new_samples = Vec::new();
    let verdict = match stored_verdict {
        Some(verdict) => verdict,
        None => {
            progress(Progress::Stage {
                index: 1,
                total: 3,
                name: "judging the contract",
            });
            let evidence = evidence(contract, &measurements, &paired);
            let verdict = match live {
                Some((tokenizer, quick)) => {
                    let plan = SamplingPlan::for_mode(quick);
                    let budget = Duration::from_secs(if quick { 10 } else { 60 });
                    let mut more = |case: &crate::judge::contract::Case| {
                        let request: &'static _ = Box::leak(Box::new(case.payload.request()));
                        let samples = measure_run::sample_contract(tokenizer, request, plan);
                        new_samples.extend(measure_run::paired_raw_samples(case.payload, &samples));
                        samples
                    };
                    judge_with_remeasure(contract, evidence, &mut more, budget)
                }
                None => judge_with_remeasure(
                    contract,
                    evidence,
                    &mut |_| PairedSamples::default(),
                    Duration::ZERO,
                ),
            };
            verdict_row(&verdict, &contract.hash)
        }
    };
    let mut checklist: Vec<CheckRow> = if stored.checklist.is_empty() {
        progress(Progress::Stage {
            index: 2,
            total: 3,
            name: "walking the spec's checklist",
        });
        let mut checklist = vec![overhead_probe(&measurements)];
        match live {
            Some((tokenizer, quick)) => {
                let (calls, submissions, dispatches) =
                    if quick { (12, 8, 100) } else { (50, 16, 300) };
                checklist.push(probes::executor_per_request(&RealWrapper, tokenizer, calls));
                checklist.push(probes::single_worker(&RealWrapper, tokenizer, submissions));
                checklist.push(probes::warm_up(
                    &RealWrapper,
                    tokenizer,
                    dispatches,
                    Duration::from_millis(2),
                ));
            }
            None => {
                for check in [
                    probes::Check::ExecutorPerRequest,
                    probes::Check::SingleWorker,
                    probes::Check::WarmUp,
                ] {
                    checklist.push(ProbeResult::skipped(check, "observed only while measuring; run `perfwarden report` without --no-measure"));
                }
            }
        }
        checklist.iter().map(check_row).collect()
    } else {
        stored.checklist
    };
    // The spec's order, whether computed now or read back.
    checklist.sort_by_key(|c| probes::Check::parse(&c.check_id));
    let (comparisons, base_run) = match stored.comparisons.first() {
        Some(c) => {
            let base_run = runtime.block_on(store.run(c.base_run_id))?;
            (stored.comparisons, Some(base_run))
        }
        None => {
            progress(Progress::Stage {
                index: 3,
                total: 3,
                name: "comparing with the base",
            });
            let base = runtime.block_on(store.latest_base_run(
                run.base_commit.as_deref(),
                options.base_branch.as_deref(),
                run_id,
            ))?;
            let comparisons = match &base {
                Some(base) => {
                    let history: Vec<RunFigures> = runtime
                        .block_on(store.trend(200))?
                        .iter()
                        .filter(|p| p.run.id < run_id)
                        .map(|p| RunFigures {
                            run_id: p.run.id,
                            machine_id: p.run.machine_id.clone(),
                            values: p
                                .figures
                                .iter()
                                .map(|(t, b, m, v)| ((*t, b.clone(), m.clone()), *v))
                                .collect(),
                        })
                        .collect();
                    let base_measurements = runtime.block_on(store.measurements(base.id))?;
                    compare::compare(
                        &RunFigures::new(run.id, &run.machine_id, &measurements),
                        &RunFigures::new(base.id, &base.machine_id, &base_measurements),
                        &history,
                    )
                }
                None => Vec::new(),
            };
            (comparisons.iter().map(comparison_row).collect(), base)
        }
    };
    let judgement = Judgement {
        verdicts: vec![verdict],
        checklist,
        comparisons,
    };
    runtime.block_on(store.save_judgement(run_id, &judgement, &new_samples))?;
    let paired = if new_samples.is_empty() {
        paired
    } else {
        runtime.block_on(stored_paired(store, run_id, contract))?
    };
    let data = ReportData {
        run,
        judgement,
        contract: contract.id.clone(),
        base_run,
        distributions: paired
            .iter()
            .map(|(p, s)| {
                let ratios = s
                    .baseline_ns
                    .iter()
                    .zip(&s.candidate_ns)
                    .map(|(b, c)| c / b - 1.0)
                    .collect();
                (p.name().to_owned(), ratios)
            })
            .collect(),
        artifact_url: options.artifact_url.clone(),
        dashboard_url: options.dashboard_url.clone(),
        warnings: options.warnings.clone(),
    };
    let files = write_outputs(options, store, runtime, &data)?;
    Ok(ReportOutcome { data, files })
}

fn write_outputs(
    options: &ReportOptions,
    store: &Store,
    runtime: &tokio::runtime::Runtime,
    data: &ReportData,
) -> Result<Vec<PathBuf>, ReportError> {
    let out = &options.out_dir;
    let run_dir = out.join("runs").join(data.run.id.to_string());
    let summary = render_report::summary_markdown(data);
    let verdict = serde_json::to_string_pretty(&render_report::verdict_json(data))
        .expect("a JSON value serializes");
    let charts = render_report::run_charts(data);
    let mut files = Vec::new();
    for dir in [run_dir.clone(), out.join("latest")] {
        let mut put = |name: &str, contents: &str| -> Result<(), ReportError> {
            let path = dir.join(name);
            write(&path, contents)?;
            files.push(path);
            Ok(())
        };
        put("summary.md", &summary)?;
        put("verdict.json", &verdict)?;
        for (name, svg) in &charts {
            put(&format!("charts/{name}"), svg)?;
        }
    }
    let points = runtime.block_on(store.trend(options.history))?;
    let limit = data.verdict().map_or(options.contract.limit, |v| v.limit);
    let trends = dashboard::trend_charts(&points, limit);
    for (name, svg) in &trends {
        let path = out.join("latest/charts").join(format!("{name}.svg"));
        write(&path, svg)?;
        files.push(path);
    }
    let dashboard_dir = out.join("dashboard");
    let page = dashboard_dir
        .join("runs")
        .join(format!("{}.html", data.run.id));
    write(&page, &render_report::run_page(data, &charts, &[]))?;
    files.push(page);
    let run_pages: BTreeSet<i64> = std::fs::read_dir(dashboard_dir.join("runs"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.path().file_stem()?.to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let index = dashboard_dir.join("index.html");
    write(
        &index,
        &dashboard::dashboard(&points, &data.contract, limit, &run_pages),
    )?;
    files.push(index);
    Ok(files)
}
