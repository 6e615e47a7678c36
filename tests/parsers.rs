//! The two tool-output parsers, on output captured from real runs
//! (`harness/testdata/`).

use perfwarden::measure::callgrind::parse_summary;
use perfwarden::measure::criterion::parse_benchmark;

fn testdata(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/harness/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn criterion_output_parses() {
    let result = parse_benchmark(
        &testdata("criterion/large_async.benchmark.json"),
        &testdata("criterion/large_async.estimates.json"),
        &testdata("criterion/large_async.sample.json"),
    )
    .unwrap();
    assert_eq!(result.benchmark, "large/async");
    assert_eq!(result.mean_ns, 1770307.757228836);
    assert_eq!(result.mean_ci_low_ns, 1759554.2739351853);
    assert!((result.mean_ci_high_ns - 1782096.2188890541).abs() < 1e-6);
    assert_eq!(result.confidence_level, 0.95);
    assert!(result.median_ns > 1.7e6 && result.std_dev_ns > 0.0);
    assert_eq!(result.samples.len(), 10);
    assert_eq!(result.samples[0].iterations, 6.0);
    assert_eq!(result.samples[0].total_ns, 10837831.0);
    assert!((result.samples[0].per_iteration_ns() - 1806305.1666666667).abs() < 1e-6);
}

#[test]
fn criterion_parser_rejects_broken_files() {
    let error = parse_benchmark("{}", "{}", "{}").unwrap_err();
    assert!(error.to_string().contains("Criterion"), "{error}");
    let mismatched = r#"{"sampling_mode":"Linear","iters":[1.0,2.0],"times":[5.0]}"#;
    let error = perfwarden::measure::criterion::parse_samples(mismatched).unwrap_err();
    assert!(
        error.to_string().contains("2 iteration counts for 1 times"),
        "{error}"
    );
}

#[test]
fn gungraun_summary_parses_and_counts_the_worker_thread() {
    let sync = parse_summary(&testdata("gungraun/sync_template.large.summary.json")).unwrap();
    assert_eq!(sync.benchmark, "large/sync");
    assert_eq!(sync.instructions, 38848599);
    assert_eq!(sync.threads, 1);
    assert_eq!(sync.estimated_cycles, Some(48216222));
    assert_eq!(sync.total_rw, Some(48095668));

    let asynchronous =
        parse_summary(&testdata("gungraun/async_template.large.summary.json")).unwrap();
    assert_eq!(asynchronous.benchmark, "large/async");
    assert_eq!(asynchronous.instructions, 38714650);
    // The caller's thread and the worker's, summed.
    assert_eq!(asynchronous.instructions_per_thread, vec![3815, 38710835]);
    assert_eq!(asynchronous.threads, 2);
}

#[test]
fn gungraun_parser_names_the_problem() {
    let text = testdata("gungraun/sync_template.large.summary.json")
        .replace("\"version\":\"7\"", "\"version\":\"6\"");
    let error = parse_summary(&text).unwrap_err();
    assert!(error.to_string().contains("0.20.0"), "{error}");
    let error = parse_summary("not json").unwrap_err();
    assert!(error.to_string().contains("summary.json"), "{error}");
}

/// A busy thread's `/proc/<pid>/task/<tid>/` files, captured on this
/// project's 2-core VM after the thread was moved between its CPUs.
#[test]
fn a_threads_proc_files_give_its_switches_migrations_and_cpu() {
    use perfwarden::measure::batch_noise::{
        parse_sched_migrations, parse_stat_processor, parse_status_involuntary_switches,
    };
    assert_eq!(
        parse_status_involuntary_switches(&testdata("proc/worker.status")),
        Some(158)
    );
    assert_eq!(
        parse_sched_migrations(&testdata("proc/worker.sched")),
        Some(45)
    );
    assert_eq!(parse_stat_processor(&testdata("proc/worker.stat")), Some(1));
    // Each parser reads its own file only, and says nothing of a file
    // without its field (a kernel without scheduler debugging has no sched).
    assert_eq!(
        parse_status_involuntary_switches(&testdata("proc/worker.sched")),
        None
    );
    assert_eq!(
        parse_sched_migrations(&testdata("proc/worker.status")),
        None
    );
    assert_eq!(parse_stat_processor("6683 (python3) R 1 2"), None);
    // A thread name with spaces and parentheses does not shift the fields.
    let stat = testdata("proc/worker.stat").replace("(python3)", "(a (b) c)");
    assert_eq!(parse_stat_processor(&stat), Some(1));
}
