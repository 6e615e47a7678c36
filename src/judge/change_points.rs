//! Change points in main's history: where a stored series (one figure over
//! runs, oldest first) shifted, and between which commits. E-divisive means
//! with a Student's t-test, as Apache Otava (formerly Hunter) computes them:
//!
//! 1. Split: windows of [`Parameters::window`] points, half a window apart.
//!    In each, E-divisive (Matteson and James) proposes the split that
//!    maximizes the energy distance between the two sides, recursively; a
//!    proposal is kept while a t-test between its two sides gives a p-value
//!    under ten times [`Parameters::max_p_value`] (the "weak" change points).
//! 2. Merge: each weak change point is t-tested between its neighbours; the
//!    one with the largest p-value is dropped while that p-value is not under
//!    [`Parameters::max_p_value`], and the rest are tested again.
//!
//! The false-positive rate this gives on pure noise is measured, not derived
//! (the t-test runs where the split looked most different, so its p-value
//! understates the chance of a spurious shift): docs/methodology.md states it
//! and the tests below hold the detector to it.

use serde::Serialize;

use super::stats::student_t_two_sided_p;
use crate::metric::Metric;
use crate::store::{Tool, TrendPoint};

/// One run's value in a series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub run_id: i64,
    pub commit: String,
    pub value: f64,
}

/// The detector's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Parameters {
    /// Points per window of the split step.
    pub window: usize,
    /// A change point's t-test must give a p-value under this.
    pub max_p_value: f64,
    /// Change points whose relative change is at most this are dropped too.
    pub min_magnitude: f64,
}

/// The most series of up to [`STATED_RATE_RUNS`] runs of pure noise
/// (independent normal values) in which [`PARAMETERS`] find a change point:
/// measured (docs/methodology.md), held by the tests.
pub const STATED_FALSE_POSITIVE_RATE: f64 = 0.05;
/// The longest series [`STATED_FALSE_POSITIVE_RATE`] is stated for: longer
/// series are split in more windows, each a chance of a false positive.
pub const STATED_RATE_RUNS: usize = 100;

/// Otava's defaults.
pub const PARAMETERS: Parameters = Parameters {
    window: 50,
    max_p_value: 0.001,
    min_magnitude: 0.0,
};

/// A shift in a series: the runs on either side of it and the means of the
/// stretches between it and its neighbouring change points.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangePoint {
    /// The first point after the shift, in the series.
    pub index: usize,
    /// The last run before the shift.
    pub before_run_id: i64,
    pub before_commit: String,
    /// The first run after it: the shift came with a commit in
    /// `before_commit..after_commit`.
    pub after_run_id: i64,
    pub after_commit: String,
    pub mean_before: f64,
    pub mean_after: f64,
    /// mean_after / mean_before − 1.
    pub relative_change: f64,
    pub p_value: f64,
}

/// The two sides of a split, compared.
#[derive(Clone, Copy, Debug)]
struct Split {
    mean_before: f64,
    mean_after: f64,
    p_value: f64,
}

impl Split {
    fn relative_change(&self) -> f64 {
        if self.mean_before == 0.0 {
            0.0
        } else {
            self.mean_after / self.mean_before - 1.0
        }
    }

    /// The larger of the forward and backward relative changes.
    fn magnitude(&self) -> f64 {
        let backward = if self.mean_after == 0.0 {
            0.0
        } else {
            self.mean_before / self.mean_after - 1.0
        };
        self.relative_change().abs().max(backward.abs())
    }
}

fn mean_and_squares(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    (mean, values.iter().map(|v| (v - mean).powi(2)).sum())
}

