//! Where the time went: the callgrind profile parser on real captured output
//! (`harness/testdata/callgrind/`), the diff of two profiles, the report's
//! section for a FAIL, and `perfwarden profile-diff` on two captured files.
//!
//! The captured output: `probe.medium.{sync,async}.out` from callgrind run
//! as the async-overhead probe runs it (`perfwarden probe-call` under
//! `valgrind --tool=callgrind` with its toggles; names compressed, callgrind's
//! default), and `gungraun/<function>.medium/` from `cargo bench --bench
//! instructions` (one file per thread, names written out, and gungraun's
//! `summary.json` beside them); and `compare.{base,head}.medium.sync.out`,
//! the probe's profiles of two builds: this repository (base) and the
//! slowdown commit of the scratch repository in `tests/compare.rs` (head,
//! which adds a checksum loop to the sync function), each built and run as
//! `perfwarden compare` runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use perfwarden::diagnose::profile_diff::{self, StoredSide, WhereTimeWent};
use perfwarden::judge::contract::Bound;
use perfwarden::judge::verdict::{CaseVerdict, ContractVerdict, Status};
use perfwarden::measure::callgrind::{parse_summary, read_profile, read_profiles};
use perfwarden::measure::profile::{Profile, parse_profile};
use perfwarden::metric::Metric;
use perfwarden::render::report::{ReportData, summary_markdown, verdict_json};
use perfwarden::store::{Judgement, Machine, RunInfo};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("harness/testdata/callgrind")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).unwrap()
}

fn self_sum(profile: &Profile) -> u64 {
    profile.functions.iter().map(|f| f.self_ir).sum()
}

const MEASURED_CALL: &str = "perfwarden::diagnose::instructions::measured_call";
const RUN_JOB: &str = "perfwarden::chat::worker::run_job";
const ENCODE: &str = "perfwarden::chat::tokenizer::MistralTokenizer::encode";

#[test]
fn compressed_names_and_inclusive_costs_of_a_real_profile() {
    let text = read("probe.medium.sync.out");
    // The file does compress: names defined once as `(id) name`, then reused.
    assert!(
        text.lines()
            .any(|l| l.starts_with("fn=(") && l.ends_with(')'))
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("cfn=(") && l.ends_with(')'))
    );
    let profile = parse_profile(&text).unwrap();
    let totals: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("totals: "))
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert_eq!(profile.total_ir, totals);
    // Every instruction is some function's own.
    assert_eq!(self_sum(&profile), profile.total_ir);
    assert!(
        profile
            .functions
            .iter()
            .all(|f| !f.name.starts_with('(') || f.name == "(below main)")
    );
    // Collection is on inside the measured call only: it includes everything.
    let measured = profile.function(MEASURED_CALL).expect("the measured call");
    assert_eq!(measured.inclusive_ir, profile.total_ir);
    assert!(measured.self_ir < 100);
    let encode = profile.function(ENCODE).expect("the tokenizer's encode");
    assert!(encode.inclusive_ir > profile.total_ir / 2, "{encode:?}");
    assert!(encode.self_ir < encode.inclusive_ir);
    // Largest self count first.
    assert!(
        profile
            .functions
            .windows(2)
            .all(|w| w[0].self_ir >= w[1].self_ir)
    );
}

#[test]
fn the_async_probe_counts_the_worker_too() {
    let profile = parse_profile(&read("probe.medium.async.out")).unwrap();
    assert_eq!(self_sum(&profile), profile.total_ir);
    let caller = profile.function(MEASURED_CALL).unwrap().inclusive_ir;
    let worker = profile.function(RUN_JOB).unwrap().inclusive_ir;
    assert_eq!(caller + worker, profile.total_ir);
    assert!(
        worker > caller,
        "the worker tokenizes: {worker} vs {caller}"
    );
}

