//! How long `report --no-measure` takes to render from a database of 1,000
//! stored runs (target: under 2 seconds). Run: `cargo bench --bench dashboard_scale`.

use std::time::Instant;

use perfwarden::judge::contract::Contract;
use perfwarden::report::{ReportOptions, Source, report};
use perfwarden::store::{Access, Store};

#[path = "../../tests/common/synthetic.rs"]
mod synthetic;

const RUNS: usize = 1000;

fn main() {
    // `cargo test --benches` runs benches without `--bench`: nothing to time then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let store = runtime
        .block_on(Store::open(
            dir.path().join("history.db").to_str().expect("UTF-8 path"),
            Access::Create,
        ))
        .expect("the database opens");
    let filling = Instant::now();
    for i in 0..RUNS {
        runtime
            .block_on(store.insert_run(&synthetic::run(i, Some(RUNS - 50))))
            .expect("a run is stored");
    }
    eprintln!(
        "stored {RUNS} synthetic runs in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let contract = Contract::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/harness/contracts/performance-001.toml"
    )))
    .expect("the contract loads");
    let mut times = Vec::new();
    for attempt in 0..5 {
        let options = ReportOptions {
            source: Source::Stored(None),
            contracts: vec![contract.clone()],
            out_dir: dir.path().join(format!("out-{attempt}")),
            base_branch: Some("main".into()),
            artifact_url: None,
            dashboard_url: None,
            history: RUNS as u32,
            warnings: Vec::new(),
            build_comparison: None,
        };
        let start = Instant::now();
        let outcome =
            report(&options, &store, &runtime, None, &mut |_| {}).expect("the report renders");
        times.push(start.elapsed().as_secs_f64());
        assert!(
            outcome
                .files
                .iter()
                .any(|f| f.ends_with("dashboard/index.html"))
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "render from {RUNS} stored runs: median {:.3} s, min {:.3} s, max {:.3} s over {} renders (target < 2 s)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
}
