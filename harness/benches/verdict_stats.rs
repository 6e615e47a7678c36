//! Honest statistics, measured: the false-alarm rate of an A/A comparison
//! (sync against sync must PASS at a 5% limit and never FAIL) and the
//! detection rate of the 10% slowdown fixture, each over 50 quick verdicts.
//! Run: `cargo bench --bench verdict_stats`.

use std::collections::BTreeMap;
use std::time::Duration;

use perfwarden::chat::MistralTokenizer;
use perfwarden::diagnose::AsyncWrapper;
use perfwarden::diagnose::fixtures;
use perfwarden::diagnose::selftest::verdict_for;
use perfwarden::judge::contract::Contract;
use perfwarden::judge::verdict::Status;
use perfwarden::measure::paired::SamplingPlan;

const VERDICTS: usize = 50;

fn tally(
    name: &str,
    wrapper: &dyn AsyncWrapper,
    tokenizer: &'static MistralTokenizer,
    contract: &Contract,
) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for i in 0..VERDICTS {
        // As measured, before the noise rule: the statistics' own rates.
        let (verdict, _) = verdict_for(
            wrapper,
            tokenizer,
            contract,
            SamplingPlan::for_mode(true),
            Duration::from_secs(6),
        );
        *counts.entry(verdict.status.label()).or_insert(0) += 1;
        eprintln!(
            "{name} verdict {}/{VERDICTS}: {}",
            i + 1,
            verdict.status.label()
        );
    }
    counts
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let tokenizer: &'static MistralTokenizer = Box::leak(Box::new(
        perfwarden::chat::load_tokenizer(None, &mut |note| eprintln!("{note}"))
            .expect("the tokenizer loads"),
    ));
    let contract = Contract::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/harness/contracts/performance-001.toml"
    )))
    .expect("the contract loads");
    let aa = tally("A/A", &fixtures::SyncAsCandidate, tokenizer, &contract);
    let slowdown = fixtures::fixture("slowdown-10").expect("the fixture exists");
    let detection = tally("slowdown-10", slowdown.as_ref(), tokenizer, &contract);
    let get = |m: &BTreeMap<&str, usize>, s: Status| m.get(s.label()).copied().unwrap_or(0);
    println!(
        "A/A (sync vs sync, limit 5%): {} PASS, {} INCONCLUSIVE, {} FAIL of {VERDICTS} quick verdicts; false-alarm (FAIL) rate {:.0}% (target 0 FAIL)",
        get(&aa, Status::Pass),
        get(&aa, Status::Inconclusive),
        get(&aa, Status::Fail),
        100.0 * get(&aa, Status::Fail) as f64 / VERDICTS as f64
    );
    println!(
        "slowdown-10: {} FAIL, {} INCONCLUSIVE, {} PASS of {VERDICTS} quick verdicts; detection rate {:.0}% (target >= 95%)",
        get(&detection, Status::Fail),
        get(&detection, Status::Inconclusive),
        get(&detection, Status::Pass),
        100.0 * get(&detection, Status::Fail) as f64 / VERDICTS as f64
    );
}