/// Student's two-sample t-test with pooled variance, two-sided. Both sides
/// constant and different (instruction counts do that) is p = 0.
fn t_test(before: &[f64], after: &[f64]) -> Split {
    let (n1, n2) = (before.len(), after.len());
    let (mean_before, squares_before) = mean_and_squares(before);
    let (mean_after, squares_after) = mean_and_squares(after);
    let p_value = if n1 + n2 <= 2 {
        1.0
    } else {
        let df = (n1 + n2 - 2) as f64;
        let pooled = (squares_before + squares_after) / df;
        let spread = (pooled * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
        let difference = mean_after - mean_before;
        if difference == 0.0 {
            1.0
        } else if spread == 0.0 {
            0.0
        } else {
            student_t_two_sided_p(difference / spread, df)
        }
    };
    Split {
        mean_before,
        mean_after,
        p_value,
    }
}

/// The pairwise distances of a window's values, with each column's prefix
/// sums, so that any sum of distances to one point is two lookups.
struct Distances {
    len: usize,
    /// `prefix[k * (len + 1) + i]` = Σ_{i' < i} |z_i' − z_k|.
    prefix: Vec<f64>,
}

impl Distances {
    fn new(values: &[f64]) -> Self {
        let len = values.len();
        let mut prefix = vec![0.0; len * (len + 1)];
        for (k, zk) in values.iter().enumerate() {
            let column = &mut prefix[k * (len + 1)..(k + 1) * (len + 1)];
            for (i, zi) in values.iter().enumerate() {
                column[i + 1] = column[i] + (zi - zk).abs();
            }
        }
        Self { len, prefix }
    }

    /// Σ_{i in from..to} |z_i − z_k|.
    fn to_point(&self, k: usize, from: usize, to: usize) -> f64 {
        let column = k * (self.len + 1);
        self.prefix[column + to] - self.prefix[column + from]
    }

    /// E-divisive's proposal in `start..end`: the τ (first point of the
    /// second side) and the energy statistic Q̂ of the best split
    /// `start..τ | τ..κ` over every κ.
    fn proposal(&self, start: usize, end: usize) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        let mut within_before = 0.0;
        for tau in start + 1..end {
            if tau > start + 1 {
                within_before += self.to_point(tau - 1, start, tau - 1);
            }
            let n = (tau - start) as f64;
            let (mut between, mut within_after) = (0.0, 0.0);
            for kappa in tau + 1..=end {
                let added = kappa - 1;
                between += self.to_point(added, start, tau);
                within_after += self.to_point(added, tau, added);
                let m = (kappa - tau) as f64;
                let mut q = 2.0 / (m + n) * between;
                if n > 1.0 {
                    q -= 2.0 * m / ((m + n) * (n - 1.0)) * within_before;
                }
                if m > 1.0 {
                    q -= 2.0 * n / ((m + n) * (m - 1.0)) * within_after;
                }
                if best.is_none_or(|(_, b)| q > b) {
                    best = Some((tau, q));
                }
            }
        }
        best
    }
}

/// The stretches between consecutive change points of a series of `len`.
fn stretches(change_points: &[usize], len: usize) -> Vec<(usize, usize)> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(change_points);
    bounds.push(len);
    bounds
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|(a, b)| a < b)
        .collect()
}

/// E-divisive with the t-test inside one window: proposals kept, most
/// energetic first, while significant at `max_p_value`.
fn window_change_points(values: &[f64], max_p_value: f64) -> Vec<usize> {
    let distances = Distances::new(values);
    let mut found: Vec<usize> = Vec::new();
    loop {
        let proposal = stretches(&found, values.len())
            .into_iter()
            .filter(|(a, b)| b - a > 1)
            .filter_map(|(a, b)| {
                let (tau, q) = distances.proposal(a, b)?;
                Some((a, tau, b, q))
            })
            .fold(None, |best: Option<(usize, usize, usize, f64)>, p| {
                if best.is_none_or(|b| p.3 > b.3) {
                    Some(p)
                } else {
                    best
                }
            });
        let Some((a, tau, b, _)) = proposal else {
            break;
        };
        if t_test(&values[a..tau], &values[tau..b]).p_value > max_p_value {
            break;
        }
        let at = found.partition_point(|&c| c < tau);
        found.insert(at, tau);
    }
    found
}

/// Each change point tested between its neighbours.
fn splits(values: &[f64], change_points: &[usize]) -> Vec<Split> {
    change_points
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let from = if i == 0 { 0 } else { change_points[i - 1] };
            let to = change_points.get(i + 1).copied().unwrap_or(values.len());
            t_test(&values[from..c], &values[c..to])
        })
        .collect()
}

