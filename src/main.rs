use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use perfwarden::chat::acquire::ModelSearch;
use perfwarden::chat::stream::{self, DEFAULT_MAX_REQUEST_BYTES};
use perfwarden::diagnose::probes::Check;
use perfwarden::diagnose::selftest::{self, SelftestOptions};
use perfwarden::judge::contract::Contract;
use perfwarden::judge::verdict::Status;
use perfwarden::measure::machine_lock::MachineLock;
use perfwarden::measure::payload::{Payload, Variant};
use perfwarden::measure::run::{self as measure_run, Progress, RunOptions};
use perfwarden::publish::{CheckRun, GithubContext, Publication};
use perfwarden::report::{ReportOptions, Source as ReportSource};
use perfwarden::store::{Access, Store};

/// Continuous performance-regression harness for the Mistral v3 chat template
/// and its async wrapper.
#[derive(Debug, Parser)]
#[command(name = "perfwarden", version, about)]
struct Cli {
    /// The Mistral v3 SentencePiece model (tokenizer.model.v3). Without it,
    /// perfwarden looks in the Hugging Face cache, then its own cache, then
    /// fetches it from the mistral-common 1.13.1 wheel.
    #[arg(long, global = true, env = "PERFWARDEN_TOKENIZER", value_name = "PATH")]
    tokenizer: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the token ids of chat requests ({"messages": [...], "tools": [...]}).
    Tokenize {
        /// Input file, or - for standard input.
        #[arg(default_value = "-")]
        input: String,
        /// One request per line; one result per line: {"tokens": [...]} or {"error": "..."}.
        #[arg(long)]
        jsonl: bool,
        /// Requests larger than this many bytes are refused before any work.
        #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_BYTES, value_name = "BYTES")]
        max_request_bytes: usize,
    },
    /// Print where the tokenizer model is, fetching it first if needed.
    Tokenizer,
    /// Measure the current checkout (Criterion, callgrind, the spec's method,
    /// paired samples) and store the run.
    Run {
        /// Few samples: exercises every stage quickly; verdicts need the full mode.
        #[arg(long)]
        quick: bool,
        /// The commit this one is compared against (a PR's base).
        #[arg(long, env = "PERFWARDEN_BASE_COMMIT", value_name = "SHA")]
        base_commit: Option<String>,
        /// The pull request being measured.
        #[arg(long, env = "PERFWARDEN_PR", value_name = "NUMBER")]
        pr: Option<u64>,
        /// Print only the result, not the tools' output.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        contracts: ContractArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List stored runs.
    History {
        /// Runs with all their measurements, as JSON.
        #[arg(long)]
        json: bool,
        /// Show at most this many runs (newest first).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// With --json: the branch whose change points are listed, each
        /// under the first run after its shift.
        #[arg(
            long,
            env = "PERFWARDEN_BASE_BRANCH",
            default_value = "main",
            value_name = "BRANCH"
        )]
        base_branch: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Measure the checkout, judge the contract, walk the checklist, compare
    /// with the base, and write the report, charts and dashboard.
    Report {
        /// Render a stored run instead of measuring (the latest, or --run).
        #[arg(long)]
        no_measure: bool,
        /// The stored run to render (with --no-measure).
        #[arg(long, value_name = "ID", requires = "no_measure")]
        run: Option<i64>,
        /// Few samples: every stage, quickly; real verdicts use the full mode.
        #[arg(long, conflicts_with = "no_measure")]
        quick: bool,
        /// Where the report goes.
        #[arg(long, default_value = "reports", value_name = "DIR")]
        out: PathBuf,
        /// Print nothing but errors and the verdict.
        #[arg(long)]
        quiet: bool,
        /// Also publish to the pull request (GitHub Actions: GITHUB_* variables).
        #[arg(long)]
        ci: bool,
        #[command(flatten)]
        judging: JudgingArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Publish a stored run's report to its pull request (the PR comment and a check run).
    Publish {
        /// The stored run (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<i64>,
        #[arg(long, default_value = "reports", value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        judging: JudgingArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Prove the checklist's probes and the verdict work: run them against the
    /// real async wrapper and deliberately broken ones, and print a matrix.
    Selftest {
        /// Fewer calls and samples (what the test suite runs).
        #[arg(long)]
        quick: bool,
        /// Do not run this probe (the self-test must then fail).
        #[arg(long, value_name = "CHECK", value_parser = ["executor-per-request", "async-overhead", "single-worker", "warm-up"])]
        skip_probe: Vec<String>,
        /// The contract to judge with.
        #[arg(
            long,
            default_value = "harness/contracts/performance-001.toml",
            value_name = "PATH"
        )]
        contract: PathBuf,
    },
    /// Tell whether this machine can decide the contract: many verdicts of
    /// wrappers with a known overhead (A/A, the real wrapper, slowdowns around
    /// the limit), with and without a noisy neighbour, counted.
    Calibrate {
        /// Few samples a verdict, as `report --quick` takes.
        #[arg(long)]
        quick: bool,
        /// Verdicts per scenario.
        #[arg(long, default_value_t = 50, value_name = "N")]
        verdicts: usize,
        /// The wall-clock contract to calibrate for.
        #[arg(
            long,
            default_value = "harness/contracts/performance-001.toml",
            value_name = "PATH"
        )]
        contract: PathBuf,
        /// Print {"scenarios": [...]} instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Where the instructions went: two callgrind profiles compared function
    /// by function, the functions whose count changed most first, each with
    /// its share of the total change.
    ProfileDiff {
        /// The before side: a callgrind.out file, a directory of them (one
        /// benchmark's threads), or a stored run as ID or ID:BENCHMARK
        /// (e.g. 7:medium/sync).
        before: String,
        /// The after side, as BEFORE.
        after: String,
        /// The benchmark of a stored run given without one (e.g. medium/async).
        #[arg(long, value_name = "NAME")]
        benchmark: Option<String>,
        /// How many functions to list.
        #[arg(long, default_value_t = 20, value_name = "N")]
        top: usize,
        /// Print the diff as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Build BASE and HEAD (cached by commit under the cargo target
    /// directory) and measure them side by side on this machine: per
    /// benchmark the change in time per call with its interval and verdict,
    /// and both builds' instruction counts.
    Compare {
        /// The base commit (any revision git knows: a hash, branch or tag).
        base: String,
        /// The head commit (default: the checkout's HEAD, as committed).
        head: Option<String>,
        #[command(flatten)]
        comparing: ComparingArgs,
        /// Do not count instructions under callgrind (faster).
        #[arg(long)]
        no_instructions: bool,
        /// Diff both builds' callgrind profiles function by function for
        /// every benchmark; without it, only a benchmark that regressed gets
        /// its diff.
        #[arg(long, conflicts_with = "no_instructions")]
        profile: bool,
        /// Print the comparison as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Find the first commit after GOOD that regresses against it, with
    /// `git bisect run` and the paired comparison; BAD must regress.
    Bisect {
        /// A commit without the regression.
        good: String,
        /// A later commit with it.
        bad: String,
        #[command(flatten)]
        comparing: ComparingArgs,
        /// What a commit is judged on: time per call (paired), or
        /// instructions per call under callgrind (deterministic, so a noisy
        /// host does not leave commits undecided; needs valgrind).
        #[arg(long, value_enum, default_value = "wall-clock")]
        metric: BisectMetric,
        /// Print the bisection as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve timed batches over standard input and output (the builds that
    /// `compare` drives).
    #[command(hide = true, name = "serve-batches")]
    ServeBatches,
    /// Judge the checked-out commit against GOOD for `git bisect run`: exit
    /// 0 good, 1 bad, 125 skip, 255 stop.
    #[command(hide = true, name = "bisect-step")]
    BisectStep {
        #[arg(long)]
        good: String,
        /// Where each step's evidence is written.
        #[arg(long, value_name = "DIR")]
        evidence: PathBuf,
        #[arg(long, value_enum, default_value = "wall-clock")]
        metric: BisectMetric,
        #[command(flatten)]
        comparing: ComparingArgs,
    },
    /// Print how far one call raises this process's peak resident memory,
    /// in bytes, for the request on standard input (the peak-memory metric's
    /// child process).
    #[command(hide = true)]
    PeakMemory {
        #[arg(long)]
        variant: String,
    },
    /// Run one call under measurement (used by `selftest` under callgrind).
    #[command(hide = true)]
    ProbeCall {
        #[arg(long)]
        wrapper: String,
        #[arg(long)]
        payload: String,
        #[arg(long)]
        variant: String,
    },
}

/// What `bisect` judges each commit on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BisectMetric {
    WallClock,
    Instructions,
}

impl BisectMetric {
    fn name(self) -> &'static str {
        match self {
            BisectMetric::WallClock => "wall-clock",
            BisectMetric::Instructions => "instructions",
        }
    }
}