#[test]
fn gungraun_profiles_add_up_to_its_own_totals() {
    let root = testdata("gungraun");
    let profiles = read_profiles(&root, usize::MAX).unwrap();
    let names: Vec<&str> = profiles.iter().map(|p| p.benchmark.as_str()).collect();
    assert_eq!(names, ["medium/async", "medium/sync"]);
    for p in &profiles {
        let dir = match p.benchmark.as_str() {
            "medium/async" => "gungraun/async_template.medium",
            _ => "gungraun/sync_template.medium",
        };
        let summary = parse_summary(&read(&format!("{dir}/summary.json"))).unwrap();
        assert_eq!(summary.benchmark, p.benchmark);
        // gungraun's total over all threads, from its own summary.
        assert_eq!(p.profile.total_ir, summary.instructions, "{}", p.benchmark);
        assert_eq!(self_sum(&p.profile), p.profile.total_ir);
        // A directory read alone is the same profile.
        assert_eq!(read_profile(&testdata(dir)).unwrap(), p.profile);
    }
    let asynchronous = &profiles[0].profile;
    let worker = asynchronous.function(RUN_JOB).expect("the worker's job");
    assert!(worker.inclusive_ir > asynchronous.total_ir / 2);

    // Kept to the top functions, the total stays and the rest is unlisted.
    let top = read_profiles(&root, 5).unwrap();
    for (kept, whole) in top.iter().zip(&profiles) {
        assert!(kept.profile.functions.len() <= 10);
        assert_eq!(kept.profile.total_ir, whole.profile.total_ir);
        assert_eq!(
            kept.profile.unlisted_ir() + self_sum(&kept.profile),
            whole.profile.total_ir
        );
    }
}

#[test]
fn async_against_sync_diffed() {
    let sync = read_profile(&testdata("gungraun/sync_template.medium")).unwrap();
    let asynchronous = read_profile(&testdata("gungraun/async_template.medium")).unwrap();
    let all = profile_diff::diff(&sync, &asynchronous, usize::MAX);
    assert_eq!(
        all.change,
        asynchronous.total_ir as i64 - sync.total_ir as i64
    );
    assert_eq!(all.rest, 0, "every function is listed");
    let listed: i64 = all.functions.iter().map(|f| f.change).sum();
    assert_eq!(listed, all.change);
    let shares: f64 = all.functions.iter().filter_map(|f| f.share).sum();
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");
    let top = profile_diff::diff(&sync, &asynchronous, 3);
    assert_eq!(top.functions.len(), 3);
    assert_eq!(top.functions[..], all.functions[..3]);
    assert_eq!(
        top.rest,
        all.change - top.functions.iter().map(|f| f.change).sum::<i64>()
    );
    // The same profile against itself: nothing changed.
    let none = profile_diff::diff(&sync, &sync, 10);
    assert!(none.functions.is_empty() && none.change == 0);
}

fn perfwarden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfwarden"))
}