/// The change points of `series` (oldest first), oldest first.
pub fn detect(series: &[SeriesPoint], parameters: &Parameters) -> Vec<ChangePoint> {
    let values: Vec<f64> = series.iter().map(|p| p.value).collect();
    let window = parameters.window.max(2);
    let max_p = parameters.max_p_value;
    // Otava's first-pass threshold for the weak change points.
    let first_pass = if max_p < 0.05 {
        max_p * 10.0
    } else if max_p < 0.5 {
        max_p * 2.0
    } else {
        max_p
    };
    let mut weak = std::collections::BTreeSet::new();
    let mut start = 0;
    while start < values.len() {
        let end = (start + window).min(values.len());
        let found = window_change_points(&values[start..end], first_pass);
        let last = found.last().map_or(0, |c| c + start);
        weak.extend(found.into_iter().map(|c| c + start));
        start = last.max(start + window / 2);
    }
    let mut change_points: Vec<usize> = weak.into_iter().collect();
    let mut tested = splits(&values, &change_points);
    while !tested.is_empty() {
        let least_significant = (0..tested.len())
            .reduce(|a, b| {
                if tested[b].p_value > tested[a].p_value {
                    b
                } else {
                    a
                }
            })
            .expect("not empty");
        let drop = if tested[least_significant].p_value >= max_p {
            least_significant
        } else {
            let smallest = (0..tested.len())
                .reduce(|a, b| {
                    if tested[b].magnitude() < tested[a].magnitude() {
                        b
                    } else {
                        a
                    }
                })
                .expect("not empty");
            if tested[smallest].magnitude() > parameters.min_magnitude {
                break;
            }
            smallest
        };
        change_points.remove(drop);
        // Removing one widens its neighbours' stretches: test them again.
        tested = splits(&values, &change_points);
    }
    change_points
        .into_iter()
        .zip(tested)
        .map(|(index, split)| ChangePoint {
            index,
            before_run_id: series[index - 1].run_id,
            before_commit: series[index - 1].commit.clone(),
            after_run_id: series[index].run_id,
            after_commit: series[index].commit.clone(),
            mean_before: split.mean_before,
            mean_after: split.mean_after,
            relative_change: split.relative_change(),
            p_value: split.p_value,
        })
        .collect()
}

/// Which stored series a change point is in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SeriesKey {
    /// `criterion` (wall clock), `callgrind` (instructions) or `contract`
    /// (a contract case's judged figure).
    pub source: String,
    /// `small/async`, or `<contract>/<case>` for a contract.
    pub benchmark: String,
    /// `mean`, `instructions`, or the contract's metric.
    pub metric: String,
    /// The machine whose runs form the series, for figures that compare only
    /// on one machine (times); `None` for instruction counts.
    pub machine_id: Option<String>,
}

/// A change point of one series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesChangePoint {
    #[serde(flatten)]
    pub series: SeriesKey,
    #[serde(flatten)]
    pub change: ChangePoint,
}

/// Every series the dashboard draws, from the runs of `branch` (dirty
/// checkouts left out), oldest first: the Criterion means and the contracts'
/// judged figures per machine, the instruction counts across machines.
pub fn series_of(points: &[TrendPoint], branch: &str) -> Vec<(SeriesKey, Vec<SeriesPoint>)> {
    let mut series: std::collections::BTreeMap<SeriesKey, Vec<SeriesPoint>> = Default::default();
    for point in points
        .iter()
        .filter(|p| !p.run.dirty && p.run.branch.as_deref() == Some(branch))
    {
        let mut add =
            |source: &str, benchmark: String, metric: &str, per_machine: bool, value: f64| {
                if !value.is_finite() {
                    return;
                }
                let key = SeriesKey {
                    source: source.to_owned(),
                    benchmark,
                    metric: metric.to_owned(),
                    machine_id: per_machine.then(|| point.run.machine_id.clone()),
                };
                series.entry(key).or_default().push(SeriesPoint {
                    run_id: point.run.id,
                    commit: point.run.commit.clone(),
                    value,
                });
            };
        for (tool, benchmark, metric, value) in &point.figures {
            match (tool, metric.as_str()) {
                (Tool::Criterion, "mean") => {
                    add("criterion", benchmark.clone(), metric, true, *value)
                }
                (Tool::Callgrind, "instructions") => {
                    add("callgrind", benchmark.clone(), metric, false, *value)
                }
                _ => {}
            }
        }
        for verdict in &point.verdicts {
            for case in &verdict.cases {
                if let Some(estimate) = case.estimate {
                    add(
                        "contract",
                        format!("{}/{}", verdict.contract, case.case),
                        verdict.metric.name(),
                        verdict.metric != Metric::Instructions,
                        estimate,
                    );
                }
            }
        }
    }
    series.into_iter().collect()
}

