//! `perfwarden report` end to end: measure, judge, diagnose and render a
//! real run (quick mode), render it again from the database, and publish a
//! stored run twice to a fake GitHub API: one comment, edited in place.
//! The test that measures is in tier 2 (slow: nested `cargo bench`); the
//! others render and publish stored runs and are in tier 1.

mod common;
mod fake_github;

use std::path::Path;
use std::process::{Command, Output};

use common::synthetic;
use perfwarden::store::{Access, Store};

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
        matches!(code, Some(0 | 1 | 3)),
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
    // Every shipped contract is judged, each with its metric and cases.
    let contracts = verdict["contracts"].as_array().unwrap();
    let judged: Vec<(&str, &str, usize)> = contracts
        .iter()
        .map(|c| {
            (
                c["contract"].as_str().unwrap(),
                c["metric"].as_str().unwrap(),
                c["cases"].as_array().unwrap().len(),
            )
        })
        .collect();
    // Every shipped contract, each with every case its file lists.
    let shipped = perfwarden::judge::contract::Contract::load_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/contracts"),
    )
    .unwrap();
    let expected: Vec<(&str, &str, usize)> = shipped
        .iter()
        .map(|c| (c.id.as_str(), c.metric.name(), c.cases.len()))
        .collect();
    assert_eq!(judged, expected);
    assert_eq!(
        judged.iter().map(|(id, ..)| *id).collect::<Vec<_>>(),
        [
            "performance-001",
            "performance-002",
            "performance-003",
            "performance-004",
            "performance-005-cost",
            "performance-005-memory",
        ]
    );
    let status = verdict["verdict"].as_str().unwrap();
    assert!(["PASS", "FAIL", "INCONCLUSIVE"].contains(&status));
    // The exit code follows the verdicts (no base, so no regression).
    let expected = match status {
        "PASS" => 0,
        "FAIL" => 1,
        _ => 3,
    };
    assert_eq!(code, Some(expected), "exit {code:?} with verdict {status}");
    for contract in contracts {
        let name = contract["contract"].as_str().unwrap();
        let contract_status = contract["verdict"].as_str().unwrap();
        assert!(["PASS", "FAIL", "INCONCLUSIVE"].contains(&contract_status));
        for case in contract["cases"].as_array().unwrap() {
            for key in [
                "case",
                "payload",
                "payload_bytes",
                "unit",
                "baseline",
                "candidate",
                "overhead",
                "ci_low",
                "ci_high",
                "limit",
                "bound",
                "verdict",
                "samples",
                "note",
                "literal_overhead",
                "instructions_baseline",
                "instructions_candidate",
            ] {
                assert!(
                    case.get(key).is_some(),
                    "{name}: verdict.json case lacks {key}: {case}"
                );
            }
            // Measured, every one of them: an estimate inside its interval.
            let estimate = case["overhead"].as_f64();
            assert!(estimate.is_some(), "{name}: no figure: {case}");
            assert!(case["ci_low"].as_f64() <= estimate, "{name}: {case}");
            assert!(estimate <= case["ci_high"].as_f64(), "{name}: {case}");
        }
    }
    let wall_clock = &contracts[0];
    let cases = wall_clock["cases"].as_array().unwrap();
    for case in cases {
        assert_eq!(case["limit"], 0.05);
        assert_eq!(case["unit"], "ns");
        assert!(case["instructions_candidate"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(cases[0]["payload_bytes"], 343);
    assert_eq!(
        contracts[1]["cases"][0]["limit"], 0.05,
        "a case's own bound"
    );
    assert_eq!(contracts[1]["cases"][1]["limit"], 0.2);
    assert_eq!(contracts[3]["bound"], "at_least");
    // A case that would fail on a host measured as too noisy carries that
    // reason instead of its p99.
    assert!(
        contracts[3]["cases"][1]["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("p99 latency") || n.starts_with("too noisy to decide")),
        "{}",
        contracts[3]
    );
    assert_eq!(contracts[2]["limit"], 1e6, "1 ms, judged in ns");
    let checklist = verdict["checklist"].as_array().unwrap();
    assert_eq!(checklist.len(), 4);
    // The async-overhead item cites the decomposition of every payload.
    let overhead = checklist
        .iter()
        .find(|c| c["check"] == "async-overhead")
        .unwrap();
    let evidence = overhead["evidence"].as_str().unwrap();
    for payload in ["small", "medium", "large"] {
        assert!(
            evidence.contains(&format!("{payload} "))
                && evidence.contains("told apart by traced calls")
                && evidence.contains("the worker ran the job"),
            "{evidence}"
        );
    }
    // The run's noise score, from its batches.
    assert!(verdict["noise_score"].as_f64().is_some(), "{verdict}");
    assert!(
        checklist
            .iter()
            .all(|c| c["evidence"].as_str().is_some_and(|e| !e.is_empty()))
    );

    let summary = std::fs::read_to_string(out.join("latest/summary.md")).unwrap();
    for contract in contracts {
        let line = format!(
            "**{} {}**",
            contract["contract"].as_str().unwrap(),
            contract["verdict"].as_str().unwrap()
        );
        assert!(
            summary.contains(&line),
            "summary.md lacks {line:?}:\n{summary}"
        );
        let section = format!("### {} · ", contract["contract"].as_str().unwrap());
        assert!(summary.contains(&section), "summary.md lacks {section:?}");
    }
    let warning_at = summary
        .find("> [!WARNING]\n> no stored history was found")
        .expect("the warning is in the report");
    let warning_len = summary[warning_at..].find("\n\n").unwrap() + 2;
    for needle in [
        "| small (343 B)",
        "| medium (65043 B)",
        "| large (380043 B)",
        "| 8 MiB unbroken word (8388651 B)",
        "```mermaid",
        "regression checklist",
        "**Noise score ",
        "### Machine",
    ] {
        assert!(summary.contains(needle), "summary.md lacks {needle:?}");
    }
    // The figures in the summary are the stored run's.
    let run_id = verdict["run_id"].as_i64().unwrap();
    assert!(summary.contains(&format!("Run #{run_id}")));
    let mut charts = vec![
        "performance-001-sides".to_owned(),
        "performance-001-distributions".to_owned(),
        "performance-002-sides".to_owned(),
        "trend-small-criterion".to_owned(),
        "trend-large-callgrind".to_owned(),
    ];
    charts.extend(judged.iter().map(|(c, ..)| format!("{c}-judged")));
    for chart in charts {
        let svg = std::fs::read_to_string(out.join(format!("latest/charts/{chart}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{chart}");
    }
    // Each benchmark's callgrind profile is stored; a failed case of a spec
    // payload gets its async-against-sync diff, with the command.
    let listed = perfwarden(&database)
        .args(["profile-diff", &format!("{run_id}:large/sync")])
        .args([&format!("{run_id}:large/async"), "--json"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    // The profiles' totals are the counts the verdict shows.
    assert_eq!(
        listed["total_before"].as_f64(),
        cases[2]["instructions_baseline"].as_f64()
    );
    assert_eq!(
        listed["total_after"].as_f64(),
        cases[2]["instructions_candidate"].as_f64()
    );
    assert!(
        !listed["functions"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    let spec_case_failed = contracts.iter().any(|c| {
        c["cases"].as_array().unwrap().iter().any(|case| {
            case["verdict"] == "FAIL"
                && ["small", "medium", "large"].contains(&case["payload"].as_str().unwrap())
        })
    });
    if spec_case_failed {
        assert!(summary.contains("### Where the time went"), "{summary}");
        assert!(
            summary.contains(&format!("Reproduce: perfwarden profile-diff {run_id}:")),
            "{summary}"
        );
    }
    let run_dir = out.join(format!("runs/{run_id}"));
    assert_eq!(
        std::fs::read_to_string(run_dir.join("summary.md")).unwrap(),
        summary
    );
    let dashboard = std::fs::read_to_string(out.join("dashboard/index.html")).unwrap();
    // Six suite trends and one trend per contract.
    assert_eq!(dashboard.matches("data-chart=").count(), 12);
    assert_eq!(dashboard.matches("data-contract=").count(), 6);
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

    // The noise score is over every batch the verdicts used, re-measured
    // looks included: the stored figures count every stored batch, and
    // `history --json` gives the score `verdict.json` gives.
    let history = perfwarden(&database)
        .args(["history", "--json"])
        .output()
        .unwrap();
    assert!(history.status.success(), "{}", stderr(&history));
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&history.stdout).unwrap();
    let stored_run = runs.iter().find(|r| r["id"] == run_id).unwrap();
    assert_eq!(stored_run["noise_score"], verdict["noise_score"]);
    let batches_figure = stored_run["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["benchmark"] == "host" && m["metric"] == "batches")
        .and_then(|m| m["value"].as_f64());
    let stored_batches = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(database.to_str().unwrap(), Access::ReadOnly)
            .await
            .unwrap();
        let environment = store.environment(run_id).await.unwrap();
        store.close().await.unwrap();
        environment
            .iter()
            .map(|s| s.log.batches.len())
            .sum::<usize>()
    });
    assert_eq!(batches_figure, Some(stored_batches as f64));

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
            matches!(code, Some(0 | 1 | 3)),
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
    // The run's noise, measured per batch, is in the comment.
    assert!(
        ours[0].body.contains("**Noise score ")
            && ours[0]
                .body
                .contains("over 40 batches, a thread preempted in"),
        "{}",
        ours[0].body
    );
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
    // A check run per contract and report, each named by its contract.
    let shipped =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/contracts"))
            .unwrap()
            .count();
    assert_eq!(fake.check_runs().len(), 2 * shipped);
    let mut names: Vec<String> = fake
        .check_runs()
        .iter()
        .map(|run| run["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), shipped, "{names:?}");
    assert!(names.contains(&"perfwarden / performance-004".to_owned()));
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
            matches!(output.status.code(), Some(0 | 1 | 3)),
            "{}",
            stderr(&output)
        );
        (output.status.code(), verdict_of(&dir.path().join(out)))
    };
    let (code, loose) = render(&shipped, "loose");
    assert_eq!(loose["verdict"], "PASS", "{loose}");
    assert_eq!(code, Some(0));
    // Same id, another limit: judged anew, not the stored PASS. The stored
    // speed probes found CPU 1 about 2% slower while sampling: at a 0.1%
    // limit that run cannot fail, it is undecided, and says why.
    let (code, tight) = render(&strict, "tight");
    assert_eq!(code, Some(3));
    assert_eq!(tight["verdict"], "INCONCLUSIVE", "{tight}");
    assert_eq!(tight["contracts"][0]["cases"][0]["limit"], 0.001);
    let note = tight["contracts"][0]["cases"][1]["note"]
        .as_str()
        .unwrap_or("");
    assert!(
        note.starts_with("too noisy to decide: CPU 1 ran 2% slower during sampling (a measured thread was preempted in "),
        "{tight}"
    );
    // The first verdict is still there, with its evidence, and is reused.
    let (_, loose_again) = render(&shipped, "loose-again");
    assert_eq!(loose_again, loose);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(database.to_str().unwrap(), Access::ReadOnly)
            .await
            .unwrap();
        let judgement = store.judgement(2).await.unwrap();
        let mut limits: Vec<f64> = judgement.verdicts.iter().map(|v| v.bound.value()).collect();
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
        .args(["report", "--no-measure", "--contract"])
        .arg(&shipped)
        .arg("--out")
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
        matches!(output.status.code(), Some(0 | 1 | 3)),
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
    for run in &runs {
        let score = run["noise_score"].as_f64();
        assert!(score.is_some_and(|s| (0.0..0.05).contains(&s)), "{run}");
    }
    assert_eq!(
        std::fs::read(&database).unwrap(),
        before,
        "history wrote to the database"
    );
}

#[test]
#[ignore = "tier 2, slow: measures (nested cargo bench and callgrind), minutes"]
fn a_contract_written_here_is_judged_with_no_code_change() {
    let dir = tempfile::tempdir().unwrap();
    let contracts = dir.path().join("contracts");
    std::fs::create_dir_all(contracts.join("payloads")).unwrap();
    // A payload the harness has never seen: a tool-calling conversation.
    let request = serde_json::json!({
        "messages": [
            {"role": "user", "content": "What is the weather in Paris? ".repeat(200)},
            {"role": "assistant", "tool_calls": [{"id": "abcdefghi", "type": "function",
                "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "abcdefghi", "content": "{\"celsius\": 21.5}"},
        ],
        "tools": [{"type": "function", "function": {"name": "weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}}],
    })
    .to_string();
    std::fs::write(contracts.join("payloads/weather.json"), &request).unwrap();
    std::fs::write(
        contracts.join("cpu.toml"),
        r#"
            id = "weather-cpu"
            title = "CPU of a tool call"
            metric = "cpu_time"
            baseline = "sync"
            candidate = "async"
            limit = 0.5
            [[cases]]
            name = "weather"
            payload = { file = "payloads/weather.json" }
        "#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = perfwarden(&dir.path().join("history.db"))
        .args(["report", "--quick", "--contract"])
        .arg(contracts.join("cpu.toml"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let code = output.status.code();
    assert!(matches!(code, Some(0 | 1 | 3)), "{}", stderr(&output));
    let verdict = verdict_of(&out);
    let contracts = verdict["contracts"].as_array().unwrap();
    assert_eq!(contracts.len(), 1, "only the contract named");
    let contract = &contracts[0];
    assert_eq!(contract["contract"], "weather-cpu");
    assert_eq!(contract["metric"], "cpu_time");
    let case = &contract["cases"][0];
    assert_eq!(case["payload"], "file-weather");
    assert_eq!(case["payload_bytes"], request.len());
    assert_eq!(case["unit"], "ns");
    assert_eq!(case["limit"], 0.5);
    assert!(case["samples"].as_u64().unwrap() >= 6, "{case}");
    let estimate = case["overhead"].as_f64().unwrap();
    assert!(
        case["ci_low"].as_f64().unwrap() <= estimate
            && estimate <= case["ci_high"].as_f64().unwrap()
    );
    let expected = match contract["verdict"].as_str().unwrap() {
        "PASS" => 0,
        "FAIL" => 1,
        _ => 3,
    };
    assert_eq!(code, Some(expected), "{contract}");
    let summary = std::fs::read_to_string(out.join("latest/summary.md")).unwrap();
    assert!(
        summary.contains("### weather-cpu · CPU of a tool call"),
        "{summary}"
    );
}

#[test]
fn an_undecided_report_has_its_own_exit_code_unless_asked_to_fail() {
    let dir = tempfile::tempdir().unwrap();
    // A stored run with wall-clock samples only: the other shipped contracts
    // have nothing to judge and stay INCONCLUSIVE.
    let database = database_with_runs(dir.path(), 1);
    let report = |extra: &[&str], out: &str| {
        perfwarden(&database)
            .args(["report", "--no-measure"])
            .args(extra)
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .unwrap()
    };
    let output = report(&[], "neutral");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let verdict = verdict_of(&dir.path().join("neutral"));
    assert_eq!(verdict["verdict"], "INCONCLUSIVE");
    assert_eq!(verdict["contracts"][0]["verdict"], "PASS");
    let summary = std::fs::read_to_string(dir.path().join("neutral/latest/summary.md")).unwrap();
    assert!(summary.contains("**Undecided** is not a pass"), "{summary}");
    assert!(
        summary.contains("samples in this run: it was measured without this contract"),
        "{summary}"
    );
    let output = report(&["--inconclusive", "fail"], "strict");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

/// Every `href` in the files under `dir` (HTML, SVG and markdown), with
/// the file it is in.
fn hrefs(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(hrefs(&path));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for piece in text.split("href=\"").skip(1) {
            let target = piece.split('"').next().unwrap().to_owned();
            found.push((path.clone(), target));
        }
    }
    found
}

#[test]
fn change_points_are_found_shown_and_every_link_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("history.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(database.to_str().unwrap(), Access::Create)
            .await
            .unwrap();
        // Async 8% slower from the ninth run (id 9) on.
        for i in 0..16 {
            store.insert_run(&synthetic::run(i, Some(8))).await.unwrap();
        }
        store.close().await.unwrap();
    });
    let out = dir.path().join("reports");
    // Two runs rendered: only they have pages, so only their points link.
    for run in ["4", "16"] {
        let output = perfwarden(&database)
            .args(["report", "--no-measure", "--quiet", "--run", run, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            matches!(output.status.code(), Some(0 | 1 | 3)),
            "{}",
            stderr(&output)
        );
    }

    let output = perfwarden(&database)
        .args(["history", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let at_nine = runs.iter().find(|r| r["id"] == 9).unwrap()["change_points"]
        .as_array()
        .unwrap()
        .clone();
    for payload in ["small", "medium", "large"] {
        let found = at_nine
            .iter()
            .find(|c| c["source"] == "criterion" && c["benchmark"] == format!("{payload}/async"))
            .unwrap_or_else(|| panic!("no change point of {payload}/async at run 9: {at_nine:?}"));
        assert_eq!(found["before_run_id"], 8);
        let change = found["relative_change"].as_f64().unwrap();
        assert!((0.06..0.10).contains(&change), "{found}");
        assert!(found["p_value"].as_f64().unwrap() < 0.001, "{found}");
    }
    // Instruction counts did not move: no change point there.
    assert!(
        runs.iter()
            .flat_map(|r| r["change_points"].as_array().unwrap())
            .all(|c| c["source"] != "callgrind"),
        "{runs:?}"
    );

    let dashboard = std::fs::read_to_string(out.join("dashboard/index.html")).unwrap();
    assert!(
        dashboard.contains("<g class=\"change-point\">"),
        "no marker"
    );
    assert!(
        dashboard.contains("<table id=\"change-point-list\">"),
        "no table"
    );
    // A point's title gives its interval; the change point's, its commits.
    let trend =
        std::fs::read_to_string(out.join("latest/charts/trend-medium-criterion.svg")).unwrap();
    assert!(
        trend.contains("sync: 300.00 µs [298.50 µs, 301.50 µs]</title>"),
        "{trend}"
    );
    assert!(
        trend.contains("<title>change point in criterion medium/async: +8."),
        "{trend}"
    );

    // Every link of every written file resolves, the copies of the trend
    // charts in latest/charts/ included.
    let links = hrefs(&out);
    let charts = out.join("latest/charts");
    assert!(
        links.iter().any(|(file, _)| file.starts_with(&charts)),
        "the latest trend charts link nowhere: {links:?}"
    );
    assert!(links.len() > 10, "{links:?}");
    for (file, href) in &links {
        if href.starts_with("https://") || href.starts_with("http://") {
            continue;
        }
        let target = file.parent().unwrap().join(href.split('#').next().unwrap());
        assert!(
            target.is_file(),
            "{} links to {href}, which does not exist",
            file.display()
        );
    }
}
