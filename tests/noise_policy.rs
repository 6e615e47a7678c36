//! The noisy-host policy of tier 2 (`tests/noise`, docs/testing.md): which
//! measurements excuse a timing test's failure, and that the test's own work,
//! its children's included, is never counted as noise. Tier 1: nothing here
//! depends on the host's load.

mod noise;

use noise::{FOREIGN_CPU_MAX, HostNoise, STEAL_MAX, judge_failure, own_ticks_between, with_shares};

#[test]
fn only_measured_noise_above_a_threshold_excuses_a_failure() {
    assert_eq!(with_shares(0.0, 0.0).too_noisy(), None);
    assert_eq!(with_shares(0.24, 0.049).too_noisy(), None);
    let foreign = with_shares(FOREIGN_CPU_MAX, 0.0).too_noisy().unwrap();
    assert!(
        foreign.contains("other processes used 25% of the measured CPUs"),
        "{foreign}"
    );
    let steal = with_shares(0.0, STEAL_MAX).too_noisy().unwrap();
    assert!(steal.contains("the hypervisor stole 5.0%"), "{steal}");
    let both = with_shares(0.6, 0.1).too_noisy().unwrap();
    assert!(both.contains(" and "), "{both}");
}

#[test]
fn a_failure_on_a_quiet_host_stands_and_on_a_noisy_one_is_inconclusive() {
    let failure = || -> Box<dyn std::any::Any + Send> { Box::new(String::from("stalled 6 ms")) };
    let quiet = with_shares(0.10, 0.0);
    let (line, stands) = judge_failure("policy::quiet", Some(&quiet), failure()).unwrap_err();
    assert!(
        line.starts_with("tier 2 FAILED on a quiet host: policy::quiet"),
        "{line}"
    );
    assert_eq!(stands.downcast_ref::<String>().unwrap(), "stalled 6 ms");
    let noisy = with_shares(0.70, 0.0);
    let line = judge_failure("policy::noisy", Some(&noisy), failure()).unwrap();
    assert!(
        line.starts_with(
            "tier 2 inconclusive: policy::noisy: other processes used 70% of the measured CPUs"
        ),
        "{line}"
    );
    assert!(line.contains("stalled 6 ms"), "{line}");
}

/// Spins until this process's CPU time has grown by `ticks` clock ticks:
/// waits for the counter, not for a time.
fn burn(ticks: u64) {
    let start = std::fs::read_to_string("/proc/self/stat").unwrap();
    let used = |stat: &str| -> u64 {
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let from = used(&start);
    while used(&std::fs::read_to_string("/proc/self/stat").unwrap()) < from + ticks {
        std::hint::spin_loop();
    }
}

#[test]
fn the_tests_own_work_and_its_childrens_are_its_own() {
    // This process's time.
    assert!(own_ticks_between(|| burn(5)) >= 5);
    // A child's, reaped: it lives on in this process's children's time.
    let child = own_ticks_between(|| {
        let status = std::process::Command::new("python3")
            .args([
                "-c",
                "import os, time\nstart = sum(os.times()[:2])\nwhile sum(os.times()[:2]) - start < 0.1: pass",
            ])
            .status()
            .unwrap();
        assert!(status.success());
    });
    assert!(
        child >= 5,
        "a child's 100 ms of CPU counted as {child} ticks"
    );
    // And a measurement over a window has something to say.
    let ((), noise) = HostNoise::over(|| burn(2));
    let noise = noise.expect("/proc/stat is readable");
    assert!(noise.to_string().starts_with("over "), "{noise}");
}
