use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use perfwarden::chat::MistralTokenizer;
use perfwarden::chat::acquire::ModelSearch;
use perfwarden::chat::stream::{self, DEFAULT_MAX_REQUEST_BYTES};

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
    /// Measure, judge and report the performance contract (not available yet).
    Report,
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

fn load_tokenizer(explicit: Option<PathBuf>) -> anyhow::Result<MistralTokenizer> {
    let search = ModelSearch::from_env(explicit);
    let located = search.locate(&mut |note| eprintln!("perfwarden: {note}"))?;
    MistralTokenizer::from_file(&located.path)
        .with_context(|| format!("loading {}", located.path.display()))
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
            let tokenizer = load_tokenizer(cli.tokenizer)?;
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
        Command::Report => {
            eprintln!(
                "perfwarden: `report` is not available yet: measuring, judging and reporting are still being built. \
                 Today perfwarden can tokenize (`perfwarden tokenize --help`)."
            );
            Ok(ExitCode::from(EXIT_INFRA))
        }
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
