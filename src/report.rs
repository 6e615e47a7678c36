//! `perfwarden report`: the pipeline for one run, stage by stage —
//! measure, store, judge, diagnose, compare, render — and the files it writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::chat::MistralTokenizer;
use crate::diagnose::RealWrapper;
use crate::diagnose::probes::{self, ProbeResult};
use crate::diagnose::profile_diff::{self, WhereTimeWent};
use crate::judge::builds::BuildComparison;
use crate::judge::change_points;
use crate::judge::compare::{self, RunFigures};
use crate::judge::contract::{Case, Contract, Variants};
use crate::judge::judge_with_remeasure;
use crate::judge::verdict::{CaseEvidence, ContractVerdict};
use crate::measure::MeasureError;
use crate::measure::batch_noise::RunNoise;
use crate::measure::decompose::Decomposition;
use crate::measure::machine_lock::MachineLock;
use crate::measure::noise::{HostNoise, Snapshot};
use crate::measure::payload::{Payload, Variant, benchmark_id};
use crate::measure::run::{self as measure_run, Progress, RunOptions};
use crate::measure::subject::ChatTemplate;
use crate::metric::{self, CaseSamples, Metric};
use crate::render::charts::RunLinks;
use crate::render::dashboard;
use crate::render::report::{self as render_report, ReportData};
use crate::store::{Judgement, Measurement, RunInfo, Store, StoreError, Tool};

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
    /// Judged in this order; each has its section, check run and verdict.
    pub contracts: Vec<Contract>,
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
    /// Head against base built and measured side by side (`report --ci` on
    /// a pull request): stored with the run, in place of the comparison
    /// with stored history.
    pub build_comparison: Option<BuildComparison>,
}

pub struct ReportOutcome {
    pub data: ReportData,
    pub files: Vec<PathBuf>,
}

fn value(measurements: &[Measurement], tool: Tool, benchmark: &str, metric: &str) -> Option<f64> {
    measurements
        .iter()
        .find(|m| m.tool == tool && m.benchmark == benchmark && m.metric == metric)
        .and_then(|m| m.value)
}

/// A case's samples as stored under its keys; instruction counts come from
/// the run's callgrind figures.
async fn stored_samples(
    store: &Store,
    run_id: i64,
    contract: &Contract,
    case: &Case,
    measurements: &[Measurement],
) -> Result<CaseSamples, StoreError> {
    if let Variants::Compare {
        baseline,
        candidate,
    } = contract.variants
        && contract.metric == Metric::Instructions
    {
        return Ok(metric::instructions::samples(
            measurements,
            case,
            baseline,
            candidate,
        ));
    }
    let (judged, other, tail) = metric::sample_keys(contract, case);
    let read = |key: Option<String>| async move {
        let Some(key) = key else {
            return Ok(Vec::new());
        };
        Ok::<_, StoreError>(
            store
                .samples(run_id, Tool::Paired, &key)
                .await?
                .iter()
                .map(|s| s.total_ns / s.iterations)
                .collect(),
        )
    };
    Ok(CaseSamples {
        judged: read(Some(judged)).await?,
        other: read(other).await?,
        tail: read(Some(tail)).await?,
        environment: Default::default(),
    })
}

