//! The change-point detector's error rates, measured: the share of
//! pure-noise series in which it finds anything (the false-positive rate,
//! stated in docs/methodology.md), and how often it finds a known shift at
//! its run, by the shift's size in standard deviations. Deterministic seeds.
//! Run: `cargo bench --bench change_points`.

use perfwarden::judge::change_points::{
    PARAMETERS, STATED_FALSE_POSITIVE_RATE, STATED_RATE_RUNS, SeriesPoint, detect,
};
use perfwarden::splitmix::SplitMix64;

const SERIES: usize = 2000;

/// `len` runs of `noise()` around 100, shifted by `shift` from `at` on.
fn series(len: usize, at: usize, shift: f64, noise: &mut dyn FnMut() -> f64) -> Vec<SeriesPoint> {
    (0..len)
        .map(|i| SeriesPoint {
            run_id: i as i64 + 1,
            commit: format!("{i:040x}"),
            value: 100.0 + if i >= at { shift } else { 0.0 } + noise(),
        })
        .collect()
}

/// A noisy host's noise: mostly N(0, 1), one run in ten N(0, 5).
fn heavy_tailed(rng: &mut SplitMix64) -> f64 {
    let spread = if rng.below(10) == 0 { 5.0 } else { 1.0 };
    rng.normal() * spread
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!(
        "parameters: window {}, max p-value {}, min magnitude {}; stated false-positive rate {:.0}% of series of up to {STATED_RATE_RUNS} runs",
        PARAMETERS.window,
        PARAMETERS.max_p_value,
        PARAMETERS.min_magnitude,
        STATED_FALSE_POSITIVE_RATE * 100.0
    );
    for len in [10, 20, 50, 100, 200, 500] {
        let mut rng = SplitMix64::new(len as u64);
        let (mut flagged, mut found) = (0, 0);
        for _ in 0..SERIES {
            let points = series(len, len, 0.0, &mut || rng.normal());
            let n = detect(&points, &PARAMETERS).len();
            flagged += usize::from(n > 0);
            found += n;
        }
        let mut rng = SplitMix64::new(1000 + len as u64);
        let heavy = (0..SERIES)
            .filter(|_| {
                let points = series(len, len, 0.0, &mut || heavy_tailed(&mut rng));
                !detect(&points, &PARAMETERS).is_empty()
            })
            .count();
        println!(
            "pure noise, {len} runs: {:.2}% of {SERIES} normal series flagged ({:.2} false change points per 1,000 runs); heavy-tailed noise: {:.2}%",
            100.0 * flagged as f64 / SERIES as f64,
            1000.0 * found as f64 / (SERIES * len) as f64,
            100.0 * heavy as f64 / SERIES as f64
        );
    }
    for len in [20, 60] {
        for shift in [1.0, 2.0, 3.0, 5.0] {
            let mut rng = SplitMix64::new(7 + len as u64 + shift as u64);
            let at = len / 2;
            let (mut exact, mut near) = (0, 0);
            for _ in 0..SERIES {
                let points = series(len, at, shift, &mut || rng.normal());
                let found = detect(&points, &PARAMETERS);
                exact += usize::from(found.iter().any(|c| c.index == at));
                near += usize::from(found.iter().any(|c| c.index.abs_diff(at) <= 2));
            }
            println!(
                "shift of {shift} sd at run {at} of {len}: found at its run in {:.1}% of {SERIES} series, within 2 runs in {:.1}%",
                100.0 * exact as f64 / SERIES as f64,
                100.0 * near as f64 / SERIES as f64
            );
        }
    }
}
