//! `perfwarden report` end to end: measure, judge, diagnose and render a
//! real run (quick mode), render it again from the database, and publish a
//! stored run twice to a fake GitHub API: one comment, edited in place.
//! The test that measures is in tier 2 (slow: nested `cargo bench`); the
//! others render and publish stored runs and are in tier 1.

mod common;
mod fake_github;

use std::path::Path;
use std::process::{Command, Output};

use perfwarden::store::{Access, Store, synthetic};

fn perfwarden(database: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_perfwarden"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PERFWARDEN_TOKENIZER", common::model_path())
        .env("DATABASE_URL", database)
        .env_remove("GITHUB_ACTIONS");
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
#[ignore = "tier 2, slow: measures (nested cargo bench and callgrind), minutes"]
fn a_quick_report_from_nothing_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("history.db");
    let out = dir.path().join("reports");
    // A CI job that expects a kept history and finds none says so loudly.
    let output = perfwarden(&database)
        .args(["report", "--quick", "--expect-history", "--out"])
        .arg(&out)
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    let code = output.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "exit {code:?}: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output)
            .contains("::warning title=perfwarden: history missing::no stored history was found"),
        "{}",
        stderr(&output)
    );

    let verdict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("latest/verdict.json")).unwrap())
            .unwrap();
    assert_eq!(verdict["contract"], "performance-001");
    let status = verdict["verdict"].as_str().unwrap();
    assert!(["PASS", "FAIL", "INCONCLUSIVE"].contains(&status));
    // The exit code follows the verdict.
    assert_eq!(
        code == Some(0),
        status == "PASS",
        "exit {code:?} with verdict {status}"
    );
    let cases = verdict["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        for key in [
            "case",
            "payload_bytes",
            "sync_ns",
            "async_ns",
            "overhead",
            "ci_low",
            "ci_high",
            "limit",
            "verdict",
            "literal_overhead",
            "instructions_sync",
            "instructions_async",
        ] {
            assert!(
                case.get(key).is_some(),
                "verdict.json case lacks {key}: {case}"
            );
        }
        assert!(case["ci_low"].as_f64().unwrap() <= case["overhead"].as_f64().unwrap());
        assert!(case["overhead"].as_f64().unwrap() <= case["ci_high"].as_f64().unwrap());
        assert_eq!(case["limit"], 0.05);
        assert!(case["instructions_async"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(cases[0]["payload_bytes"], 300);
    let checklist = verdict["checklist"].as_array().unwrap();
    assert_eq!(checklist.len(), 4);
    assert!(
        checklist
            .iter()
            .all(|c| c["evidence"].as_str().is_some_and(|e| !e.is_empty()))
    );

    let summary = std::fs::read_to_string(out.join("latest/summary.md")).unwrap();
    assert!(
        summary.contains(&format!("performance-001 {status}")),
        "{summary}"
    );
    let warning_at = summary
        .find("> [!WARNING]\n> no stored history was found")
        .expect("the warning is in the report");
    let warning_len = summary[warning_at..].find("\n\n").unwrap() + 2;
    for needle in [
        "| small (300 B)",
        "| medium (65000 B)",
        "| large (380000 B)",
        "```mermaid",
        "regression checklist",
        "### Machine",
    ] {
        assert!(summary.contains(needle), "summary.md lacks {needle:?}");
    }
    // The figures in the summary are the stored run's.
    let run_id = verdict["run_id"].as_i64().unwrap();
    assert!(summary.contains(&format!("Run #{run_id}")));
    for chart in [
        "sync_vs_async",
        "overhead",
        "distributions",
        "trend-small-criterion",
        "trend-large-callgrind",
    ] {
        let svg = std::fs::read_to_string(out.join(format!("latest/charts/{chart}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{chart}");
    }
    let run_dir = out.join(format!("runs/{run_id}"));
    assert_eq!(
        std::fs::read_to_string(run_dir.join("summary.md")).unwrap(),
        summary
    );
    let dashboard = std::fs::read_to_string(out.join("dashboard/index.html")).unwrap();
    assert_eq!(dashboard.matches("data-chart=").count(), 6);
    assert!(dashboard.contains(&format!("href=\"runs/{run_id}.html\"")));
    for fetch in [
        "src=\"http",
        "href=\"http",
        "<script",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(
            !dashboard.contains(fetch),
            "the dashboard must not fetch anything ({fetch})"
        );
    }
    assert!(out.join(format!("dashboard/runs/{run_id}.html")).is_file());

    // Rendering the stored run again gives the same report, without measuring.
    let again = dir.path().join("again");
    let output = perfwarden(&database)
        .args(["report", "--no-measure", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), code, "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("wall clock (Criterion)"),
        "it measured again"
    );
    let mut without_warning = summary.clone();
    without_warning.replace_range(warning_at..warning_at + warning_len, "");
    assert_eq!(
        std::fs::read_to_string(again.join("latest/summary.md")).unwrap(),
        without_warning
    );

    let output = perfwarden(&database)
        .args(["report", "--no-measure", "--run", "999", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("run 999 does not exist"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn no_measure_on_an_empty_database_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("empty.db");
    // A mistyped path is not created.
    let output = perfwarden(&database)
        .args(["report", "--no-measure", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("there is no database at"),
        "{}",
        stderr(&output)
    );
    assert!(!database.exists());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(database.to_str().unwrap(), Access::Create)
            .await
            .unwrap();
        store.close().await.unwrap();
    });
    let output = perfwarden(&database)
        .args(["report", "--no-measure", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no run is stored yet"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn two_ci_reports_for_one_pull_request_leave_one_comment_edited_once() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("history.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(database.to_str().unwrap(), Access::Create)
            .await
            .unwrap();
        for i in 0..3 {
            store.insert_run(&synthetic::run(i, None)).await.unwrap();
        }
    });
    let fake = fake_github::FakeGithub::start_with_prefix("/api/v3");
    fake.add_pull_request(12);
    fake.add_comment(12, "someone-else", "Looks good to me");
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        serde_json::json!({"number": 12, "pull_request": {"number": 12, "head": {"sha": "a".repeat(40)}, "base": {"sha": "b".repeat(40)}}})
            .to_string(),
    )
    .unwrap();
    let ci = |out: &str| {
        perfwarden(&database)
            .args(["report", "--ci", "--no-measure", "--out"])
            .arg(dir.path().join(out))
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_TOKEN", "test-token-never-printed")
            .env("GITHUB_REPOSITORY", fake.repository())
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_RUN_ID", "42")
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("GITHUB_STEP_SUMMARY", dir.path().join("step-summary.md"))
            .env("PERFWARDEN_GITHUB_RETRY_BASE_MS", "10")
            .output()
            .unwrap()
    };
    for attempt in ["first", "second"] {
        let output = ci(attempt);
        let code = output.status.code();
        assert!(
            matches!(code, Some(0) | Some(1)),
            "{attempt}: exit {code:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("test-token-never-printed"));
        assert!(!String::from_utf8_lossy(&output.stdout).contains("test-token-never-printed"));
    }
    let comments = fake.comments(12);
    assert_eq!(
        comments.len(),
        2,
        "one comment of perfwarden's beside the other one"
    );
    let ours: Vec<_> = comments
        .iter()
        .filter(|c| c.body.contains("<!-- perfwarden:performance-001 -->"))
        .collect();
    assert_eq!(ours.len(), 1, "exactly one sticky comment");
    assert!(ours[0].body.contains("performance-001"));
    assert_eq!(
        fake.requests_matching("POST", "/issues/12/comments").len(),
        1,
        "created once"
    );
    assert_eq!(
        fake.requests_matching("PATCH", "/issues/comments/").len(),
        1,
        "edited once"
    );
    assert_eq!(ours[0].edits, 1);
    assert_eq!(fake.check_runs().len(), 2, "a check run per report");
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.route().starts_with("/api/v3/"))
    );
    assert!(
        fake.check_runs()[0]["output"]["title"]
            .as_str()
            .unwrap()
            .starts_with("performance-001: ")
    );
}

/// A stored run with the samples of `synthetic::run`.
fn database_with_runs(dir: &Path, runs: usize) -> std::path::PathBuf {
    let database = dir.join("history.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(database.to_str().unwrap(), Access::Create)
            .await
            .unwrap();
        for i in 0..runs {
            store.insert_run(&synthetic::run(i, None)).await.unwrap();
        }
        store.close().await.unwrap();
    });
    database
}

fn verdict_of(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("latest/verdict.json")).unwrap())
        .unwrap()
}

