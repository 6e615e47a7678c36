//! The run history on a real SQLite file: round trip, missing figures,
//! concurrent writer processes, and a writer killed mid-transaction.

use std::process::Command;
use std::time::Duration;

use perfwarden::store::{Machine, Measurement, NewRun, RawSample, Store, Tool};

fn machine() -> Machine {
    Machine {
        cpu_model: "Test CPU".into(),
        cores: 2,
        os: "TestOS".into(),
        rustc: "rustc 1.95.0".into(),
        valgrind: None,
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
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_run_round_trips_and_missing_stays_missing() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("nested/dir/history.db");
    runtime().block_on(async {
        let store = Store::open(url.to_str().unwrap()).await.unwrap();
        let id = store.insert_run(&new_run("abc123", 5)).await.unwrap();
        let runs = store.runs(None).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, id);
        assert_eq!(runs[0].commit, "abc123");
        assert_eq!(runs[0].pr_number, Some(7));
        assert_eq!(runs[0].machine, machine());
        assert_eq!(runs[0].machine_id, machine().id());
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
        assert!(matches!(
            store.run(id + 100).await,
            Err(perfwarden::store::StoreError::NoSuchRun(_))
        ));
    });
    // Reopening applies no migration twice.
    runtime().block_on(async {
        let store = Store::open(&format!("sqlite://{}", url.display()))
            .await
            .unwrap();
        assert_eq!(store.runs(None).await.unwrap().len(), 1);
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
        let store = Store::open(&url).await.unwrap();
        for i in 0..runs {
            store
                .insert_run(&new_run(&format!("{}-{i}", std::process::id()), samples))
                .await
                .unwrap();
        }
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

#[test]
fn concurrent_writer_processes_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("history.db").display().to_string();
    let writers: Vec<_> = (0..3).map(|_| spawn_writer(&url, 15, 2000)).collect();
    for mut writer in writers {
        assert!(writer.wait().unwrap().success());
    }
    runtime().block_on(async {
        let store = Store::open(&url).await.unwrap();
        let runs = store.runs(None).await.unwrap();
        assert_eq!(runs.len(), 45);
        for run in runs {
            assert_eq!(
                store
                    .samples(run.id, Tool::Criterion, "small/sync")
                    .await
                    .unwrap()
                    .len(),
                2000
            );
        }
    });
}

#[test]
fn a_writer_killed_mid_run_leaves_no_half_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("history.db").display().to_string();
    runtime().block_on(async {
        Store::open(&url).await.unwrap();
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
        let store = Store::open(&url).await.unwrap();
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
    });
}