/// The figures beside a wall-clock comparison of the spec's payloads: the
/// spec's own 10-iteration means and the instruction counts.
fn evidence(
    contract: &Contract,
    case: &Case,
    samples: CaseSamples,
    measurements: &[Measurement],
) -> CaseEvidence {
    let pair = |tool, metric| {
        let Variants::Compare {
            baseline,
            candidate,
        } = contract.variants
        else {
            return None;
        };
        let payload = case.payload.as_spec()?;
        let b = value(measurements, tool, &benchmark_id(payload, baseline), metric)?;
        let c = value(
            measurements,
            tool,
            &benchmark_id(payload, candidate),
            metric,
        )?;
        Some((b, c))
    };
    let wall_clock = contract.metric == Metric::WallClock;
    CaseEvidence {
        samples,
        literal_means: pair(Tool::Spec, "mean").filter(|_| wall_clock),
        instructions: pair(Tool::Callgrind, "instructions").filter(|_| wall_clock),
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

/// Per decomposed payload, the async-over-sync wall-clock overhead a
/// verdict estimated for it, beside the decomposition.
fn end_to_end_decomposed(
    verdicts: &[ContractVerdict],
    decomposition: &[(String, Decomposition)],
) -> Vec<(String, f64, Decomposition)> {
    decomposition
        .iter()
        .filter_map(|(payload, parts)| {
            let estimate = verdicts
                .iter()
                .filter(|v| {
                    v.metric == Metric::WallClock
                        && v.judged == Variant::Async.name()
                        && v.other.as_deref() == Some(Variant::Sync.name())
                })
                .flat_map(|v| &v.cases)
                .find(|c| c.payload == *payload)?
                .estimate?;
            Some((payload.clone(), estimate, *parts))
        })
        .collect()
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
    let contracts = &options.contracts;
    // Held until the report is written: judging re-measures and the checklist
    // probes run the wrapper too.
    let mut held_lock = None;
    let (run_id, live) = match &options.source {
        Source::Measure(run_options) => {
            let tokenizer = tokenizer.expect("measuring needs the tokenizer");
            let lock = held_lock.insert(MachineLock::acquire(progress)?);
            let run = measure_run::measure(run_options, contracts, tokenizer, lock, progress)?;
            let id = runtime.block_on(store.insert_run(&run))?;
            (id, Some((tokenizer, run_options)))
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
    let stored = runtime.block_on(store.judgement(run_id))?;

    progress(Progress::Stage {
        index: 1,
        total: 3,
        name: "judging the contracts",
    });
    let context = live.map(|(tokenizer, run_options)| {
        measure_run::measure_context(ChatTemplate::new(tokenizer), run_options)
    });
    let stored_noise = RunNoise::from_measurements(&measurements);
    // Re-measuring is watched like the first measurement.
    let remeasuring = live.map(|_| Snapshot::take());
    let mut new_samples = Vec::new();
    let mut new_environment = Vec::new();
    // Each verdict, and whether it was judged now (and so is still to be
    // judged under the noise of every look).
    let mut judged = Vec::with_capacity(contracts.len());
    for contract in contracts {
        // Nothing stored is replaced: a verdict is reused for the same
        // contract content (hash) and judged anew for any other.
        let reused = stored
            .verdicts
            .iter()
            .find(|v| v.contract_hash == contract.hash)
            .filter(|_| live.is_none());
        if let Some(verdict) = reused {
            judged.push((verdict.clone(), false));
            continue;
        }
        let mut evidence = Vec::with_capacity(contract.cases.len());
        for case in &contract.cases {
            let samples =
                runtime.block_on(stored_samples(store, run_id, contract, case, &measurements))?;
            evidence.push(self::evidence(contract, case, samples, &measurements));
        }
        let verdict = match &context {
            Some(context) => {
                let budget = Duration::from_secs(if context.quick { 10 } else { 60 });
                let mut failure = None;
                let mut more = |case: &Case| {
                    let request: &'static _ = Box::leak(Box::new(case.payload.request()));
                    match metric::measure(context, contract, case, request) {
                        Ok(samples) => {
                            new_samples
                                .extend(measure_run::case_raw_samples(contract, case, &samples));
                            new_environment
                                .extend(measure_run::case_environment(contract, case, &samples));
                            samples
                        }
                        Err(e) => {
                            failure.get_or_insert(e);
                            CaseSamples::default()
                        }
                    }
                };
                let verdict = judge_with_remeasure(contract, evidence, &mut more, budget);
                if let Some(e) = failure {
                    return Err(e.into());
                }
                verdict
            }
            None => judge_with_remeasure(
                contract,
                evidence,
                &mut |_| CaseSamples::default(),
                Duration::ZERO,
            ),
        };
        judged.push((verdict, true));
    }
    // The score is over every batch the verdicts used: the first
    // measurement's and every re-measured look's.
    let noise = match remeasuring {
        Some(before) if !new_environment.is_empty() => {
            let remeasured = HostNoise::between(&before, &Snapshot::take());
            let host = match (stored_noise.host, remeasured) {
                (Some(first), Some(later)) => Some(first.then(&later)),
                (first, later) => first.or(later),
            };
            let first_look = runtime.block_on(store.environment(run_id))?;
            RunNoise::over_looks(
                host,
                first_look.iter().chain(&new_environment).map(|s| &s.log),
            )
        }
        _ => stored_noise,
    };
    let verdicts: Vec<ContractVerdict> = judged
        .into_iter()
        .map(|(verdict, now)| {
            if now {
                verdict.under_noise(&noise)
            } else {
                verdict
            }
        })
        .collect();
    let live = live.map(|(tokenizer, run_options)| (tokenizer, run_options.quick));
    let decomposition: Vec<(String, Decomposition)> = Payload::ALL
        .into_iter()
        .filter_map(|payload| {
            let benchmark = benchmark_id(payload, Variant::Async);
            let parts = Decomposition::from_figures(|metric| {
                value(&measurements, Tool::Paired, &benchmark, metric)
            })?;
            Some((payload.name().to_owned(), parts))
        })
        .collect();
    let mut checklist: Vec<ProbeResult> = if stored.checklist.is_empty() {
        progress(Progress::Stage {
            index: 2,
            total: 3,
            name: "walking the spec's checklist",
        });
        let mut checklist = vec![probes::cite_decomposition(
            overhead_probe(&measurements),
            &end_to_end_decomposed(&verdicts, &decomposition),
        )];
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
        checklist
    } else {
        stored.checklist
    };
    // The spec's order, whether computed now or read back.
    checklist.sort_by_key(|c| c.check);
    let build_comparison = stored
        .build_comparison
        .or_else(|| options.build_comparison.clone());
    let (comparisons, base_run) = match stored.comparisons.first() {
        _ if build_comparison.is_some() => (Vec::new(), None),
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
            (comparisons, base)
        }
    };
    let judgement = Judgement {
        verdicts,
        checklist,
        comparisons,
        build_comparison,
    };
    let noise_over_every_look = (!new_environment.is_empty()).then_some(&noise);
    runtime.block_on(store.save_judgement(
        run_id,
        &judgement,
        &new_samples,
        &new_environment,
        noise_over_every_look,
    ))?;
    // Derived from the stored history, so recomputed with every run judged:
    // the base branch's change points, replaced.
    let mut found = Vec::new();
    if let Some(branch) = &options.base_branch {
        let points = runtime.block_on(store.trend(options.history))?;
        found = change_points::detect_all(&points, branch, &change_points::PARAMETERS);
        runtime.block_on(store.replace_change_points(branch, &found))?;
    }
    let mut where_time_went = Vec::new();
    for request in profile_diff::requests(
        run_id,
        &judgement.verdicts,
        &judgement.comparisons,
        base_run.as_ref().map(|b| b.id),
        &found,
    ) {
        let diff = runtime.block_on(profile_diff::diff_stored(
            store,
            &request.before,
            &request.after,
            profile_diff::REPORT_TOP,
        ))?;
        where_time_went.push(WhereTimeWent { request, diff });
    }
    // Every pair's overhead of the contracts judged on paired time, as stored
    // (with what re-measuring added).
    let mut distributions = Vec::new();
    for contract in contracts
        .iter()
        .filter(|c| matches!(c.metric, Metric::WallClock | Metric::CpuTime))
    {
        let mut cases = Vec::new();
        for case in &contract.cases {
            let samples =
                runtime.block_on(stored_samples(store, run_id, contract, case, &measurements))?;
            let ratios = samples
                .other
                .iter()
                .zip(&samples.judged)
                .map(|(b, c)| c / b - 1.0)
                .collect();
            cases.push((case.name.clone(), ratios));
        }
        distributions.push((contract.id.clone(), cases));
    }
    let data = ReportData {
        run,
        noise,
        decomposition,
        judgement,
        base_run,
        distributions,
        where_time_went,
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
    let branch = options.base_branch.as_deref().unwrap_or("main");
    let change_points = runtime.block_on(store.change_points(branch))?;
    let limit = data
        .verdicts()
        .iter()
        .find(|v| v.metric == Metric::WallClock)
        .map(|v| v.bound.value());
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
    // The copies in latest/charts/ link to the dashboard's run pages.
    let links = RunLinks {
        prefix: "../../dashboard/runs/",
        pages: &run_pages,
    };
    for (name, svg) in dashboard::trend_charts(&points, limit, &change_points, &links) {
        let path = out.join("latest/charts").join(format!("{name}.svg"));
        write(&path, &svg)?;
        files.push(path);
    }
    let index = dashboard_dir.join("index.html");
    write(
        &index,
        &dashboard::dashboard(&points, limit, &run_pages, &change_points, branch),
    )?;
    files.push(index);
    Ok(files)
}