#[test]
fn another_contract_adds_a_verdict_and_an_edited_limit_is_judged_anew() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_with_runs(dir.path(), 2);
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/contracts/performance-001.toml");
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        std::fs::read_to_string(&shipped)
            .unwrap()
            .replace("limit = 0.05", "limit = 0.001"),
    )
    .unwrap();
    let render = |contract: &Path, out: &str| {
        let output = perfwarden(&database)
            .args(["report", "--no-measure", "--contract"])
            .arg(contract)
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .unwrap();
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{}",
            stderr(&output)
        );
        (output.status.code(), verdict_of(&dir.path().join(out)))
    };
    let (code, loose) = render(&shipped, "loose");
    assert_eq!(loose["verdict"], "PASS", "{loose}");
    assert_eq!(code, Some(0));
    // Same id, another limit: judged anew, not the stored PASS.
    let (code, tight) = render(&strict, "tight");
    assert_eq!(code, Some(1));
    assert_ne!(tight["verdict"], "PASS", "{tight}");
    assert_eq!(tight["cases"][0]["limit"], 0.001);
    // The first verdict is still there, with its evidence, and is reused.
    let (_, loose_again) = render(&shipped, "loose-again");
    assert_eq!(loose_again, loose);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(database.to_str().unwrap(), Access::ReadOnly)
            .await
            .unwrap();
        let judgement = store.judgement(2).await.unwrap();
        let mut limits: Vec<f64> = judgement.verdicts.iter().map(|v| v.limit).collect();
        limits.sort_by(f64::total_cmp);
        assert_eq!(limits, [0.001, 0.05]);
        assert_eq!(judgement.checklist.len(), 4, "the checklist is kept");
        assert!(
            !judgement.comparisons.is_empty(),
            "the comparisons are kept"
        );
        store.close().await.unwrap();
    });
    // The database file alone (the log checkpointed on exit) holds it all.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&database, copy.path().join("history.db")).unwrap();
    let output = perfwarden(&copy.path().join("history.db"))
        .args(["report", "--no-measure", "--out"])
        .arg(copy.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(verdict_of(&copy.path().join("out")), loose);
}

