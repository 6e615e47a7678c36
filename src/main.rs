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
use perfwarden::measure::payload::{Payload, Variant};
use perfwarden::measure::run::{self as measure_run, Progress, RunOptions};
use perfwarden::store::Store;

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
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Measure, judge and report the performance contract (not available yet).
    Report,
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

#[derive(Debug, clap::Args)]
struct DatabaseArgs {
    /// The SQLite database (a path or sqlite:// URL). Default:
    /// ~/.local/share/perfwarden/history.db (PERFWARDEN_DATA_DIR or XDG_DATA_HOME move it).
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

    fn open(&self, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Store> {
        Ok(runtime.block_on(Store::open(&self.url()))?)
    }
}

/// Exit codes: 0 ran, 1 invalid input or broken contract, 2 usage or
/// infrastructure error.
const EXIT_INVALID: u8 = 1;
const EXIT_INFRA: u8 = 2;

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
    Ok(Box::new(file))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Tokenize {
            input,
            jsonl,
            max_request_bytes,
        } => {
            let reader = open_input(&input)?;
            let tokenizer = perfwarden::chat::load_tokenizer(cli.tokenizer, &mut |note| {
                eprintln!("perfwarden: {note}")
            })?;
            let stdout = io::stdout().lock();
            if jsonl {
                let summary = stream::tokenize_jsonl(
                    &tokenizer,
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
            match stream::tokenize_request(&tokenizer, &bytes, max_request_bytes) {
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
        Command::Tokenizer => {
            let search = ModelSearch::from_env(cli.tokenizer);
            let located = search.locate(&mut |note| eprintln!("perfwarden: {note}"))?;
            println!("{}", located.path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            quick,
            base_commit,
            pr,
            quiet,
            database,
        } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            // Open the database first: a bad --database-url fails in a second,
            // not after minutes of measuring.
            let store = database.open(&runtime)?;
            let checkout_dir = checkout_root()?;
            let search = ModelSearch::from_env(cli.tokenizer);
            let located = search.locate(&mut |note| eprintln!("perfwarden: {note}"))?;
            let tokenizer: &'static perfwarden::chat::MistralTokenizer = Box::leak(Box::new(
                perfwarden::chat::MistralTokenizer::from_file(&located.path)?,
            ));
            let options = RunOptions {
                checkout_dir,
                quick,
                tokenizer_path: located.path,
                base_commit,
                pr_number: pr,
            };
            let started = std::time::Instant::now();
            let run = measure_run::measure(&options, tokenizer, &mut |event| {
                print_progress(event, quiet)
            })?;
            let id = runtime.block_on(store.insert_run(&run))?;
            eprintln!(
                "perfwarden: stored run {id} ({} measurements, {} samples) in {} after {:.0} s",
                run.measurements.len(),
                run.samples.len(),
                database.url(),
                started.elapsed().as_secs_f64()
            );
            for note in &run.notes {
                eprintln!("perfwarden: WARNING: {note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::History {
            json,
            limit,
            database,
        } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let store = database.open(&runtime)?;
            let runs = runtime.block_on(store.runs(limit))?;
            let mut out = io::BufWriter::new(io::stdout().lock());
            if json {
                let mut documents = Vec::with_capacity(runs.len());
                for run in runs {
                    let measurements = runtime.block_on(store.measurements(run.id))?;
                    let mut document = serde_json::to_value(&run)?;
                    document["measurements"] = serde_json::to_value(measurements)?;
                    documents.push(document);
                }
                serde_json::to_writer_pretty(&mut out, &documents)?;
                out.write_all(b"\n")?;
            } else {
                out.write_all(perfwarden::render::history_table(&runs).as_bytes())?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Selftest {
            quick,
            skip_probe,
            contract,
        } => {
            let contract = Contract::load(&contract)?;
            let search = ModelSearch::from_env(cli.tokenizer);
            let located = search.locate(&mut |note| eprintln!("perfwarden: {note}"))?;
            let tokenizer: &'static perfwarden::chat::MistralTokenizer = Box::leak(Box::new(
                perfwarden::chat::MistralTokenizer::from_file(&located.path)?,
            ));
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
                tokenizer_path: located.path,
            };
            let reports = selftest::run(&options, tokenizer, &contract, &mut |step| {
                eprintln!("perfwarden: selftest: {step}")
            });
            print!("{}", perfwarden::render::selftest_matrix(&reports));
            match selftest::evaluate(&reports) {
                Ok(()) => {
                    println!(
                        "selftest: OK: the real wrapper passes, each fixture is caught by its own probe only, {} breaks the contract",
                        selftest::SLOWDOWN_FIXTURE
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    for problem in problems {
                        println!("selftest: FAILED: {problem}");
                    }
                    Ok(ExitCode::from(EXIT_INVALID))
                }
            }
        }
        Command::ProbeCall {
            wrapper,
            payload,
            variant,
        } => {
            let payload = Payload::from_name(&payload).context("unknown payload")?;
            let variant = Variant::from_name(&variant).context("unknown variant")?;
            let tokenizer: &'static perfwarden::chat::MistralTokenizer = Box::leak(Box::new(
                perfwarden::chat::load_tokenizer(cli.tokenizer, &mut |note| {
                    eprintln!("perfwarden: {note}")
                })?,
            ));
            perfwarden::diagnose::instructions::probe_call(tokenizer, &wrapper, payload, variant)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report => {
            eprintln!(
                "perfwarden: `report` is not available yet: measuring, judging and reporting are still being built. \
                 Today perfwarden can tokenize (`perfwarden tokenize --help`)."
            );
            Ok(ExitCode::from(EXIT_INFRA))
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

fn print_progress(event: Progress, quiet: bool) {
    match event {
        Progress::Stage { index, total, name } if !quiet => {
            eprintln!("perfwarden: [{index}/{total}] {name}")
        }
        Progress::Output(line) if !quiet => eprintln!("    {line}"),
        Progress::Warning(text) => eprintln!("perfwarden: WARNING: {text}"),
        _ => {}
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
