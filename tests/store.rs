//! The run history, each test against a real SQLite file and against a real
//! PostgreSQL server (started by the tests, `tests/postgres`): round trip,
//! missing figures, concurrent writer processes, a writer killed
//! mid-transaction, judgements kept per contract content, and the two
//! engines' schemas compared. Then what only SQLite has: the write-ahead log
//! checkpointed on close, read-only and missing files, and a database from
//! before migration 0003 keeping its verdicts. The killed writer is in tier 2
//! (timing: it is killed after a fixed 700 ms).

mod noise;
mod postgres;

use std::process::Command;
use std::time::Duration;

use perfwarden::diagnose::probes::{Check, ProbeResult, ProbeStatus};
use perfwarden::judge::change_points::{self, PARAMETERS};
use perfwarden::judge::compare::{Change, Comparison};
use perfwarden::judge::contract::Bound;
use perfwarden::judge::verdict::{CaseVerdict, ContractVerdict, Looks, Status};
use perfwarden::measure::batch_noise::{BatchEnvironment, BatchLog, RunNoise, Side, SpeedProbe};
use perfwarden::measure::noise::HostNoise;
use perfwarden::metric::Metric;
use perfwarden::store::{
    Access, Judgement, Machine, Measurement, NewRun, RawSample, SQLITE_MIGRATIONS,
    SeriesEnvironment, Store, StoreError, Tool, TrendCase,
};

fn machine() -> Machine {
    Machine {
        cpu_model: "Test CPU".into(),
        cores: 2,
        os: "TestOS".into(),
        rustc: "rustc 1.95.0".into(),
        valgrind: None,
    }
}

/// `pairs` pairs of the paired series `small/async` as the OS saw them, on
/// two CPUs; the first pair's worker unobserved (no worker, or no `sched`).
fn environment(pairs: usize) -> SeriesEnvironment {
    let mut log = BatchLog::default();
    for pair in 0..pairs {
        for (k, side) in [Side::Baseline, Side::Candidate].into_iter().enumerate() {
            let seen = |v: u64| (pair > 0).then_some(v + k as u64);
            log.batches.push(BatchEnvironment {
                pair,
                side,
                sampler_cpu: Some((pair % 2) as u32),
                worker_cpu: seen(0).map(|c| c as u32),
                sampler_involuntary_switches: Some(pair as u64),
                sampler_migrations: Some(0),
                worker_involuntary_switches: seen(3),
                worker_migrations: seen(1),
            });
        }
        for cpu in 0..2 {
            log.probes.push(SpeedProbe {
                pair,
                cpu,
                micros: 20.5 + pair as f64 + f64::from(cpu),
            });
        }
    }
    SeriesEnvironment {
        benchmark: "small/async".into(),
        log,
    }
}