#[derive(Debug, clap::Args)]
struct ComparingArgs {
    /// Only this benchmark (e.g. large/sync); repeat for several. Default:
    /// sync and async of the small, medium and large payloads.
    #[arg(long, value_name = "NAME")]
    benchmark: Vec<String>,
    /// A change in time per call within ±PERCENT is unchanged.
    #[arg(long, default_value_t = perfwarden::judge::builds::WALL_CLOCK_THRESHOLD * 100.0, value_name = "PERCENT")]
    threshold: f64,
    /// Few pairs: every stage quickly; real verdicts use the full mode.
    #[arg(long)]
    quick: bool,
    /// Print only the result, not the builds' and tools' output.
    #[arg(long)]
    quiet: bool,
}

impl ComparingArgs {
    fn options(
        &self,
        model: Option<PathBuf>,
        wall_clock: bool,
        instructions: bool,
    ) -> anyhow::Result<perfwarden::compare::CompareOptions> {
        anyhow::ensure!(
            self.threshold.is_finite() && self.threshold >= 0.0,
            "--threshold must be a percentage of at least 0, e.g. 5"
        );
        let located = ModelSearch::from_env(model).locate(&mut note)?;
        Ok(perfwarden::compare::CompareOptions {
            quick: self.quick,
            benchmarks: self.benchmark.clone(),
            threshold: self.threshold / 100.0,
            wall_clock,
            instructions,
            profile: false,
            tokenizer_path: located.path,
        })
    }
}

