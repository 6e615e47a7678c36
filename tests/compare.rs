//! `perfwarden compare` and `bisect` end to end. Tier 1: the batch protocol
//! as a real build serves it, and the refusals that come before any build.
//! Tier 2: real commits of a scratch repository (this repository's tracked
//! files, committed with fixed dates so that the hashes, and with them the
//! cached builds, are the same from one test run to the next), built in the
//! shared target directory and measured side by side.

mod common;
mod noise;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use perfwarden::measure::batches::{GREETING, parse_reply};

fn perfwarden(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_perfwarden"));
    command
        .current_dir(dir)
        .env("PERFWARDEN_TOKENIZER", common::model_path())
        // Builds share the target directory this test binary was built in,
        // so only perfwarden itself is compiled per commit.
        .env("CARGO_TARGET_DIR", target_dir());
    command
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory holds tmp/")
        .to_path_buf()
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_build_serves_timed_batches_and_names_what_it_cannot_serve() {
    let mut server = perfwarden(Path::new(env!("CARGO_MANIFEST_DIR")))
        .arg("serve-batches")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("perfwarden starts");
    let mut input = server.stdin.take().unwrap();
    let mut output = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), GREETING);
    let mut ask = |request: &str| {
        writeln!(input, "{request}").unwrap();
        input.flush().unwrap();
        let mut reply = String::new();
        output.read_line(&mut reply).unwrap();
        reply
    };
    for request in ["batch small/sync 3", "batch medium/async 2"] {
        let reply = ask(request);
        let took = parse_reply(&reply).unwrap_or_else(|e| panic!("{request}: {e}"));
        assert!(took.as_nanos() > 0, "{request}: {reply}");
    }
    let unknown = ask("batch huge/sync 1");
    assert_eq!(
        parse_reply(&unknown).unwrap_err().to_string(),
        "the server failed the batch: unknown benchmark 'huge/sync': expected <small|medium|large>/<sync|async>"
    );
    assert!(ask("batch small/sync 0").starts_with("error "));
    writeln!(input, "quit").unwrap();
    drop(input);
    assert!(server.wait().unwrap().success());
}