fn new_run(commit: &str, samples: usize) -> NewRun {
    NewRun {
        commit: commit.into(),
        branch: Some("main".into()),
        base_commit: None,
        pr_number: Some(7),
        dirty: false,
        quick: true,
        machine: machine(),
        started_at_ms: 1_000,
        finished_at_ms: 2_000,
        notes: vec!["valgrind missing".into()],
        measurements: vec![
            Measurement {
                tool: Tool::Criterion,
                benchmark: "small/sync".into(),
                metric: "mean".into(),
                value: Some(1800.5),
                unit: "ns".into(),
            },
            Measurement {
                tool: Tool::Callgrind,
                benchmark: "small/sync".into(),
                metric: "instructions".into(),
                value: None,
                unit: "instructions".into(),
            },
        ],
        samples: (0..samples)
            .map(|i| RawSample {
                tool: Tool::Criterion,
                benchmark: "small/sync".into(),
                iterations: (i + 1) as f64,
                total_ns: 1000.0 * (i + 1) as f64,
            })
            .collect(),
        profiles: Vec::new(),
        environment: vec![environment(2)],
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Where a test's database lives.
#[derive(Clone, Copy, Debug)]
enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh database of `engine` (the directory keeps a SQLite file alive).
fn fresh(engine: Engine) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = match engine {
        Engine::Sqlite => dir.path().join("history.db").display().to_string(),
        Engine::Postgres => postgres::server().database(),
    };
    (url, dir)
}

/// Each store test, once per engine: `<test>::sqlite` and `<test>::postgres`.
macro_rules! on_both_engines {
    ($($(#[$attribute:meta])* $test:ident),* $(,)?) => {
        $(
            mod $test {
                #[test]
                $(#[$attribute])*
                fn sqlite() {
                    super::$test(super::Engine::Sqlite);
                }
                #[test]
                $(#[$attribute])*
                fn postgres() {
                    super::$test(super::Engine::Postgres);
                }
            }
        )*
    };
}

on_both_engines!(
    a_run_round_trips_and_missing_stays_missing,
    concurrent_writer_processes_lose_nothing,
    #[ignore = "tier 2, timing: kills the writer 700 ms after it starts, which must fall inside its transaction"]
    a_writer_killed_mid_run_leaves_no_half_run,
    judgements_are_kept_per_contract_content_and_never_replaced,
    a_read_only_opener_reads_without_migrating,
    change_points_are_stored_per_branch_and_replaced,
    profiles_round_trip_and_two_runs_diff,
);

/// The callgrind profiles captured from a real run of the instruction suite.
fn captured_profiles() -> Vec<perfwarden::store::BenchmarkProfile> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("harness/testdata/callgrind/gungraun");
    perfwarden::measure::callgrind::read_profiles(&root, 50).unwrap()
}

fn profiles_round_trip_and_two_runs_diff(engine: Engine) {
    use perfwarden::diagnose::profile_diff::{StoredSide, diff, diff_stored};
    let (url, _dir) = fresh(engine);
    let profiles = captured_profiles();
    let mut base = new_run("base", 1);
    base.profiles = profiles.clone();
    // The head: the async side's largest function got 1,000 instructions dearer.
    let mut head = new_run("head", 1);
    head.profiles = profiles.clone();
    let changed = &mut head.profiles[0].profile;
    changed.functions[0].self_ir += 1000;
    changed.functions[0].inclusive_ir += 1000;
    changed.total_ir += 1000;
    let changed_function = changed.functions[0].name.clone();
    runtime().block_on(async {
        let store = Store::open(&url, Access::Create).await.unwrap();
        let base_id = store.insert_run(&base).await.unwrap();
        let head_id = store.insert_run(&head).await.unwrap();
        let bare_id = store.insert_run(&new_run("bare", 1)).await.unwrap();
        for p in &profiles {
            let stored = store.profile(base_id, &p.benchmark).await.unwrap();
            assert_eq!(stored.as_ref(), Some(&p.profile), "{}", p.benchmark);
        }
        assert_eq!(
            store.profiled_benchmarks(head_id).await.unwrap(),
            ["medium/async", "medium/sync"]
        );
        assert_eq!(store.profile(bare_id, "medium/async").await.unwrap(), None);
        assert!(store.profiled_benchmarks(bare_id).await.unwrap().is_empty());

        let benchmark = &profiles[0].benchmark;
        let stored = diff_stored(
            &store,
            &StoredSide::new(base_id, benchmark),
            &StoredSide::new(head_id, benchmark),
            5,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(stored.change, 1000);
        assert_eq!(stored.functions.len(), 1);
        assert_eq!(stored.functions[0].function, changed_function);
        assert_eq!(stored.functions[0].share, Some(1.0));
        // Async against sync within one stored run: as from the profiles.
        let within = diff_stored(
            &store,
            &StoredSide::new(base_id, "medium/sync"),
            &StoredSide::new(base_id, "medium/async"),
            10,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(within, diff(&profiles[1].profile, &profiles[0].profile, 10));
        let none = diff_stored(
            &store,
            &StoredSide::new(bare_id, benchmark),
            &StoredSide::new(head_id, benchmark),
            5,
        )
        .await
        .unwrap();
        assert_eq!(none, None, "a run without profiles has nothing to diff");
        store.close().await.unwrap();
    });
}

fn a_run_round_trips_and_missing_stays_missing(engine: Engine) {
    let (url, _dir) = fresh(engine);
    runtime().block_on(async {
        let store = Store::open(&url, Access::Create).await.unwrap();
        let id = store.insert_run(&new_run("abc123", 5)).await.unwrap();
        let runs = store.runs(None).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, id);
        assert_eq!(runs[0].commit, "abc123");
        assert_eq!(runs[0].pr_number, Some(7));
        assert_eq!(runs[0].machine, machine());
        assert_eq!(runs[0].machine_id, machine().id());
        assert!(runs[0].quick && !runs[0].dirty);
        assert_eq!(runs[0].notes, vec!["valgrind missing".to_string()]);
        let measurements = store.measurements(id).await.unwrap();
        assert_eq!(measurements.len(), 2);
        let instructions = measurements
            .iter()
            .find(|m| m.metric == "instructions")
            .unwrap();
        assert_eq!(
            instructions.value, None,
            "a missing figure must not become 0"
        );
        let samples = store
            .samples(id, Tool::Criterion, "small/sync")
            .await
            .unwrap();
        assert_eq!(samples.len(), 5);
        assert_eq!(samples[4].total_ns, 5000.0);
        assert_eq!(
            store.environment(id).await.unwrap(),
            vec![environment(2)],
            "every batch and probe, unobserved counters still missing"
        );
        assert!(matches!(
            store.run(id + 100).await,
            Err(StoreError::NoSuchRun(_))
        ));
        store.close().await.unwrap();
    });
    // Reopening applies no migration twice.
    let again = match engine {
        Engine::Sqlite => format!("sqlite://{url}"),
        Engine::Postgres => url.clone(),
    };
    runtime().block_on(async {
        let store = Store::open(&again, Access::Existing).await.unwrap();
        assert_eq!(store.runs(None).await.unwrap().len(), 1);
        store.close().await.unwrap();
    });
}

const CHILD_DB: &str = "PERFWARDEN_TEST_CHILD_DB";
const CHILD_RUNS: &str = "PERFWARDEN_TEST_CHILD_RUNS";
const CHILD_SAMPLES: &str = "PERFWARDEN_TEST_CHILD_SAMPLES";

/// Not a test on its own: the body of the writer processes spawned below.
#[test]
fn child_writer() {
    let Ok(url) = std::env::var(CHILD_DB) else {
        return;
    };
    let runs: usize = std::env::var(CHILD_RUNS).unwrap().parse().unwrap();
    let samples: usize = std::env::var(CHILD_SAMPLES).unwrap().parse().unwrap();
    runtime().block_on(async {
        let store = Store::open(&url, Access::Create).await.unwrap();
        for i in 0..runs {
            store
                .insert_run(&new_run(&format!("{}-{i}", std::process::id()), samples))
                .await
                .unwrap();
        }
        store.close().await.unwrap();
    });
}

fn spawn_writer(url: &str, runs: usize, samples: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, url)
        .env(CHILD_RUNS, runs.to_string())
        .env(CHILD_SAMPLES, samples.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn concurrent_writer_processes_lose_nothing(engine: Engine) {
    let (url, _dir) = fresh(engine);
    let writers: Vec<_> = (0..3).map(|_| spawn_writer(&url, 15, 2000)).collect();
    for mut writer in writers {
        assert!(writer.wait().unwrap().success());
    }
    runtime().block_on(async {
        let store = Store::open(&url, Access::Existing).await.unwrap();
        let runs = store.runs(None).await.unwrap();
        assert_eq!(runs.len(), 45);
        for run in runs {
            let samples = store
                .samples(run.id, Tool::Criterion, "small/sync")
                .await
                .unwrap();
            assert_eq!(samples.len(), 2000);
            assert_eq!(samples[1999].total_ns, 2_000_000.0, "in order");
        }
        store.close().await.unwrap();
    });
}

/// Tier 2: whether 700 ms falls inside the writer's transaction depends on
/// the host's speed and load; a failure is judged against the host's
/// measured noise (`tests/noise`, docs/testing.md).
fn a_writer_killed_mid_run_leaves_no_half_run(engine: Engine) {
    noise::judged(
        &format!("store::a_writer_killed_mid_run_leaves_no_half_run::{engine:?}"),
        || killed_writer_leaves_no_half_run(engine),
    );
}

fn killed_writer_leaves_no_half_run(engine: Engine) {
    let (url, _dir) = fresh(engine);
    runtime().block_on(async {
        Store::open(&url, Access::Create)
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
    });
    // One run with many samples takes long enough to be killed inside its transaction.
    let mut writer = spawn_writer(&url, 1, 2_000_000);
    std::thread::sleep(Duration::from_millis(700));
    writer.kill().unwrap();
    let status = writer.wait().unwrap();
    assert!(
        !status.success(),
        "the writer finished before it was killed; give it more work"
    );
    runtime().block_on(async {
        let store = Store::open(&url, Access::Existing).await.unwrap();
        assert!(
            store.runs(None).await.unwrap().is_empty(),
            "a half-written run is visible"
        );
        // Nothing orphaned either.
        assert!(
            store
                .samples(1, Tool::Criterion, "small/sync")
                .await
                .unwrap()
                .is_empty()
        );
        // And the database still takes new runs.
        store.insert_run(&new_run("after", 3)).await.unwrap();
        assert_eq!(store.runs(None).await.unwrap().len(), 1);
        store.close().await.unwrap();
    });
}

fn verdict(hash: &str, status: Status, limit: f64) -> ContractVerdict {
    ContractVerdict {
        contract: "performance-001".into(),
        title: "Performance Overhead Bounds".into(),
        contract_hash: hash.into(),
        metric: Metric::WallClock,
        judged: "async".into(),
        other: Some("sync".into()),
        bound: Bound::AtMost(limit),
        confidence: 0.95,
        status,
        cases: ["small", "medium", "large"]
            .into_iter()
            .enumerate()
            .map(|(i, name)| CaseVerdict {
                case: name.into(),
                payload: name.into(),
                payload_bytes: [343, 65_043, 380_043][i],
                baseline: Some(1000.0),
                candidate: Some(1010.0),
                estimate: Some(0.01),
                low: Some(0.005),
                high: Some(0.015),
                bound: Bound::AtMost(limit),
                status,
                samples: 60,
                note: (i == 1).then(|| "a note".to_owned()),
                literal_overhead: None,
                instructions_baseline: Some(35_000.0),
                instructions_candidate: Some(36_000.0),
                instruction_overhead: Some(0.03),
            })
            .collect(),
        looks: Some(Looks { taken: 2, max: 4 }),
    }
}

/// A throughput verdict: another metric, a lower bound, per-case bounds.
fn throughput_verdict() -> ContractVerdict {
    let mut verdict = verdict("hash-c", Status::Fail, 0.9);
    verdict.contract = "performance-004".into();
    verdict.metric = Metric::Throughput;
    verdict.bound = Bound::AtLeast(0.9);
    for case in &mut verdict.cases {
        case.bound = Bound::AtLeast(0.8);
        case.estimate = Some(0.5);
    }
    verdict
}

fn judgements_are_kept_per_contract_content_and_never_replaced(engine: Engine) {
    let (url, _dir) = fresh(engine);
    runtime().block_on(async {
        let store = Store::open(&url, Access::Create).await.unwrap();
        let base = store.insert_run(&new_run("base", 0)).await.unwrap();
        // The head run's noise as first measured: its two pairs.
        let host = HostNoise {
            seconds: 20.0,
            foreign: 0.05,
            steal: 0.01,
            load_per_cpu: 1.5,
            involuntary_switches_per_second: 30.0,
        };
        let first_look = RunNoise::over_looks(Some(host), [&environment(2).log]);
        let mut head = new_run("head", 0);
        head.measurements.extend(first_look.measurements());
        let id = store.insert_run(&head).await.unwrap();
        let check = |evidence: &str| ProbeResult {
            check: Check::WarmUp,
            status: ProbeStatus::Pass,
            evidence: evidence.into(),
            figures: [("p50_us".to_owned(), 40.0)].into(),
        };
        let comparison = Comparison {
            base_run_id: base,
            tool: Tool::Callgrind,
            benchmark: "small/async".into(),
            metric: "instructions".into(),
            head: 36_000.0,
            base: 35_000.0,
            change: 0.0286,
            threshold: 0.01,
            learned: false,
            status: Change::Regression,
        };
        let paired = |ns: f64| RawSample {
            tool: Tool::Paired,
            benchmark: "small/async".into(),
            iterations: 1.0,
            total_ns: ns,
        };
        let built = perfwarden::judge::builds::BuildComparison {
            base_commit: "b".repeat(40),
            head_commit: "h".repeat(40),
            quick: false,
            threshold: 0.05,
            confidence: 0.95,
            looks: Looks { taken: 2, max: 4 },
            host: Some("over 30.0 s: quiet".into()),
            changes: vec![
                perfwarden::judge::builds::wall_clock_change(
                    "large/sync",
                    &[100.0; 12],
                    &[130.0; 12],
                    0.05,
                    0.9875,
                ),
                perfwarden::judge::builds::instruction_change("large/sync", 1000, 1900, 0.01),
            ],
            notes: vec!["a note".into()],
            verdict: perfwarden::judge::builds::BuildVerdict::Regression,
            profile_diffs: vec![perfwarden::diagnose::profile_diff::BuildDiff {
                benchmark: "large/sync".into(),
                reason: "large/sync regressed against the base".into(),
                base_commit: "b".repeat(40),
                head_commit: "h".repeat(40),
                diff: perfwarden::diagnose::profile_diff::diff(
                    &captured_profiles()[1].profile,
                    &captured_profiles()[0].profile,
                    10,
                ),
            }],
        };
        let first = Judgement {
            verdicts: vec![verdict("hash-a", Status::Pass, 0.05), throughput_verdict()],
            checklist: vec![check("measured live")],
            comparisons: vec![comparison.clone()],
            build_comparison: Some(built.clone()),
        };
        store
            .save_judgement(id, &first, &[paired(1.0), paired(2.0)], &[], None)
            .await
            .unwrap();
        // Another contract (another hash), judged later: added beside it; the
        // run's checklist and comparisons are not replaced.
        // (Judged a moment later: verdicts are listed latest first.)
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let stricter = verdict("hash-b", Status::Fail, 0.001);
        let second = Judgement {
            verdicts: vec![stricter],
            checklist: vec![check("SKIPPED: not measured")],
            comparisons: vec![Comparison {
                status: Change::Unchanged,
                ..comparison.clone()
            }],
            build_comparison: Some(perfwarden::judge::builds::BuildComparison {
                verdict: perfwarden::judge::builds::BuildVerdict::Unchanged,
                ..built.clone()
            }),
        };
        // Re-measured: one more pair, watched for 10 s with steal 7%.
        let every_look = RunNoise::over_looks(
            Some(host.then(&HostNoise {
                seconds: 10.0,
                steal: 0.07,
                ..host
            })),
            [&environment(2).log, &environment(1).log],
        );
        store
            .save_judgement(
                id,
                &second,
                &[paired(3.0)],
                &[environment(1)],
                Some(&every_look),
            )
            .await
            .unwrap();
        // The first contract again, with another outcome: the stored verdict stays.
        let again = Judgement {
            verdicts: vec![verdict("hash-a", Status::Inconclusive, 0.05)],
            ..Judgement::default()
        };
        store
            .save_judgement(id, &again, &[], &[], None)
            .await
            .unwrap();

        let stored = store.judgement(id).await.unwrap();
        let statuses: Vec<(&str, Status)> = stored
            .verdicts
            .iter()
            .map(|v| (v.contract_hash.as_str(), v.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("hash-b", Status::Fail),
                ("hash-a", Status::Pass),
                ("hash-c", Status::Fail)
            ],
            "latest first"
        );
        assert_eq!(
            stored.verdicts[1], first.verdicts[0],
            "every field, cases in order"
        );
        assert_eq!(
            stored.verdicts[2], first.verdicts[1],
            "another metric, its bounds and notes"
        );
        assert_eq!(stored.checklist, first.checklist);
        assert_eq!(stored.comparisons, first.comparisons);
        // serde_json reads a float back to within an ulp or so: the profile
        // diffs' shares are compared to that, everything else exactly.
        let (stored_built, first_built) = (
            stored.build_comparison.clone().unwrap(),
            first.build_comparison.clone().unwrap(),
        );
        let without_diffs = |c: &perfwarden::judge::builds::BuildComparison| {
            perfwarden::judge::builds::BuildComparison {
                profile_diffs: Vec::new(),
                ..c.clone()
            }
        };
        assert_eq!(
            without_diffs(&stored_built),
            without_diffs(&first_built),
            "the run's first build comparison, every field"
        );
        assert_eq!(stored_built.profile_diffs.len(), 1);
        let (kept, saved) = (
            &stored_built.profile_diffs[0],
            &first_built.profile_diffs[0],
        );
        assert_eq!(
            (
                &kept.benchmark,
                &kept.reason,
                &kept.base_commit,
                &kept.head_commit
            ),
            (
                &saved.benchmark,
                &saved.reason,
                &saved.base_commit,
                &saved.head_commit
            )
        );
        assert_eq!(
            (
                kept.diff.total_before,
                kept.diff.total_after,
                kept.diff.change,
                kept.diff.rest
            ),
            (
                saved.diff.total_before,
                saved.diff.total_after,
                saved.diff.change,
                saved.diff.rest
            )
        );
        assert_eq!(kept.diff.functions.len(), saved.diff.functions.len());
        assert!(!saved.diff.functions.is_empty());
        for (k, s) in kept.diff.functions.iter().zip(&saved.diff.functions) {
            assert_eq!(
                (&k.function, k.before, k.after, k.change),
                (&s.function, s.before, s.after, s.change)
            );
            assert!((k.share.unwrap() - s.share.unwrap()).abs() < 1e-12, "{k:?}");
        }
        // The extra samples are appended in order, numbered on.
        let samples = store
            .samples(id, Tool::Paired, "small/async")
            .await
            .unwrap();
        let totals: Vec<f64> = samples.iter().map(|s| s.total_ns).collect();
        assert_eq!(totals, [1.0, 2.0, 3.0]);
        // So are the re-measured batches: their pairs follow the run's two.
        let stored = store.environment(id).await.unwrap();
        let mut expected = environment(2);
        expected.log.extend(environment(1).log, 2);
        assert_eq!(stored, vec![expected]);
        assert_eq!(stored[0].log.batches[4].pair, 2);
        // The run's noise figures now cover every look; its other figures
        // stay as measured.
        let measurements = store.measurements(id).await.unwrap();
        assert_ne!(first_look, every_look);
        assert_eq!(RunNoise::from_measurements(&measurements), every_look);
        assert_eq!(
            measurements.len(),
            new_run("head", 0).measurements.len() + every_look.measurements().len()
        );
        assert!(measurements.contains(&new_run("head", 0).measurements[0]));
        let noise_score = |figures: &[(Tool, String, String, f64)]| {
            figures
                .iter()
                .find(|(_, benchmark, metric, _)| benchmark == "host" && metric == "noise_score")
                .map(|f| f.3)
        };
        // Other runs are untouched.
        assert_eq!(store.judgement(base).await.unwrap(), Judgement::default());
        let trend = store.trend(10).await.unwrap();
        let verdicts: Vec<(&str, Status)> = trend[1]
            .verdicts
            .iter()
            .map(|v| (v.contract.as_str(), v.status))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("performance-001", Status::Fail),
                ("performance-004", Status::Fail)
            ],
            "the latest verdict per contract"
        );
        assert_eq!(trend[1].verdicts[1].bound, Bound::AtLeast(0.9));
        assert_eq!(
            trend[1].verdicts[1].cases[0],
            TrendCase {
                case: "small".into(),
                estimate: Some(0.5),
                low: Some(0.005),
                high: Some(0.015)
            }
        );
        assert_eq!(trend[1].regressions, ["callgrind:small/async"]);
        assert_eq!(noise_score(&trend[1].figures), every_look.score());
        assert_eq!(noise_score(&trend[0].figures), None);
        store.close().await.unwrap();
    });
}

fn a_read_only_opener_reads_without_migrating(engine: Engine) {
    let (url, _dir) = fresh(engine);
    runtime().block_on(async {
        let store = Store::open(&url, Access::Create).await.unwrap();
        store.insert_run(&new_run("abc", 1)).await.unwrap();
        store.close().await.unwrap();
        let reader = Store::open(&url, Access::ReadOnly).await.unwrap();
        assert_eq!(reader.runs(None).await.unwrap().len(), 1);
        let refused = reader.insert_run(&new_run("def", 1)).await;
        assert!(refused.is_err(), "a read-only opener wrote");
        reader.close().await.unwrap();
    });
}

/// Twenty runs of main whose instruction count steps up at the eleventh:
/// found from the stored history, stored for main, read back, replaced; the
/// rows of another branch stay.
fn change_points_are_stored_per_branch_and_replaced(engine: Engine) {
    let (url, _dir) = fresh(engine);
    runtime().block_on(async {
        let store = Store::open(&url, Access::Create).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..20 {
            let mut run = new_run(&format!("{i:040x}"), 0);
            run.measurements[1].value = Some(if i < 10 { 6_590_000.0 } else { 6_700_000.0 });
            ids.push(store.insert_run(&run).await.unwrap());
        }
        let points = store.trend(100).await.unwrap();
        let found = change_points::detect_all(&points, "main", &PARAMETERS);
        assert_eq!(found.len(), 1, "{found:?}");
        let c = &found[0];
        assert_eq!(
            (
                c.series.source.as_str(),
                c.series.benchmark.as_str(),
                c.series.machine_id.as_deref()
            ),
            ("callgrind", "small/sync", None)
        );
        assert_eq!(
            (c.change.before_run_id, c.change.after_run_id),
            (ids[9], ids[10])
        );
        assert_eq!(c.change.after_commit, format!("{:040x}", 10));
        store.replace_change_points("main", &found).await.unwrap();
        store
            .replace_change_points("release", &found)
            .await
            .unwrap();
        assert_eq!(store.change_points("main").await.unwrap(), found);
        // Replaced, not appended; another branch's rows stay.
        store.replace_change_points("main", &found).await.unwrap();
        assert_eq!(store.change_points("main").await.unwrap(), found);
        store.replace_change_points("main", &[]).await.unwrap();
        assert!(store.change_points("main").await.unwrap().is_empty());
        assert_eq!(store.change_points("release").await.unwrap(), found);
        store.close().await.unwrap();
        // A read-only opener reads them (`history --json`).
        let reader = Store::open(&url, Access::ReadOnly).await.unwrap();
        assert_eq!(reader.change_points("release").await.unwrap(), found);
        reader.close().await.unwrap();
    });
}

#[test]
fn both_engines_have_the_same_tables_and_columns() {
    let (sqlite, _dir) = fresh(Engine::Sqlite);
    let (postgres, _pg) = fresh(Engine::Postgres);
    runtime().block_on(async {
        let sqlite = Store::open(&sqlite, Access::Create).await.unwrap();
        let postgres = Store::open(&postgres, Access::Create).await.unwrap();
        let (a, b) = (
            sqlite.schema().await.unwrap(),
            postgres.schema().await.unwrap(),
        );
        assert_eq!(a, b);
        let tables: Vec<&str> = a.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            tables,
            [
                "batch_environment",
                "build_comparisons",
                "change_points",
                "checklist",
                "comparisons",
                "contract_case_verdicts",
                "contract_verdicts",
                "cpu_speed_probes",
                "measurements",
                "profile_functions",
                "profiles",
                "runs",
                "samples"
            ]
        );
        sqlite.close().await.unwrap();
        postgres.close().await.unwrap();
    });
}

#[test]
fn the_log_is_checkpointed_on_close_so_the_file_alone_holds_every_run() {
    let (url, dir) = fresh(Engine::Sqlite);
    runtime().block_on(async {
        let store = Store::open(&url, Access::Create).await.unwrap();
        for i in 0..3 {
            store
                .insert_run(&new_run(&format!("c{i}"), 100))
                .await
                .unwrap();
        }
        store.close().await.unwrap();
    });
    let wal = dir.path().join("history.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the log still holds data after close"
    );
    let copy = tempfile::tempdir().unwrap();
    let copied = copy.path().join("history.db");
    std::fs::copy(&url, &copied).unwrap();
    runtime().block_on(async {
        let store = Store::open(copied.to_str().unwrap(), Access::ReadOnly)
            .await
            .unwrap();
        assert_eq!(store.runs(None).await.unwrap().len(), 3);
        store.close().await.unwrap();
    });
}

#[test]
fn a_mistyped_path_is_an_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("histroy.db");
    for access in [Access::ReadOnly, Access::Existing] {
        let error = runtime()
            .block_on(Store::open(missing.to_str().unwrap(), access))
            .err()
            .expect("opening a missing database must fail");
        assert!(matches!(error, StoreError::Missing { .. }), "{error:?}");
        assert!(error.to_string().contains("--database-url"), "{error}");
        assert!(!missing.exists(), "{access:?} created the file");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_database_from_before_0003_keeps_its_verdicts() {
    let (url, _dir) = fresh(Engine::Sqlite);
    runtime().block_on(async {
        // The schema as perfwarden wrote it before 0003, with a judged run.
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&url)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        let old = sqlx::migrate::Migrator::with_migrations(
            SQLITE_MIGRATIONS[..2]
                .iter()
                .map(|(version, description, sql)| {
                    sqlx::migrate::Migration::new(
                        *version,
                        (*description).to_owned().into(),
                        sqlx::migrate::MigrationType::Simple,
                        sqlx::SqlStr::from_static(sql),
                        false,
                    )
                })
                .collect(),
        );
        old.run(&pool).await.unwrap();
        for statement in [
            "INSERT INTO runs (id, commit_sha, dirty, quick, machine_id, cpu_model, cores, os, rustc, started_at_ms, finished_at_ms) VALUES (1, 'abc', 0, 1, 'm', 'cpu', 2, 'os', 'rustc', 1, 2)",
            "INSERT INTO verdicts VALUES (1, 'performance-001', 'PASS', 0.05, 0.95, 3)",
            "INSERT INTO case_verdicts (run_id, contract, case_name, payload, payload_bytes, status, pairs) VALUES (1, 'performance-001', 'small', 'small', 300, 'PASS', 60)",
            "INSERT INTO case_verdicts (run_id, contract, case_name, payload, payload_bytes, status, pairs) VALUES (1, 'performance-001', 'large', 'large', 380000, 'PASS', 60)",
            "INSERT INTO checklist VALUES (1, 'warm-up', 'PASS', 'fast', '{}')",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let store = Store::open(&url, Access::Create).await.unwrap();
        let judgement = store.judgement(1).await.unwrap();
        assert_eq!(judgement.verdicts.len(), 1);
        let verdict = &judgement.verdicts[0];
        assert_eq!(verdict.contract_hash, "unknown:performance-001");
        assert_eq!(verdict.status, Status::Pass);
        // Before 0004 every verdict compared async with sync on wall clock.
        assert_eq!(verdict.metric, Metric::WallClock);
        assert_eq!(verdict.bound, Bound::AtMost(0.05));
        assert_eq!((verdict.judged.as_str(), verdict.other.as_deref()), ("async", Some("sync")));
        assert_eq!(verdict.looks, None, "not recorded before 0005");
        let cases: Vec<&str> = verdict.cases.iter().map(|c| c.case.as_str()).collect();
        assert_eq!(cases, ["small", "large"], "in their stored order");
        assert_eq!(verdict.cases[0].bound, Bound::AtMost(0.05));
        assert_eq!(judgement.checklist.len(), 1);
        // And it renders.
        let data = perfwarden::render::report::ReportData {
            run: store.run(1).await.unwrap(),
            noise: Default::default(),
            decomposition: Vec::new(),
            judgement: judgement.clone(),
            base_run: None,
            distributions: Vec::new(),
            where_time_went: Vec::new(),
            artifact_url: None,
            dashboard_url: None,
            warnings: Vec::new(),
        };
        let summary = perfwarden::render::report::summary_markdown(&data);
        assert!(summary.contains("performance-001 PASS"), "{summary}");
        assert!(summary.contains("| small (300 B)"), "{summary}");
        store.close().await.unwrap();
    });
}