#[test]
fn the_command_diffs_two_captured_files() {
    let before = testdata("probe.medium.sync.out");
    let after = testdata("probe.medium.async.out");
    let output = perfwarden()
        .arg("profile-diff")
        .args([&before, &after])
        .args(["--top", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    let sync = parse_profile(&read("probe.medium.sync.out")).unwrap();
    let asynchronous = parse_profile(&read("probe.medium.async.out")).unwrap();
    let expected = profile_diff::diff(&sync, &asynchronous, 5);
    assert!(
        stdout.starts_with(&format!(
            "total: {} -> {} instructions",
            sync.total_ir, asynchronous.total_ir
        )),
        "{stdout}"
    );
    for f in &expected.functions {
        assert!(
            stdout.contains(&f.function),
            "{} missing:\n{stdout}",
            f.function
        );
    }
    assert!(stdout.contains("(every other function)"), "{stdout}");

    let json = perfwarden()
        .arg("profile-diff")
        .args([&before, &after])
        .args(["--top", "5", "--json"])
        .output()
        .unwrap();
    assert!(json.status.success());
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed["change"], expected.change);
    assert_eq!(parsed["functions"].as_array().unwrap().len(), 5);
    assert_eq!(
        parsed["functions"][0]["function"],
        expected.functions[0].function
    );
}

#[test]
fn the_command_says_what_an_argument_should_be() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("history.db");
    let run = |args: &[&str]| {
        let output = perfwarden()
            .arg("profile-diff")
            .args(args)
            .env("DATABASE_URL", &database)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let sync = testdata("probe.medium.sync.out").display().to_string();
    let (code, stderr) = run(&[&sync, "no-such-file"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("ID:BENCHMARK"), "{stderr}");
    let (code, stderr) = run(&[&sync, "3"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--benchmark"), "{stderr}");
    let not_a_profile = testdata("gungraun/sync_template.medium/summary.json");
    let (code, stderr) = run(&[&sync, &not_a_profile.display().to_string()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("give a callgrind.out file"), "{stderr}");
}

fn run_info(id: i64) -> RunInfo {
    RunInfo {
        id,
        commit: "0123456789abcdef".into(),
        branch: Some("feature".into()),
        base_commit: None,
        pr_number: Some(3),
        dirty: false,
        quick: false,
        machine_id: "m".into(),
        machine: Machine {
            cpu_model: "cpu".into(),
            cores: 2,
            os: "Linux".into(),
            rustc: "rustc".into(),
            valgrind: Some("valgrind-3.19.0".into()),
        },
        started_at_ms: 0,
        finished_at_ms: 0,
        notes: Vec::new(),
    }
}

fn failed_verdict() -> ContractVerdict {
    let case = |name: &str, status| CaseVerdict {
        case: name.into(),
        payload: name.into(),
        payload_bytes: 65043,
        baseline: Some(300_000.0),
        candidate: Some(330_000.0),
        estimate: Some(0.1),
        low: Some(0.08),
        high: Some(0.12),
        bound: Bound::AtMost(0.05),
        status,
        samples: 240,
        note: None,
        literal_overhead: None,
        instructions_baseline: None,
        instructions_candidate: None,
        instruction_overhead: None,
    };
    ContractVerdict {
        contract: "performance-001".into(),
        title: "Performance Overhead Bounds".into(),
        contract_hash: "h".into(),
        metric: Metric::WallClock,
        judged: "async".into(),
        other: Some("sync".into()),
        bound: Bound::AtMost(0.05),
        confidence: 0.95,
        status: Status::Fail,
        looks: None,
        cases: vec![case("small", Status::Pass), case("medium", Status::Fail)],
    }
}

#[test]
fn a_failed_case_gets_where_the_time_went_in_the_summary() {
    let verdicts = vec![failed_verdict()];
    let requests = profile_diff::requests(9, &verdicts, &[], None, &[]);
    assert_eq!(requests.len(), 1, "only the failed case: {requests:?}");
    let request = &requests[0];
    assert_eq!(request.before, StoredSide::new(9, "medium/sync"));
    assert_eq!(request.after, StoredSide::new(9, "medium/async"));
    let sync = read_profile(&testdata("gungraun/sync_template.medium")).unwrap();
    let asynchronous = read_profile(&testdata("gungraun/async_template.medium")).unwrap();
    let diff = profile_diff::diff(
        &sync.top(50),
        &asynchronous.top(50),
        profile_diff::REPORT_TOP,
    );
    let data = ReportData {
        run: run_info(9),
        noise: Default::default(),
        decomposition: Vec::new(),
        judgement: Judgement {
            verdicts,
            checklist: Vec::new(),
            comparisons: Vec::new(),
            build_comparison: None,
        },
        base_run: None,
        distributions: Vec::new(),
        where_time_went: vec![WhereTimeWent {
            request: request.clone(),
            diff: Some(diff.clone()),
        }],
        artifact_url: None,
        dashboard_url: None,
        warnings: Vec::new(),
    };
    let summary = summary_markdown(&data);
    let section = &summary[summary
        .find("### Where the time went")
        .expect("the section")..];
    assert!(
        section.contains("performance-001 FAIL, medium: async against sync"),
        "{section}"
    );
    assert!(
        section.contains("Reproduce: perfwarden profile-diff 9:medium/sync 9:medium/async"),
        "{section}"
    );
    // The function that changed most, with its share, in the first row.
    let top = &diff.functions[0];
    let row = section
        .lines()
        .find(|l| l.starts_with("| ") && !l.starts_with("| function"))
        .unwrap();
    assert!(
        row.ends_with(&format!("| {:.1}% |", top.share.unwrap() * 100.0)),
        "{row}"
    );
    let rows = section
        .lines()
        .take_while(|l| !l.starts_with("Reproduce"))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| function"))
        .count();
    assert_eq!(rows, diff.functions.len() + usize::from(diff.rest != 0));
    // And in one line for the terminal.
    let line = perfwarden::render::report::where_time_went_text(&data.where_time_went[0]);
    assert!(
        line.starts_with("where the time went (performance-001 FAIL, medium: async against sync): +6,733 instructions, most in "),
        "{line}"
    );
    assert!(
        line.contains(&format!("most in {} (", top.function)),
        "{line}"
    );
    assert!(
        line.ends_with("; `perfwarden profile-diff 9:medium/sync 9:medium/async`"),
        "{line}"
    );
    // Before the rest of the report's sections on a failure.
    assert!(summary.find("### Where the time went") < summary.find("### Head versus base"));
    let json = verdict_json(&data);
    assert_eq!(
        json["where_time_went"][0]["request"]["after"]["benchmark"],
        "medium/async"
    );
    assert_eq!(json["where_time_went"][0]["diff"]["change"], diff.change);

    // A side without a stored profile is said so, with the command still.
    let missing = ReportData {
        where_time_went: vec![WhereTimeWent {
            request: request.clone(),
            diff: None,
        }],
        ..data
    };
    let summary = summary_markdown(&missing);
    assert!(summary.contains("No stored callgrind profile"), "{summary}");
    assert!(summary.contains("Reproduce: perfwarden profile-diff"));
}

#[test]
fn a_passing_report_has_no_such_section() {
    let mut verdict = failed_verdict();
    verdict.status = Status::Pass;
    for case in &mut verdict.cases {
        case.status = Status::Pass;
    }
    assert!(profile_diff::requests(9, &[verdict], &[], Some(8), &[]).is_empty());
}

#[test]
fn regressions_and_one_sided_contracts_are_diffed_against_the_base() {
    use perfwarden::judge::compare::{Change, Comparison};
    use perfwarden::store::Tool;
    let comparison = |benchmark: &str, tool, status| Comparison {
        benchmark: benchmark.into(),
        tool,
        metric: "instructions".into(),
        base_run_id: 4,
        head: 1.1,
        base: 1.0,
        change: 0.1,
        threshold: 0.01,
        learned: false,
        status,
    };
    let comparisons = [
        comparison("large/sync", Tool::Callgrind, Change::Regression),
        comparison("large/sync", Tool::Criterion, Change::Regression),
        comparison("small/sync", Tool::Callgrind, Change::Unchanged),
        comparison("host", Tool::Paired, Change::Regression),
    ];
    let mut one_sided = failed_verdict();
    one_sided.other = Some("sync (reference)".into());
    let requests = profile_diff::requests(9, &[one_sided], &comparisons, Some(4), &[]);
    let pairs: Vec<(String, String, &str)> = requests
        .iter()
        .map(|r| (r.before.argument(), r.after.argument(), r.reason.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            (
                "4:medium/async".to_owned(),
                "9:medium/async".to_owned(),
                "performance-001 FAIL, medium: async against the base (run #4)"
            ),
            (
                "4:large/sync".to_owned(),
                "9:large/sync".to_owned(),
                "large/sync regressed against the base (run #4, instructions +10.00%)"
            ),
        ],
        "one request per pair of sides, none for what is not a benchmark"
    );
}

#[test]
fn the_command_diffs_stored_runs() {
    use perfwarden::store::{Access, NewRun, Store};
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("history.db");
    let profiles = read_profiles(&testdata("gungraun"), 50).unwrap();
    let run = |profiles| NewRun {
        commit: "abc".into(),
        branch: Some("main".into()),
        base_commit: None,
        pr_number: None,
        dirty: false,
        quick: true,
        machine: run_info(1).machine,
        started_at_ms: 0,
        finished_at_ms: 0,
        notes: Vec::new(),
        measurements: Vec::new(),
        samples: Vec::new(),
        profiles,
        environment: Vec::new(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&database.display().to_string(), Access::Create)
            .await
            .unwrap();
        assert_eq!(store.insert_run(&run(profiles.clone())).await.unwrap(), 1);
        assert_eq!(store.insert_run(&run(Vec::new())).await.unwrap(), 2);
        store.close().await.unwrap();
    });
    let profile_diff = |args: &[&str]| {
        let output = perfwarden()
            .arg("profile-diff")
            .args(args)
            .arg("--database-url")
            .arg(&database)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (code, stdout, stderr) = profile_diff(&[
        "1:medium/sync",
        "1",
        "--benchmark",
        "medium/async",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let parsed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let expected = profile_diff::diff(&profiles[1].profile, &profiles[0].profile, 20);
    assert_eq!(parsed["change"], expected.change);
    assert_eq!(parsed["rest"], expected.rest);
    let listed = parsed["functions"].as_array().unwrap();
    assert_eq!(listed.len(), expected.functions.len());
    for (shown, f) in listed.iter().zip(&expected.functions) {
        assert_eq!(shown["function"], f.function.as_str());
        assert_eq!(shown["change"], f.change);
        // serde_json reads floats to within an ulp or so.
        let share = shown["share"].as_f64().unwrap();
        assert!((share - f.share.unwrap()).abs() < 1e-12, "{shown}");
    }

    let (code, _, stderr) = profile_diff(&["1:medium/sync", "2:medium/sync"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("run 2 has no stored profile of medium/sync"),
        "{stderr}"
    );
    let (code, _, stderr) = profile_diff(&["1:small/sync", "1:medium/sync"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("it has: medium/async, medium/sync"),
        "{stderr}"
    );
    let (code, _, stderr) = profile_diff(&["1:medium/sync", "7:medium/sync"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("run 7 does not exist"), "{stderr}");
}

#[test]
fn a_change_point_at_this_run_is_diffed_against_the_run_before_the_shift() {
    use perfwarden::judge::change_points::{ChangePoint, SeriesChangePoint, SeriesKey};
    let point = |benchmark: &str, after_run_id| SeriesChangePoint {
        series: SeriesKey {
            source: "callgrind".into(),
            benchmark: benchmark.into(),
            metric: "instructions".into(),
            machine_id: None,
        },
        change: ChangePoint {
            index: 5,
            before_run_id: 6,
            before_commit: "a".repeat(40),
            after_run_id,
            after_commit: "b".repeat(40),
            mean_before: 100.0,
            mean_after: 110.0,
            relative_change: 0.1,
            p_value: 1e-4,
        },
    };
    let found = [
        point("medium/sync", 9),
        // Found at an earlier run, or in a contract's series: not this run's.
        point("large/sync", 7),
        point("performance-001/medium", 9),
    ];
    let requests = profile_diff::requests(9, &[], &[], None, &found);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].before.argument(), "6:medium/sync");
    assert_eq!(requests[0].after.argument(), "9:medium/sync");
    assert_eq!(
        requests[0].reason,
        "change point in callgrind medium/sync instructions (+10.00%, p 1.0e-4) between run #6 and this run"
    );
}

const SYNC_FUNCTION: &str = "perfwarden::chat::template::apply_mistral_chat_template";

/// A side-by-side comparison of medium/sync whose head regressed, with its
/// profiles diffed as `compare` diffs them.
fn build_comparison() -> perfwarden::judge::builds::BuildComparison {
    use perfwarden::diagnose::profile_diff::BuildDiff;
    use perfwarden::judge::builds::{self, BuildComparison};
    let base = parse_profile(&read("compare.base.medium.sync.out")).unwrap();
    let head = parse_profile(&read("compare.head.medium.sync.out")).unwrap();
    let changes = vec![
        builds::wall_clock_change("medium/sync", &[100.0; 12], &[150.0; 12], 0.05, 0.9875),
        builds::wall_clock_change("small/sync", &[100.0; 12], &[100.0; 12], 0.05, 0.9875),
        builds::instruction_change(
            "medium/sync",
            base.total_ir,
            head.total_ir,
            perfwarden::judge::compare::INSTRUCTION_THRESHOLD,
        ),
    ];
    let profile_diffs = vec![BuildDiff {
        reason: profile_diff::build_reason("medium/sync", &changes, false).unwrap(),
        benchmark: "medium/sync".into(),
        base_commit: "a".repeat(40),
        head_commit: "b".repeat(40),
        diff: profile_diff::diff(&base, &head, profile_diff::REPORT_TOP),
    }];
    BuildComparison {
        base_commit: "a".repeat(40),
        head_commit: "b".repeat(40),
        quick: false,
        threshold: 0.05,
        confidence: 0.95,
        looks: perfwarden::judge::verdict::Looks { taken: 1, max: 4 },
        host: None,
        verdict: builds::overall(&changes),
        changes,
        notes: Vec::new(),
        profile_diffs,
    }
}

#[test]
fn head_against_base_from_two_builds_names_the_function_that_gained_the_work() {
    let base = parse_profile(&read("compare.base.medium.sync.out")).unwrap();
    let head = parse_profile(&read("compare.head.medium.sync.out")).unwrap();
    let diff = profile_diff::diff(&base, &head, profile_diff::REPORT_TOP);
    assert_eq!(diff.change, head.total_ir as i64 - base.total_ir as i64);
    assert!(diff.change > 0);
    // The checksum runs in the sync function's own code: it holds nearly
    // all of the change, and the rows still add up to the total's.
    let top = &diff.functions[0];
    assert_eq!(top.function, SYNC_FUNCTION, "{diff:#?}");
    assert!(top.share.unwrap() > 0.99, "{top:?}");
    let listed: i64 = diff.functions.iter().map(|f| f.change).sum();
    assert_eq!(listed + diff.rest, diff.change);
    // The tokenizer does the same work in both builds.
    assert_eq!(
        base.function(ENCODE).unwrap().self_ir,
        head.function(ENCODE).unwrap().self_ir
    );
    assert!(diff.functions.iter().all(|f| f.function != ENCODE));
}

#[test]
fn a_regressed_benchmark_is_diffed_and_an_unchanged_one_only_when_asked() {
    let comparison = build_comparison();
    let instructions = (comparison.changes[2].change.unwrap()) * 100.0;
    assert_eq!(
        comparison.profile_diffs[0].reason,
        format!(
            "medium/sync regressed against the base: wall clock +50.00% [+50.00%, +50.00%] regression, instructions {instructions:+.2}% regression"
        )
    );
    assert_eq!(
        profile_diff::build_reason("small/sync", &comparison.changes, false),
        None
    );
    assert_eq!(
        profile_diff::build_reason("small/sync", &comparison.changes, true).as_deref(),
        Some(
            "small/sync against the base (asked for with --profile): wall clock +0.00% [+0.00%, +0.00%] unchanged"
        )
    );
    assert_eq!(
        comparison.profile_diffs[0].command(),
        "perfwarden compare aaaaaaaaaa bbbbbbbbbb --benchmark medium/sync --profile --quick"
    );
}

#[test]
fn compare_shows_where_the_time_went_after_its_table() {
    let comparison = build_comparison();
    let build = &comparison.profile_diffs[0];
    let table = perfwarden::render::compare::comparison_table(&comparison);
    let section = &table[table
        .find("\nwhere the time went (medium/sync regressed against the base:")
        .unwrap_or_else(|| panic!("{table}"))..];
    // The diff's own table: its totals, the sync function first.
    assert!(
        section.contains(&format!(
            "total: {} -> {} instructions",
            build.diff.total_before, build.diff.total_after
        )),
        "{section}"
    );
    let first_row = section
        .lines()
        .skip_while(|l| !l.contains("self before"))
        .nth(1)
        .unwrap();
    assert!(first_row.ends_with(SYNC_FUNCTION), "{first_row}");
    assert!(
        section.contains(
            "reproduce: perfwarden compare aaaaaaaaaa bbbbbbbbbb --benchmark medium/sync --profile --quick\n"
        ),
        "{section}"
    );
    assert!(table.ends_with("verdict: REGRESSION\n"), "{table}");
    // In JSON, as `compare --json` prints it.
    let json = serde_json::to_value(&comparison).unwrap();
    assert_eq!(json["profile_diffs"][0]["benchmark"], "medium/sync");
    assert_eq!(
        json["profile_diffs"][0]["diff"]["functions"][0]["function"],
        SYNC_FUNCTION
    );
    assert_eq!(
        json["profile_diffs"][0]["diff"]["change"],
        build.diff.change
    );
}

#[test]
fn the_comment_shows_where_the_time_went_in_its_head_versus_base_section() {
    let comparison = build_comparison();
    let build = comparison.profile_diffs[0].clone();
    let data = ReportData {
        run: run_info(9),
        noise: Default::default(),
        decomposition: Vec::new(),
        judgement: Judgement {
            verdicts: Vec::new(),
            checklist: Vec::new(),
            comparisons: Vec::new(),
            build_comparison: Some(comparison),
        },
        base_run: None,
        distributions: Vec::new(),
        where_time_went: Vec::new(),
        artifact_url: None,
        dashboard_url: None,
        warnings: Vec::new(),
    };
    let summary = summary_markdown(&data);
    let head_versus_base = &summary[summary
        .find("### Head versus base (base `aaaaaaaaaa`")
        .expect("the section")..];
    let section = &head_versus_base[head_versus_base
        .find("#### Where the time went, head against base")
        .unwrap_or_else(|| panic!("{head_versus_base}"))..];
    assert!(
        section.contains(&format!(
            "**{}**: `medium/sync` of the base `aaaaaaaaaa` → of the head `bbbbbbbbbb`",
            perfwarden::render::escape::text(&build.reason)
        )),
        "{section}"
    );
    // The report's table of a diff: the sync function first, with its share.
    let top = &build.diff.functions[0];
    let row = section
        .lines()
        .find(|l| l.starts_with("| ") && !l.starts_with("| function"))
        .unwrap();
    assert!(
        row.starts_with(&format!(
            "| {} |",
            perfwarden::render::escape::text(SYNC_FUNCTION)
        )),
        "{row}"
    );
    assert!(
        row.ends_with(&format!("| {:.1}% |", top.share.unwrap() * 100.0)),
        "{row}"
    );
    assert!(
        section.contains(
            "Reproduce: perfwarden compare aaaaaaaaaa bbbbbbbbbb --benchmark medium/sync --profile --quick (builds both commits"
        ),
        "{section}"
    );
    // Not the stored-history section: no stored runs are diffed.
    assert!(!summary.contains("\n### Where the time went"), "{summary}");
    let json = verdict_json(&data);
    assert_eq!(
        json["build_comparison"]["profile_diffs"][0]["diff"]["functions"][0]["function"],
        SYNC_FUNCTION
    );
    // One line for the terminal.
    let line = perfwarden::render::report::build_diff_text(&build);
    assert!(
        line.starts_with(&format!("where the time went ({}): +", build.reason)),
        "{line}"
    );
    assert!(
        line.contains(&format!("most in {SYNC_FUNCTION} (")),
        "{line}"
    );
    assert!(
        line.ends_with(
            "; `perfwarden compare aaaaaaaaaa bbbbbbbbbb --benchmark medium/sync --profile --quick`"
        ),
        "{line}"
    );
}

#[test]
fn bisect_prints_the_first_bad_commits_diff_with_its_evidence() {
    use perfwarden::compare::{BisectStep, Bisection, EvidenceRow, StepOutcome};
    let comparison = build_comparison();
    let step = BisectStep {
        commit: "b".repeat(40),
        subject: "the sync function checksums its tokens".into(),
        outcome: StepOutcome::Bad,
        reason: "regression against aaaaaaaaaa".into(),
        evidence: comparison.changes.iter().map(EvidenceRow::from).collect(),
        profile_diffs: comparison.profile_diffs.clone(),
    };
    let bisection = Bisection {
        good: "a".repeat(40),
        bad: "b".repeat(40),
        first_bad: Some(step.clone()),
        bad_step: step.clone(),
        steps: vec![step],
        undecided: None,
    };
    let text = perfwarden::render::compare::bisection_text(&bisection);
    let line = format!(
        "  {}\n",
        perfwarden::render::report::build_diff_text(&comparison.profile_diffs[0])
    );
    let at = text.find(&line).unwrap_or_else(|| panic!("{text}"));
    assert!(at < text.find("tested:").unwrap(), "{text}");
    // A step's evidence file, as `bisect-step` writes it, reads back whole.
    let written = serde_json::to_string(&bisection.bad_step).unwrap();
    let read: BisectStep = serde_json::from_str(&written).unwrap();
    assert_eq!(read.profile_diffs.len(), 1);
    let changes = |diff: &perfwarden::diagnose::profile_diff::ProfileDiff| {
        diff.functions
            .iter()
            .map(|f| (f.function.clone(), f.change))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        changes(&read.profile_diffs[0].diff),
        changes(&comparison.profile_diffs[0].diff)
    );
}