#[test]
fn a_base_that_predates_the_protocol_is_refused_before_building() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = perfwarden::measure::builds::git(repo, &["rev-list", "--max-parents=0", "HEAD"])
        .expect("git reads the history");
    let root = root.lines().next().unwrap();
    let output = perfwarden(repo)
        .args(["compare", root, "HEAD", "--quick"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("predates `perfwarden compare`") && stderr.contains(root),
        "{}",
        text(&output)
    );

    let output = perfwarden(repo)
        .args(["compare", "no-such-branch"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("'no-such-branch' names no commit"),
        "{}",
        text(&output)
    );

    let output = perfwarden(repo)
        .args(["compare", "HEAD", "--profile", "--no-instructions"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot be used with"),
        "{}",
        text(&output)
    );

    let output = perfwarden(repo)
        .args(["compare", "HEAD", "--benchmark", "huge/sync"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("unknown benchmark 'huge/sync'"),
        "{}",
        text(&output)
    );
}

/// A change to a file of the scratch repository.
struct Edit {
    path: &'static str,
    find: &'static str,
    replace: &'static str,
}

const TEMPLATE: &str = "src/chat/template.rs";
const SYNC_SIGNATURE: &str = "pub fn apply_mistral_chat_template(
    tokenizer: &MistralTokenizer,
    request: &ChatRequest,
) -> Result<Vec<u32>, ChatTemplateError> {
";

/// A comment above the sync function: line numbers move, the code does not.
fn comment(text: &'static str) -> Edit {
    Edit {
        path: TEMPLATE,
        find: SYNC_SIGNATURE,
        replace: text,
    }
}

/// The template function the sync call and the async wrapper both run
/// (`apply_mistral_chat_template` is `apply_until` with no deadline; the
/// wrapper calls `apply_until` itself).
const TEMPLATE_SIGNATURE: &str = "pub fn apply_until(
    tokenizer: &MistralTokenizer,
    request: &ChatRequest,
    from: PartialEncoding,
    deadline: Option<Instant>,
) -> Result<Applied, ChatTemplateError> {
";

/// The function the slowdown adds its work to, as callgrind names it.
const SLOWED_FUNCTION: &str = "perfwarden::chat::template::apply_until";

/// Real work in the template's own code, which the sync function runs: a
/// checksum of the token ids, 40 times over (about half again the
/// instructions of a call). Not inlined, so that callgrind counts the work
/// in that function itself.
/// `harness/testdata/callgrind/compare.*.medium.sync.out` were captured
/// from the same slowdown when the sync function held the template itself.
const SLOWDOWN: Edit = Edit {
    path: TEMPLATE,
    find: TEMPLATE_SIGNATURE,
    replace: "#[inline(never)]
pub fn apply_until(
    tokenizer: &MistralTokenizer,
    request: &ChatRequest,
    from: PartialEncoding,
    deadline: Option<Instant>,
) -> Result<Applied, ChatTemplateError> {
    let applied = render_and_encode(tokenizer, request, from, deadline)?;
    if let Applied::Done(tokens) = &applied {
        let mut checksum = 0u32;
        for _ in 0..40 {
            for &id in tokens {
                checksum = std::hint::black_box(checksum.rotate_left(5) ^ id);
            }
        }
        std::hint::black_box(checksum);
    }
    Ok(applied)
}

fn render_and_encode(
    tokenizer: &MistralTokenizer,
    request: &ChatRequest,
    from: PartialEncoding,
    deadline: Option<Instant>,
) -> Result<Applied, ChatTemplateError> {
",
};

/// Five commits: the base, a comment, the slowdown, two more comments.
fn history() -> Vec<(&'static str, Option<Edit>)> {
    vec![
        ("base", None),
        (
            "a comment only",
            Some(comment(
                "// The sync function is the subject; the wrapper calls it.\npub fn apply_mistral_chat_template(
    tokenizer: &MistralTokenizer,
    request: &ChatRequest,
) -> Result<Vec<u32>, ChatTemplateError> {
",
            )),
        ),
        ("the template checksums its tokens 40 times", Some(SLOWDOWN)),
        (
            "another comment",
            Some(Edit {
                path: "src/lib.rs",
                find: "pub mod affinity;\n",
                replace: "// The modules, one per pipeline stage.\npub mod affinity;\n",
            }),
        ),
        (
            "a third comment",
            Some(Edit {
                path: "src/lib.rs",
                find: "pub mod chat;\n",
                replace: "// The subject.\npub mod chat;\n",
            }),
        ),
    ]
}

/// The scratch repository at `dir`, with the commits of [`history`]; their
/// hashes, oldest first.
fn scratch_repository(dir: &Path) -> Vec<String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "perfwarden test")
            .env("GIT_AUTHOR_EMAIL", "test@perfwarden.invalid")
            .env("GIT_COMMITTER_NAME", "perfwarden test")
            .env("GIT_COMMITTER_EMAIL", "test@perfwarden.invalid")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    git(&["init", "--quiet", "--initial-branch=main"]);
    let files = Command::new("git")
        .current_dir(source)
        .args(["ls-files", "-z"])
        .output()
        .expect("git lists the tracked files");
    for name in files.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let from = source.join(name);
        if !from.is_file() {
            continue;
        }
        let to = dir.join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    let mut commits = Vec::new();
    for (message, edit) in history() {
        if let Some(edit) = edit {
            let path = dir.join(edit.path);
            let before = std::fs::read_to_string(&path).unwrap();
            assert!(
                before.contains(edit.find),
                "{} has no {:?}",
                edit.path,
                edit.find
            );
            std::fs::write(&path, before.replacen(edit.find, edit.replace, 1)).unwrap();
        }
        git(&["add", "--all"]);
        git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        commits.push(git(&["rev-parse", "HEAD"]));
    }
    commits
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)))
}