#[derive(Debug, clap::Args)]
struct ContractArgs {
    /// A contract to judge; repeat for several. Default: every *.toml in
    /// harness/contracts/.
    #[arg(long, value_name = "PATH")]
    contract: Vec<PathBuf>,
}

impl ContractArgs {
    fn load(&self) -> anyhow::Result<Vec<Contract>> {
        if self.contract.is_empty() {
            return Ok(Contract::load_dir(std::path::Path::new(CONTRACTS_DIR))?);
        }
        Ok(self
            .contract
            .iter()
            .map(|path| Contract::load(path))
            .collect::<Result<_, _>>()?)
    }
}

/// Where the shipped contracts are, relative to the checkout.
const CONTRACTS_DIR: &str = "harness/contracts";

/// What an INCONCLUSIVE verdict does to the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum InconclusivePolicy {
    /// Exit 3: neither a pass nor a failure.
    Neutral,
    /// Exit 1, as a failure.
    Fail,
}

#[derive(Debug, clap::Args)]
struct JudgingArgs {
    #[command(flatten)]
    contracts: ContractArgs,
    /// What an undecided (INCONCLUSIVE) verdict does to the exit code:
    /// `neutral` exits 3, `fail` exits 1 like a broken contract.
    #[arg(long, value_enum, default_value = "neutral", value_name = "POLICY")]
    inconclusive: InconclusivePolicy,
    /// The branch whose latest run is the base when no base commit is known.
    #[arg(
        long,
        env = "PERFWARDEN_BASE_BRANCH",
        default_value = "main",
        value_name = "BRANCH"
    )]
    base_branch: String,
    /// The commit this one is compared against (a PR's base).
    #[arg(long, env = "PERFWARDEN_BASE_COMMIT", value_name = "SHA")]
    base_commit: Option<String>,
    /// The pull request being measured.
    #[arg(long, env = "PERFWARDEN_PR", value_name = "NUMBER")]
    pr: Option<u64>,
    /// Where the dashboard is published (linked from the report).
    #[arg(long, env = "PERFWARDEN_DASHBOARD_URL", value_name = "URL")]
    dashboard_url: Option<String>,
    /// The database should already hold runs (CI with a kept history): when
    /// it holds none, say so loudly, in the log and in the report.
    #[arg(long, env = "PERFWARDEN_EXPECT_HISTORY")]
    expect_history: bool,
}

#[derive(Debug, clap::Args)]
struct DatabaseArgs {
    /// The history database: a SQLite path or sqlite:// URL, or a
    /// postgres://user:password@host/db URL (one history shared by many
    /// runners). Default: ~/.local/share/perfwarden/history.db
    /// (PERFWARDEN_DATA_DIR or XDG_DATA_HOME move it).
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
}

impl DatabaseArgs {
    fn url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            perfwarden::store::default_database_path()
                .display()
                .to_string()
        })
    }

    /// Opens the database, runs `work` with it and closes it (checkpointing
    /// SQLite's log into the file) whether `work` succeeded or not.
    fn with_store<T>(
        &self,
        runtime: &tokio::runtime::Runtime,
        access: Access,
        work: impl FnOnce(&Store) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let store = runtime.block_on(Store::open(&self.url(), access))?;
        let result = work(&store);
        let closed = runtime.block_on(store.close());
        let value = result?;
        closed?;
        Ok(value)
    }
}