/// The change points of every series of `branch` in `points`.
pub fn detect_all(
    points: &[TrendPoint],
    branch: &str,
    parameters: &Parameters,
) -> Vec<SeriesChangePoint> {
    series_of(points, branch)
        .into_iter()
        .flat_map(|(key, series)| {
            detect(&series, parameters)
                .into_iter()
                .map(move |change| SeriesChangePoint {
                    series: key.clone(),
                    change,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitmix::SplitMix64;

    fn series(values: &[f64]) -> Vec<SeriesPoint> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| SeriesPoint {
                run_id: i as i64 + 1,
                commit: format!("c{i}"),
                value: *v,
            })
            .collect()
    }

    /// `len` points of N(100, 1) noise, shifted by `shifts` (index, new mean).
    fn noisy(rng: &mut SplitMix64, len: usize, shifts: &[(usize, f64)]) -> Vec<f64> {
        (0..len)
            .map(|i| {
                let mean = shifts
                    .iter()
                    .rfind(|(at, _)| i >= *at)
                    .map_or(100.0, |s| s.1);
                mean + rng.normal()
            })
            .collect()
    }

    #[test]
    fn a_step_in_constant_counts_is_found_between_its_commits() {
        let mut values = vec![1000.0; 12];
        values.extend([1080.0; 8]);
        let found = detect(&series(&values), &PARAMETERS);
        assert_eq!(found.len(), 1, "{found:?}");
        let c = &found[0];
        assert_eq!(c.index, 12);
        assert_eq!(
            (c.before_commit.as_str(), c.after_commit.as_str()),
            ("c11", "c12")
        );
        assert_eq!((c.before_run_id, c.after_run_id), (12, 13));
        assert_eq!((c.mean_before, c.mean_after), (1000.0, 1080.0));
        assert!((c.relative_change - 0.08).abs() < 1e-12);
        assert_eq!(c.p_value, 0.0);
    }

    #[test]
    fn a_constant_series_has_none() {
        assert!(detect(&series(&[5.0; 30]), &PARAMETERS).is_empty());
        assert!(detect(&series(&[]), &PARAMETERS).is_empty());
        assert!(detect(&series(&[1.0]), &PARAMETERS).is_empty());
    }

    #[test]
    fn shifts_in_noise_are_found_at_their_index() {
        // Shifts of 5 and 7 standard deviations, 200 seeds: each found at its
        // index; anything else found is a false positive, as rare as on
        // pure noise.
        let mut rng = SplitMix64::new(42);
        let (trials, mut exact, mut extra) = (200, 0, 0);
        for _ in 0..trials {
            let values = noisy(&mut rng, 120, &[(30, 105.0), (75, 98.0)]);
            let found: Vec<usize> = detect(&series(&values), &PARAMETERS)
                .iter()
                .map(|c| c.index)
                .collect();
            assert!(
                [30, 75]
                    .iter()
                    .all(|i| found.iter().any(|f| f.abs_diff(*i) <= 1)),
                "{found:?}: {values:?}"
            );
            exact += usize::from([30, 75].iter().all(|i| found.contains(i)));
            extra += usize::from(found.len() > 2);
        }
        eprintln!("{exact} of {trials} exact, {extra} with more");
        assert!(exact >= trials * 95 / 100, "{exact} of {trials} exact");
        assert!(extra <= trials / 10, "{extra} of {trials} with more");
    }

    #[test]
    fn a_shift_late_in_a_long_series_is_found() {
        // Past the first windows: the split step's windows overlap.
        let mut rng = SplitMix64::new(7);
        let values = noisy(&mut rng, 200, &[(163, 96.0)]);
        let found = detect(&series(&values), &PARAMETERS);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].index, 163);
        assert!(found[0].relative_change < -0.03, "{found:?}");
        assert!(found[0].p_value < PARAMETERS.max_p_value);
    }

    /// The share of pure-noise series of `len` points in which anything is
    /// found.
    fn false_positive_rate(len: usize, parameters: &Parameters, seed: u64) -> f64 {
        let series_count = 2000;
        let mut rng = SplitMix64::new(seed);
        let flagged = (0..series_count)
            .filter(|_| !detect(&series(&noisy(&mut rng, len, &[])), parameters).is_empty())
            .count();
        flagged as f64 / series_count as f64
    }

    /// Three standard errors of a rate at the stated one over 2,000 series.
    const TOLERANCE: f64 = 0.015;

    #[test]
    fn pure_noise_is_flagged_at_most_at_the_stated_rate() {
        for (len, seed) in [(10, 1), (20, 2), (50, 3), (STATED_RATE_RUNS, 4)] {
            let rate = false_positive_rate(len, &PARAMETERS, seed);
            eprintln!("{len} points: {rate}");
            assert!(
                rate <= STATED_FALSE_POSITIVE_RATE + TOLERANCE,
                "{len} points: {rate}"
            );
        }
    }

    #[test]
    fn the_noise_test_catches_a_looser_detector() {
        // The bound above is tight enough to fail a detector whose t-test
        // threshold is ten times too lenient.
        let loose = Parameters {
            max_p_value: PARAMETERS.max_p_value * 10.0,
            ..PARAMETERS
        };
        let rate = false_positive_rate(STATED_RATE_RUNS, &loose, 4);
        eprintln!("ten times looser, {STATED_RATE_RUNS} points: {rate}");
        assert!(rate > STATED_FALSE_POSITIVE_RATE + TOLERANCE, "{rate}");
    }
}