/// The verdicts of one metric, by benchmark.
fn verdicts(comparison: &serde_json::Value, metric: &str) -> Vec<(String, String)> {
    comparison["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["metric"] == metric)
        .map(|c| {
            (
                c["benchmark"].as_str().unwrap().to_owned(),
                c["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
#[ignore = "tier 2, timing and slow: builds three commits of a scratch repository (minutes the first time, cached by commit after) and judges them on wall clock"]
fn a_slowdown_of_the_sync_function_is_a_regression_and_a_comment_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let commits = scratch_repository(dir.path());
    let compare = |base: &str, head: &str, more: &[&str]| {
        let output = perfwarden(dir.path())
            .args(["compare", base, head, "--quick", "--json"])
            .args(more)
            .args(["--benchmark", "medium/sync", "--benchmark", "medium/async"])
            .args(["--benchmark", "large/sync"])
            .output()
            .unwrap();
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        assert!(
            matches!(output.status.code(), Some(0 | 1 | 3)),
            "{}",
            text(&output)
        );
        (output.status.code(), json(&output))
    };
    // The wall-clock verdicts are judged over the measuring below.
    let measuring = noise::Snapshot::take();
    let (_, comment) = compare(&commits[0], &commits[1], &["--profile"]);
    let (code, slowdown) = compare(&commits[1], &commits[2], &[]);
    eprintln!(
        "{}\n{}",
        serde_json::to_string_pretty(&comment).unwrap(),
        serde_json::to_string_pretty(&slowdown).unwrap()
    );
    // Instruction counts do not depend on the host: the comment changes
    // none, the checksum adds half again to the template's, which both run.
    for (benchmark, verdict) in verdicts(&comment, "instructions") {
        assert_eq!(verdict, "unchanged", "comment only, {benchmark}");
    }
    let counted = verdicts(&slowdown, "instructions");
    assert_eq!(counted.len(), 3, "{slowdown}");
    for (benchmark, verdict) in &counted {
        assert_eq!(verdict, "regression", "slowdown, {benchmark}");
    }
    // Where the time went: asked for with --profile, every benchmark of
    // the comment is diffed; unasked, each benchmark the slowdown regressed,
    // with the template function, which gained the work, at the top with nearly
    // all of the change.
    let asked: Vec<&str> = comment["profile_diffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["benchmark"].as_str().unwrap())
        .collect();
    assert_eq!(asked, ["medium/sync", "medium/async", "large/sync"]);
    let diffs = slowdown["profile_diffs"].as_array().unwrap();
    let diffed: Vec<&str> = diffs
        .iter()
        .map(|d| d["benchmark"].as_str().unwrap())
        .collect();
    assert_eq!(diffed, ["medium/sync", "medium/async", "large/sync"]);
    for d in diffs {
        let top = &d["diff"]["functions"][0];
        assert_eq!(top["function"], SLOWED_FUNCTION, "{d}");
        assert!(top["share"].as_f64().unwrap() > 0.95, "{d}");
        assert_eq!(d["head_commit"], commits[2].as_str());
        assert!(d["reason"].as_str().unwrap().contains("regressed"), "{d}");
    }
    noise::judged_since(
        measuring,
        "compare::a_slowdown_of_the_sync_function_is_a_regression_and_a_comment_is_not",
        || {
            for (benchmark, verdict) in verdicts(&comment, "wall_clock") {
                assert_ne!(
                    verdict, "regression",
                    "comment only, {benchmark}: {comment}"
                );
            }
            for (benchmark, verdict) in verdicts(&slowdown, "wall_clock") {
                assert_eq!(verdict, "regression", "slowdown, {benchmark}: {slowdown}");
            }
            assert_eq!(code, Some(1), "a regression exits 1");
        },
    );
}

#[test]
#[ignore = "tier 2, timing and slow: builds up to four commits of a scratch repository (minutes the first time, cached by commit after) and bisects them on instructions, then on wall clock"]
fn bisect_finds_the_commit_that_slowed_the_sync_function() {
    let dir = tempfile::tempdir().unwrap();
    let commits = scratch_repository(dir.path());
    let bisect = |metric: &str| {
        let output = perfwarden(dir.path())
            .args(["bisect", &commits[0], &commits[4], "--quick", "--json"])
            .args(["--benchmark", "large/sync", "--metric", metric])
            .output()
            .unwrap();
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        assert!(
            matches!(output.status.code(), Some(0 | 3)),
            "{}",
            text(&output)
        );
        // The user's checkout is left as it was: no bisection under way.
        let log = Command::new("git")
            .current_dir(dir.path())
            .args(["bisect", "log"])
            .output()
            .unwrap();
        assert!(!log.status.success(), "a bisection was left running");
        let bisection = json(&output);
        eprintln!("{}", serde_json::to_string_pretty(&bisection).unwrap());
        (output.status.code(), bisection)
    };
    let found = |code: Option<i32>, bisection: &serde_json::Value| {
        assert_eq!(code, Some(0), "{bisection}");
        assert_eq!(bisection["first_bad"]["commit"], commits[2], "{bisection}");
        assert_eq!(bisection["first_bad"]["outcome"], "bad");
        let evidence = &bisection["first_bad"]["evidence"][0];
        assert_eq!(evidence["benchmark"], "large/sync");
        assert_eq!(evidence["verdict"], "regression");
    };
    // Instruction counts do not depend on the host: strict.
    let (code, by_instructions) = bisect("instructions");
    found(code, &by_instructions);
    let tested: Vec<&str> = by_instructions["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["commit"].as_str().unwrap())
        .collect();
    assert!(tested.contains(&commits[1].as_str()), "{by_instructions}");
    // Judged over the measuring, not only over the assertions after it.
    noise::judged(
        "compare::bisect_finds_the_commit_that_slowed_the_sync_function",
        || {
            let (code, by_time) = bisect("wall-clock");
            found(code, &by_time);
        },
    );
}