#[test]
fn reports_never_write_through_symbolic_links() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_with_runs(dir.path(), 1);
    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, "keep me").unwrap();
    let latest = dir.path().join("out/latest");
    std::fs::create_dir_all(&latest).unwrap();
    for name in ["summary.partial", "summary.md.partial", "verdict.partial"] {
        std::os::unix::fs::symlink(&outside, latest.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(&outside, latest.join("summary.md")).unwrap();
    let output = perfwarden(&database)
        .args(["report", "--no-measure", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
    let summary = latest.join("summary.md");
    assert!(
        !std::fs::symlink_metadata(&summary)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(summary)
            .unwrap()
            .contains("performance-001")
    );
    let leftovers: Vec<_> = std::fs::read_dir(&latest)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with(".partial") && !n.starts_with("summary") && !n.starts_with("verdict")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn history_reads_a_read_only_database_and_never_creates_one() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_with_runs(dir.path(), 2);
    let mistyped = dir.path().join("histroy.db");
    let output = perfwarden(&mistyped).arg("history").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("there is no database at"),
        "{}",
        stderr(&output)
    );
    assert!(!mistyped.exists(), "a read command created a database");

    // The database and its directory read-only for the reader: as root the
    // reader is `nobody`, for whom the mode bits hold, running a copy of the
    // binary beside the database (the checkout may be out of its reach).
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let set_mode = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let as_root = unsafe { libc::geteuid() } == 0;
    let mut history = if as_root {
        let binary = dir.path().join("perfwarden");
        // Copied by `cp`, not by this process: a descriptor open for writing
        // here would be inherited by another test's fork until its exec, and
        // running the copy could then fail with "Text file busy" (ETXTBSY).
        let copied = Command::new("cp")
            .arg(env!("CARGO_BIN_EXE_perfwarden"))
            .arg(&binary)
            .status()
            .unwrap();
        assert!(copied.success());
        let mut command = Command::new(binary);
        command
            .current_dir(dir.path())
            .env("DATABASE_URL", &database)
            .uid(65534)
            .gid(65534);
        command
    } else {
        perfwarden(&database)
    };
    history.args(["history", "--json"]);
    set_mode(&database, 0o444);
    set_mode(dir.path(), 0o555);
    let before = std::fs::read(&database).unwrap();
    let output = history.output().unwrap();
    set_mode(dir.path(), 0o755);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        std::fs::read(&database).unwrap(),
        before,
        "history wrote to the database"
    );
}