/// Exit codes: 0 ran (every contract holds), 1 invalid input, a broken
/// contract or a regression, 2 usage or infrastructure error, 3 a contract
/// undecided (INCONCLUSIVE) and nothing broken.
const EXIT_INVALID: u8 = 1;
const EXIT_INFRA: u8 = 2;
const EXIT_INCONCLUSIVE: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("perfwarden: error: {error:#}");
            ExitCode::from(EXIT_INFRA)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn open_input(input: &str) -> anyhow::Result<Box<dyn io::Read>> {
    if input == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    let file = std::fs::File::open(input).with_context(|| format!("cannot open {input}"))?;
    // Opening a directory succeeds; reading it fails later with a bare EISDIR.
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        anyhow::bail!(
            "{input} is a directory: give a file of requests, or - to read standard input"
        );
    }
    Ok(Box::new(file))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let model = cli.tokenizer;
    match cli.command {
        Command::Tokenize {
            input,
            jsonl,
            max_request_bytes,
        } => tokenize(model, &input, jsonl, max_request_bytes),
        Command::Tokenizer => {
            let located = ModelSearch::from_env(model).locate(&mut note)?;
            println!("{}", located.path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            quick,
            base_commit,
            pr,
            quiet,
            contracts,
            database,
        } => run_command(model, quick, base_commit, pr, quiet, &contracts, &database),
        Command::History {
            json,
            limit,
            base_branch,
            database,
        } => history(json, limit, &base_branch, &database),
        Command::Selftest {
            quick,
            skip_probe,
            contract,
        } => selftest_command(model, quick, &skip_probe, &contract),
        Command::PeakMemory { variant } => peak_memory(model, &variant),
        Command::ProfileDiff {
            before,
            after,
            benchmark,
            top,
            json,
            database,
        } => profile_diff(&before, &after, benchmark.as_deref(), top, json, &database),
        Command::Compare {
            base,
            head,
            comparing,
            no_instructions,
            profile,
            json,
        } => compare_command(
            model,
            &base,
            head.as_deref(),
            &comparing,
            (!no_instructions, profile),
            json,
        ),
        Command::Bisect {
            good,
            bad,
            comparing,
            metric,
            json,
        } => bisect_command(model, &good, &bad, &comparing, metric, json),
        Command::ServeBatches => {
            let (tokenizer, _) = load_model(model)?;
            perfwarden::measure::batches::serve(tokenizer, io::stdin().lock(), io::stdout().lock())
                .context("serving batches")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BisectStep {
            good,
            evidence,
            metric,
            comparing,
        } => Ok(bisect_step(model, &good, &evidence, metric, &comparing)),
        Command::Calibrate {
            quick,
            verdicts,
            contract,
            json,
        } => calibrate(model, quick, verdicts, &contract, json),
        Command::ProbeCall {
            wrapper,
            payload,
            variant,
        } => {
            let payload = Payload::from_name(&payload).context("unknown payload")?;
            let variant = Variant::from_name(&variant).context("unknown variant")?;
            let (tokenizer, _) = load_model(model)?;
            perfwarden::diagnose::instructions::probe_call(tokenizer, &wrapper, payload, variant)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            no_measure,
            run,
            quick,
            out,
            quiet,
            ci,
            judging,
            database,
        } => {
            let source = if no_measure {
                ReportSource::Stored(run)
            } else {
                ReportSource::Measure(RunOptions {
                    checkout_dir: checkout_root()?,
                    quick,
                    tokenizer_path: PathBuf::new(),
                    perfwarden_exe: std::env::current_exe().ok(),
                    base_commit: None,
                    pr_number: None,
                })
            };
            run_report(model, source, out, quiet, ci, judging, database)
        }
        Command::Publish {
            run,
            out,
            judging,
            database,
        } => run_report(
            model,
            ReportSource::Stored(run),
            out,
            false,
            true,
            judging,
            database,
        ),
    }
}

/// A note from the model search, for the user.
fn note(text: &str) {
    eprintln!("perfwarden: {text}");
}

/// The tokenizer model, located (fetched when missing), loaded and kept for
/// the life of the process (the worker and the probes hold it as
/// `'static`), with where it was found.
fn load_model(
    explicit: Option<PathBuf>,
) -> anyhow::Result<(&'static perfwarden::chat::MistralTokenizer, PathBuf)> {
    let located = ModelSearch::from_env(explicit).locate(&mut note)?;
    let tokenizer = Box::leak(Box::new(located.load()?));
    Ok((tokenizer, located.path))
}

/// `tokenize`: token ids of one request, or of each line with `jsonl`.
fn tokenize(
    model: Option<PathBuf>,
    input: &str,
    jsonl: bool,
    max_request_bytes: usize,
) -> anyhow::Result<ExitCode> {
    let reader = open_input(input)?;
    let (tokenizer, _) = load_model(model)?;
    let stdout = io::stdout().lock();
    if jsonl {
        let summary = stream::tokenize_jsonl(
            tokenizer,
            BufReader::new(reader),
            io::BufWriter::new(stdout),
            max_request_bytes,
        )
        .context("writing results")?;
        if summary.errors > 0 {
            eprintln!(
                "perfwarden: {} of {} lines were rejected (see their \"error\")",
                summary.errors, summary.lines
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bytes = stream::read_capped(reader, max_request_bytes)
        .with_context(|| format!("reading {input}"))?;
    match stream::tokenize_request(tokenizer, &bytes, max_request_bytes) {
        Ok(tokens) => {
            let mut out = io::BufWriter::new(stdout);
            serde_json::to_writer(&mut out, &tokens).context("writing tokens")?;
            out.write_all(b"\n").context("writing tokens")?;
            out.flush().context("writing tokens")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("perfwarden: invalid request: {error}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// `run`: measure the checkout and store the run.
fn run_command(
    model: Option<PathBuf>,
    quick: bool,
    base_commit: Option<String>,
    pr: Option<u64>,
    quiet: bool,
    contracts: &ContractArgs,
    database: &DatabaseArgs,
) -> anyhow::Result<ExitCode> {
    // Where to run is the first thing to say; the contracts are the
    // checkout's.
    let checkout_dir = checkout_root()?;
    let contracts = contracts.load()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    // Open the database first: a bad --database-url fails in a second,
    // not after minutes of measuring.
    database.with_store(&runtime, Access::Create, |store| {
        let (tokenizer, tokenizer_path) = load_model(model)?;
        let options = RunOptions {
            checkout_dir,
            quick,
            tokenizer_path,
            perfwarden_exe: std::env::current_exe().ok(),
            base_commit,
            pr_number: pr,
        };
        let started = std::time::Instant::now();
        let mut status = StatusLine::new(quiet);
        let lock = MachineLock::acquire(&mut |event| status.show(event))?;
        let run = measure_run::measure(&options, &contracts, tokenizer, &lock, &mut |event| {
            status.show(event)
        })?;
        status.finish();
        let id = runtime.block_on(store.insert_run(&run))?;
        eprintln!(
            "perfwarden: stored run {id} ({} measurements, {} samples) in {} after {:.0} s",
            run.measurements.len(),
            run.samples.len(),
            perfwarden::store::redact_url(&database.url()),
            started.elapsed().as_secs_f64()
        );
        for note in &run.notes {
            eprintln!("perfwarden: WARNING: {note}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `history`: the stored runs, as a table or JSON (with each run's
/// measurements and the change points found at it).
fn history(
    json: bool,
    limit: Option<u32>,
    base_branch: &str,
    database: &DatabaseArgs,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    database.with_store(&runtime, Access::ReadOnly, |store| {
        let runs = runtime.block_on(store.runs(limit))?;
        let mut out = io::BufWriter::new(io::stdout().lock());
        if json {
            let change_points = runtime.block_on(store.change_points(base_branch))?;
            let mut documents = Vec::with_capacity(runs.len());
            for run in runs {
                let measurements = runtime.block_on(store.measurements(run.id))?;
                let at_run: Vec<_> = change_points
                    .iter()
                    .filter(|c| c.change.after_run_id == run.id)
                    .collect();
                let mut document = serde_json::to_value(&run)?;
                document["noise_score"] = serde_json::to_value(
                    perfwarden::measure::batch_noise::RunNoise::from_measurements(&measurements)
                        .score(),
                )?;
                document["measurements"] = serde_json::to_value(measurements)?;
                document["change_points"] = serde_json::to_value(at_run)?;
                documents.push(document);
            }
            serde_json::to_writer_pretty(&mut out, &documents)?;
            out.write_all(b"\n")?;
        } else {
            out.write_all(perfwarden::render::history_table(&runs).as_bytes())?;
        }
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `profile-diff`: two profiles, each from a file or a stored run, diffed.
fn profile_diff(
    before: &str,
    after: &str,
    benchmark: Option<&str>,
    top: usize,
    json: bool,
    database: &DatabaseArgs,
) -> anyhow::Result<ExitCode> {
    use perfwarden::diagnose::profile_diff::{self, StoredSide};
    let stored = |argument: &str| {
        let path = std::path::Path::new(argument);
        if path.exists() {
            return Ok(None);
        }
        let (id, named) = StoredSide::parse_argument(argument).with_context(|| {
            format!("{argument} is neither a callgrind profile (a callgrind.out file or a directory of them) nor a stored run (ID or ID:BENCHMARK, e.g. 7:medium/async)")
        })?;
        let benchmark = named.or(benchmark).with_context(|| {
            format!("which benchmark of run {id}? Write {id}:BENCHMARK (e.g. {id}:medium/async) or give --benchmark")
        })?;
        anyhow::Ok(Some(StoredSide::new(id, benchmark)))
    };
    let sides = [stored(before)?, stored(after)?];
    let mut profiles = Vec::with_capacity(2);
    if sides.iter().any(Option::is_some) {
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        database.with_store(&runtime, Access::ReadOnly, |store| {
            for (argument, side) in [before, after].into_iter().zip(&sides) {
                profiles.push(match side {
                    None => read_profile_file(argument)?,
                    Some(side) => {
                        runtime.block_on(store.run(side.run_id))?;
                        match runtime.block_on(store.profile(side.run_id, &side.benchmark))? {
                            Some(profile) => profile,
                            None => {
                                let kept =
                                    runtime.block_on(store.profiled_benchmarks(side.run_id))?;
                                anyhow::bail!(
                                    "run {} has no stored profile of {}; {}",
                                    side.run_id,
                                    side.benchmark,
                                    if kept.is_empty() {
                                        "it has none (stored before profiles were kept, or measured without valgrind): measure again with `perfwarden run`".to_owned()
                                    } else {
                                        format!("it has: {}", kept.join(", "))
                                    }
                                )
                            }
                        }
                    }
                });
            }
            Ok(())
        })?;
    } else {
        for argument in [before, after] {
            profiles.push(read_profile_file(argument)?);
        }
    }
    let diff = profile_diff::diff(&profiles[0], &profiles[1], top);
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut out, &diff)?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(perfwarden::render::profile_diff_table(&diff).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn read_profile_file(path: &str) -> anyhow::Result<perfwarden::measure::profile::Profile> {
    perfwarden::measure::callgrind::read_profile(std::path::Path::new(path))
        .with_context(|| format!("reading the callgrind profile {path}"))
}

/// `selftest`: the checklist and the verdict against the real wrapper and
/// the broken fixtures.
fn selftest_command(
    model: Option<PathBuf>,
    quick: bool,
    skip_probe: &[String],
    contract: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let contract = Contract::load(contract)?;
    let (tokenizer, tokenizer_path) = load_model(model)?;
    let valgrind = perfwarden::measure::environment::valgrind_version()
        .map(|_| perfwarden::measure::environment::valgrind_program());
    if valgrind.is_none() {
        eprintln!(
            "perfwarden: WARNING: valgrind is not installed: the async-overhead probe cannot run, so the self-test cannot pass"
        );
    }
    let options = SelftestOptions {
        quick,
        skip: skip_probe
            .iter()
            .filter_map(|id| Check::parse(id))
            .collect(),
        exe: std::env::current_exe().context("locating the perfwarden executable")?,
        valgrind,
        tokenizer_path,
    };
    let reports = selftest::run(&options, tokenizer, &contract, &mut |step| {
        eprintln!("perfwarden: selftest: {step}")
    });
    print!("{}", perfwarden::render::selftest_matrix(&reports));
    match selftest::evaluate(&reports) {
        selftest::Outcome::Pass => {
            println!(
                "selftest: OK: the real wrapper passes, each fixture is caught by its own probe only, {} breaks the contract",
                selftest::SLOWDOWN_FIXTURE
            );
            Ok(ExitCode::SUCCESS)
        }
        selftest::Outcome::Undecided(reasons) => {
            for reason in reasons {
                println!("selftest: INCONCLUSIVE: {reason}");
            }
            println!(
                "selftest: nothing failed, but this host was too busy to show everything; rerun it when the machine is quieter"
            );
            Ok(ExitCode::from(EXIT_INCONCLUSIVE))
        }
        selftest::Outcome::Fail(problems) => {
            for problem in problems {
                println!("selftest: FAILED: {problem}");
            }
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// `calibrate`: exits 0 when the machine meets every target, 1 when it
/// does not (the missed ones are listed).
fn calibrate(
    model: Option<PathBuf>,
    quick: bool,
    verdicts: usize,
    contract: &std::path::Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use perfwarden::diagnose::calibrate;
    let contract = Contract::load(contract)?;
    if contract.metric != perfwarden::metric::Metric::WallClock {
        anyhow::bail!(
            "calibrate runs wall-clock verdicts; {} is judged on {}",
            contract.id,
            contract.metric.name()
        );
    }
    anyhow::ensure!(verdicts > 0, "--verdicts must be at least 1");
    let (tokenizer, _) = load_model(model)?;
    let results = calibrate::run(tokenizer, &contract, verdicts, quick, &mut |step| {
        eprintln!("perfwarden: calibrate: {step}")
    });
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "scenarios": results }))?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(perfwarden::render::calibration_table(&results).as_bytes())?;
    }
    out.flush()?;
    let missed = calibrate::missed_targets(&results, contract.bound.value());
    for target in &missed {
        eprintln!("perfwarden: calibrate: target missed: {target}");
    }
    Ok(if missed.is_empty() {
        eprintln!(
            "perfwarden: calibrate: this machine can decide {}",
            contract.id
        );
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

/// `compare`: exits 0 when nothing regressed or stayed undecided, 1 on a
/// regression, 3 when a change is undecided and nothing regressed.
/// `(instructions, profile)`: count instructions, and diff every
/// benchmark's profiles.
fn compare_command(
    model: Option<PathBuf>,
    base: &str,
    head: Option<&str>,
    comparing: &ComparingArgs,
    (instructions, profile): (bool, bool),
    json: bool,
) -> anyhow::Result<ExitCode> {
    use perfwarden::judge::builds::BuildVerdict;
    let checkout = checkout_root()?;
    let builds = perfwarden::measure::builds::Builds::new(&checkout);
    let base = builds.resolve(base)?;
    let head = match head {
        Some(head) => builds.resolve(head)?,
        None => {
            if perfwarden::measure::environment::checkout(&checkout).dirty {
                eprintln!(
                    "perfwarden: WARNING: the checkout has uncommitted changes; compare measures HEAD as committed (commit them to compare them)"
                );
            }
            builds.resolve("HEAD")?
        }
    };
    let options = perfwarden::compare::CompareOptions {
        profile,
        ..comparing.options(model, true, instructions)?
    };
    let mut status = StatusLine::new(comparing.quiet);
    let comparison = perfwarden::compare::compare(&builds, &base, &head, &options, &mut |event| {
        status.show(event)
    })?;
    status.finish();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut out, &comparison)?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(perfwarden::render::compare::comparison_table(&comparison).as_bytes())?;
    }
    out.flush()?;
    Ok(match comparison.verdict {
        BuildVerdict::Regression => ExitCode::from(EXIT_INVALID),
        BuildVerdict::Inconclusive => ExitCode::from(EXIT_INCONCLUSIVE),
        BuildVerdict::Unchanged | BuildVerdict::Improvement => ExitCode::SUCCESS,
    })
}

/// `bisect`: exits 0 when it names the first bad commit, 3 when it cannot
/// (the bad commit does not regress, or skipped commits hide it).
fn bisect_command(
    model: Option<PathBuf>,
    good: &str,
    bad: &str,
    comparing: &ComparingArgs,
    metric: BisectMetric,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let checkout = checkout_root()?;
    let builds = perfwarden::measure::builds::Builds::new(&checkout);
    let good = builds.resolve(good)?;
    let bad = builds.resolve(bad)?;
    let options = comparing.options(
        model,
        metric == BisectMetric::WallClock,
        metric == BisectMetric::Instructions,
    )?;
    let exe = std::env::current_exe().context("locating the perfwarden executable")?;
    let mut status = StatusLine::new(comparing.quiet);
    let bisection = perfwarden::compare::bisect(
        &builds,
        &good,
        &bad,
        &exe,
        metric.name(),
        &options,
        &mut |event| status.show(event),
    )?;
    status.finish();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut out, &bisection)?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(perfwarden::render::compare::bisection_text(&bisection).as_bytes())?;
    }
    out.flush()?;
    Ok(if bisection.first_bad.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCONCLUSIVE)
    })
}

/// The hidden `bisect-step`: `git bisect run`'s verdict on the checked-out
/// commit. Anything but a verdict (no tokenizer, no git) stops the
/// bisection with 255 rather than reading as a bad commit.
fn bisect_step(
    model: Option<PathBuf>,
    good: &str,
    evidence: &std::path::Path,
    metric: BisectMetric,
    comparing: &ComparingArgs,
) -> ExitCode {
    let step = (|| -> anyhow::Result<perfwarden::compare::BisectStep> {
        let builds = perfwarden::measure::builds::Builds::new(&checkout_root()?);
        let options = comparing.options(
            model,
            metric == BisectMetric::WallClock,
            metric == BisectMetric::Instructions,
        )?;
        let mut status = StatusLine::new(comparing.quiet);
        let step =
            perfwarden::compare::bisect_step(&builds, good, evidence, &options, &mut |event| {
                status.show(event)
            })?;
        status.finish();
        Ok(step)
    })();
    match step {
        Ok(step) => {
            eprintln!(
                "perfwarden: bisect: {} is {}: {}",
                step.commit,
                match step.outcome {
                    perfwarden::compare::StepOutcome::Good => "good",
                    perfwarden::compare::StepOutcome::Bad => "bad",
                    perfwarden::compare::StepOutcome::Skip => "skipped",
                },
                step.reason
            );
            ExitCode::from(step.outcome.exit_code())
        }
        Err(error) => {
            eprintln!("perfwarden: error: {error:#}; stopping the bisection");
            ExitCode::from(255)
        }
    }
}

/// The hidden `peak-memory`: one call on the request from standard input.
fn peak_memory(model: Option<PathBuf>, variant: &str) -> anyhow::Result<ExitCode> {
    let variant = Variant::from_name(variant).context("unknown variant")?;
    let mut json = String::new();
    io::Read::read_to_string(&mut io::stdin().lock(), &mut json)
        .context("reading the request from standard input")?;
    let (tokenizer, _) = load_model(model)?;
    let grown = perfwarden::metric::peak_memory::child_peak_growth(tokenizer, variant, &json)
        .map_err(anyhow::Error::msg)?;
    println!("{grown}");
    Ok(ExitCode::SUCCESS)
}

/// `report` and `publish`: the pipeline, then (with `ci`) GitHub.
fn run_report(
    tokenizer: Option<PathBuf>,
    mut source: ReportSource,
    out: PathBuf,
    quiet: bool,
    ci: bool,
    judging: JudgingArgs,
    database: DatabaseArgs,
) -> anyhow::Result<ExitCode> {
    let contracts = judging.contracts.load()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let access = match source {
        ReportSource::Measure(_) => Access::Create,
        ReportSource::Stored(_) => Access::Existing,
    };
    database.with_store(&runtime, access, |store| {
        let mut warnings = Vec::new();
        if judging.expect_history && runtime.block_on(store.runs(Some(1)))?.is_empty() {
            let warning = perfwarden::report::missing_history(&database.url());
            if std::env::var_os("GITHUB_ACTIONS").is_some() {
                eprintln!("::warning title=perfwarden: history missing::{warning}");
            }
            eprintln!("perfwarden: WARNING: {warning}");
            warnings.push(warning);
        }
        let github = if ci {
            Some(GithubContext::from_env().context("reading the GitHub Actions environment for --ci")?)
        } else {
            None
        };
        let mut loaded = None;
        let mut status = StatusLine::new(quiet);
        let mut build_comparison = None;
        if let ReportSource::Measure(options) = &mut source {
            let (model, path) = load_model(tokenizer)?;
            loaded = Some(model);
            options.tokenizer_path = path;
            options.base_commit = judging
                .base_commit
                .clone()
                .or_else(|| github.as_ref().and_then(|g| g.base_sha.clone()));
            options.pr_number = judging
                .pr
                .or_else(|| github.as_ref().and_then(|g| g.pr_number));
            // A pull request (from --pr or the GitHub environment) with a
            // known base: the base is built and measured beside the head.
            if let Some(base) = options.base_commit.clone()
                && options.pr_number.is_some()
            {
                match compare_with_base(options, &base, &mut |event| status.show(event)) {
                    Ok(comparison) => build_comparison = Some(comparison),
                    Err(error) => {
                        status.finish();
                        let warning = format!(
                            "head versus base was not measured side by side ({error:#}); it is compared with stored history instead"
                        );
                        eprintln!("perfwarden: WARNING: {warning}");
                        warnings.push(warning);
                    }
                }
            }
        }
        let options = ReportOptions {
            source,
            contracts,
            out_dir: out,
            base_branch: Some(judging.base_branch),
            artifact_url: github.as_ref().and_then(|g| g.artifact_url()),
            dashboard_url: judging.dashboard_url,
            history: 1000,
            warnings,
            build_comparison,
        };
        let outcome = perfwarden::report::report(&options, store, &runtime, loaded, &mut |event| {
            status.show(event)
        })?;
        status.finish();
        let data = &outcome.data;
        for verdict in data.verdicts() {
            println!("{}", perfwarden::render::report::verdict_text(verdict));
        }
        for change in data.build_regressions() {
            println!(
                "regression: {} {} {} (base and head measured side by side, threshold {:.1}%)",
                change.benchmark,
                change.metric.name(),
                perfwarden::render::percent(change.change),
                change.threshold * 100.0
            );
        }
        for regression in data.regressions() {
            println!(
                "regression: {} {} {:+.2}% (threshold {:.1}%)",
                regression.benchmark,
                regression.tool.name(),
                regression.change * 100.0,
                regression.threshold * 100.0
            );
        }
        for section in &data.where_time_went {
            println!(
                "{}",
                perfwarden::render::report::where_time_went_text(section)
            );
        }
        for build in data
            .judgement
            .build_comparison
            .iter()
            .flat_map(|c| &c.profile_diffs)
        {
            println!("{}", perfwarden::render::report::build_diff_text(build));
        }
        if !quiet {
            eprintln!(
                "perfwarden: report of run {} in {}",
                data.run.id,
                options.out_dir.join("latest/summary.md").display()
            );
        }
        if let Some(github) = github {
            let regressed = data.regressed();
            let publication = Publication {
                body_markdown: perfwarden::render::report::summary_markdown(data),
                contract: data
                    .verdicts()
                    .first()
                    .map_or_else(|| "report".to_owned(), |v| v.contract.clone()),
                checks: data
                    .verdicts()
                    .iter()
                    .map(|v| CheckRun::of(v, regressed))
                    .collect(),
            };
            let published = runtime.block_on(perfwarden::publish::publish(&github, &publication))?;
            if let Some(why) = &published.fell_back_to_step_summary {
                eprintln!(
                    "perfwarden: could not post to the pull request ({why}); the report is in the job summary instead"
                );
            }
        }
        let regressed = data.regressed();
        Ok(match data.status() {
            Status::Pass if !regressed => ExitCode::SUCCESS,
            Status::Inconclusive
                if !regressed && judging.inconclusive == InconclusivePolicy::Neutral =>
            {
                ExitCode::from(EXIT_INCONCLUSIVE)
            }
            _ => ExitCode::from(EXIT_INVALID),
        })
    })
}

/// `report` on a pull request: the PR's base commit and the checkout's HEAD,
/// built and measured side by side.
fn compare_with_base(
    options: &RunOptions,
    base: &str,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<perfwarden::judge::builds::BuildComparison> {
    let builds = perfwarden::measure::builds::Builds::new(&options.checkout_dir);
    let base = builds.resolve(base)?;
    let head = builds.resolve("HEAD")?;
    let compare_options = perfwarden::compare::CompareOptions {
        quick: options.quick,
        benchmarks: Vec::new(),
        threshold: perfwarden::judge::builds::WALL_CLOCK_THRESHOLD,
        wall_clock: true,
        instructions: true,
        profile: false,
        tokenizer_path: options.tokenizer_path.clone(),
    };
    Ok(perfwarden::compare::compare(
        &builds,
        &base,
        &head,
        &compare_options,
        progress,
    )?)
}

/// Progress while measuring: a live status line on a terminal, plain lines
/// otherwise, nothing with --quiet.
struct StatusLine {
    quiet: bool,
    terminal: bool,
    open: bool,
}

impl StatusLine {
    fn new(quiet: bool) -> Self {
        use std::io::IsTerminal;
        Self {
            quiet,
            terminal: io::stderr().is_terminal(),
            open: false,
        }
    }

    fn show(&mut self, event: Progress) {
        match event {
            Progress::Warning(text) => {
                self.finish();
                eprintln!("perfwarden: WARNING: {text}");
            }
            _ if self.quiet => {}
            Progress::Stage { index, total, name } => {
                self.finish();
                eprintln!("perfwarden: [{index}/{total}] {name}");
            }
            Progress::Output(line) if self.terminal => {
                let line: String = line.chars().take(100).collect();
                eprint!("\r\x1b[2K    {line}");
                self.open = true;
            }
            Progress::Output(line) => eprintln!("    {line}"),
        }
    }

    fn finish(&mut self) {
        if self.open {
            eprint!("\r\x1b[2K");
            self.open = false;
        }
    }
}

/// The checkout to measure: the current directory, which must hold the
/// benchmark harness.
fn checkout_root() -> anyhow::Result<PathBuf> {
    let dir = std::env::current_dir().context("reading the current directory")?;
    if dir.join("harness/benches/wallclock.rs").is_file() && dir.join("Cargo.toml").is_file() {
        Ok(dir)
    } else {
        anyhow::bail!(
            "{} is not a perfwarden checkout (no harness/benches/wallclock.rs); run perfwarden from the root of its repository",
            dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
