//! Head against base as two builds measured side by side: per benchmark,
//! the change in time per call from paired batches (the median of per-pair
//! ratios with the sign test's interval, as the contracts' verdicts) and the
//! change in instructions, each with a verdict against a threshold.

use serde::{Deserialize, Serialize};

use super::stats;
use crate::measure::noise::HostNoise;

/// The default threshold on a change in time per call.
pub const WALL_CLOCK_THRESHOLD: f64 = 0.05;

/// What a change is, judged on its interval against a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildVerdict {
    Unchanged,
    Improvement,
    Inconclusive,
    Regression,
}

impl BuildVerdict {
    pub fn label(self) -> &'static str {
        match self {
            BuildVerdict::Regression => "regression",
            BuildVerdict::Improvement => "improvement",
            BuildVerdict::Unchanged => "unchanged",
            BuildVerdict::Inconclusive => "inconclusive",
        }
    }
}

/// The verdict on a change whose interval is `[low, high]`: a regression
/// when the whole interval lies above `threshold`, an improvement when it
/// lies wholly below `-threshold`, unchanged when it lies within
/// `[-threshold, threshold]`, inconclusive otherwise (it straddles a bound).
pub fn classify(low: f64, high: f64, threshold: f64) -> BuildVerdict {
    if low > threshold {
        BuildVerdict::Regression
    } else if high < -threshold {
        BuildVerdict::Improvement
    } else if low >= -threshold && high <= threshold {
        BuildVerdict::Unchanged
    } else {
        BuildVerdict::Inconclusive
    }
}

/// What was compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildMetric {
    /// Time per call, ns, from paired batches.
    WallClock,
    /// Instructions of one call under callgrind (deterministic: the interval
    /// is the point).
    Instructions,
}

impl BuildMetric {
    pub fn name(self) -> &'static str {
        match self {
            BuildMetric::WallClock => "wall_clock",
            BuildMetric::Instructions => "instructions",
        }
    }

    /// As a reader calls it.
    pub fn label(self) -> &'static str {
        match self {
            BuildMetric::WallClock => "wall clock",
            BuildMetric::Instructions => "instructions",
        }
    }
}

/// One benchmark's change from base to head in one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkChange {
    pub benchmark: String,
    pub metric: BuildMetric,
    /// Median of the base's and the head's values (ns per call or
    /// instructions).
    pub base: Option<f64>,
    pub head: Option<f64>,
    /// head / base − 1, with its interval.
    pub change: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub threshold: f64,
    pub verdict: BuildVerdict,
    /// Pairs behind a wall-clock figure.
    pub pairs: usize,
    /// Why it is inconclusive, or what else was seen.
    pub note: Option<String>,
}

impl BenchmarkChange {
    /// Whether an undecided change still rules out a regression: its
    /// interval straddles only the improvement bound (−threshold) and ends
    /// within the threshold, so only how much faster the head is stays
    /// open. A bisection asks only whether a commit regressed.
    pub fn rules_out_a_regression(&self) -> bool {
        let band = -self.threshold..=self.threshold;
        self.verdict == BuildVerdict::Inconclusive
            && matches!((self.low, self.high),
                (Some(low), Some(high)) if low < -self.threshold && band.contains(&high))
    }
}

/// The wall-clock change from paired per-call times (`base_ns[i]` and
/// `head_ns[i]` are pair `i`), at `confidence`.
pub fn wall_clock_change(
    benchmark: &str,
    base_ns: &[f64],
    head_ns: &[f64],
    threshold: f64,
    confidence: f64,
) -> BenchmarkChange {
    let interval = stats::paired_overhead(base_ns, head_ns, confidence);
    BenchmarkChange {
        benchmark: benchmark.to_owned(),
        metric: BuildMetric::WallClock,
        base: stats::median(base_ns),
        head: stats::median(head_ns),
        change: interval.map(|i| i.estimate),
        low: interval.map(|i| i.low),
        high: interval.map(|i| i.high),
        threshold,
        verdict: interval.map_or(BuildVerdict::Inconclusive, |i| {
            classify(i.low, i.high, threshold)
        }),
        pairs: interval.map_or(base_ns.len().min(head_ns.len()), |i| i.pairs),
        note: interval.is_none().then(|| {
            format!(
                "{} pairs are too few for a {:.2}% interval",
                base_ns.len().min(head_ns.len()),
                confidence * 100.0
            )
        }),
    }
}

/// The instruction change of one call: a count is the same in every run of
/// a build, so its interval is the point.
pub fn instruction_change(
    benchmark: &str,
    base: u64,
    head: u64,
    threshold: f64,
) -> BenchmarkChange {
    let change = (base > 0).then(|| head as f64 / base as f64 - 1.0);
    BenchmarkChange {
        benchmark: benchmark.to_owned(),
        metric: BuildMetric::Instructions,
        base: Some(base as f64),
        head: Some(head as f64),
        change,
        low: change,
        high: change,
        threshold,
        verdict: change.map_or(BuildVerdict::Inconclusive, |c| classify(c, c, threshold)),
        pairs: 0,
        note: None,
    }
}

/// On a host measured as too noisy, a wall-clock regression or improvement
/// is inconclusive instead: a busy host can slow either build's batches. An
/// unchanged verdict stands (its interval held within the threshold).
pub fn apply_noise(change: &mut BenchmarkChange, noise: Option<&HostNoise>) {
    let Some(reason) = noise.and_then(HostNoise::too_noisy) else {
        return;
    };
    if change.metric == BuildMetric::WallClock
        && matches!(
            change.verdict,
            BuildVerdict::Regression | BuildVerdict::Improvement
        )
    {
        change.note = Some(format!(
            "would be a {}, but the host was too noisy to decide: {reason}",
            change.verdict.label()
        ));
        change.verdict = BuildVerdict::Inconclusive;
    }
}

/// The worst verdict of `changes`: a regression over an inconclusive one
/// over the rest; unchanged when there are none.
pub fn overall(changes: &[BenchmarkChange]) -> BuildVerdict {
    changes
        .iter()
        .map(|c| c.verdict)
        .max()
        .unwrap_or(BuildVerdict::Unchanged)
}

/// Head against base, every benchmark and metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildComparison {
    pub base_commit: String,
    pub head_commit: String,
    pub quick: bool,
    /// The threshold on time per call; instructions use
    /// [`super::compare::INSTRUCTION_THRESHOLD`].
    pub threshold: f64,
    /// The confidence of the whole comparison, split over its looks.
    pub confidence: f64,
    pub looks: super::verdict::Looks,
    /// What the host did while the wall clock was sampled.
    pub host: Option<String>,
    /// Wall clock then instructions, benchmark by benchmark.
    pub changes: Vec<BenchmarkChange>,
    /// What was not measured, and why.
    pub notes: Vec<String>,
    pub verdict: BuildVerdict,
    /// Where the instructions went: per benchmark that regressed (or every
    /// one asked for), the base's callgrind profile against the head's.
    /// Empty in comparisons stored before profiles were diffed.
    #[serde(default)]
    pub profile_diffs: Vec<crate::diagnose::profile_diff::BuildDiff>,
}

#[cfg(test)]
impl BuildComparison {
    /// A quick comparison of commit a…a with b…b at 5% and 95% made of
    /// `changes` after `looks`: a fixture for tests of what reads one.
    pub fn of_changes(changes: Vec<BenchmarkChange>, looks: super::verdict::Looks) -> Self {
        Self {
            base_commit: "a".repeat(40),
            head_commit: "b".repeat(40),
            quick: true,
            threshold: 0.05,
            confidence: 0.95,
            looks,
            host: None,
            verdict: overall(&changes),
            changes,
            notes: Vec::new(),
            profile_diffs: Vec::new(),
        }
    }
}

impl BuildComparison {
    /// The changes of one metric.
    pub fn of(&self, metric: BuildMetric) -> impl Iterator<Item = &BenchmarkChange> {
        self.changes.iter().filter(move |c| c.metric == metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_decides_against_the_threshold() {
        let t = 0.05;
        assert_eq!(classify(0.06, 0.20, t), BuildVerdict::Regression);
        assert_eq!(classify(-0.20, -0.06, t), BuildVerdict::Improvement);
        assert_eq!(classify(-0.01, 0.02, t), BuildVerdict::Unchanged);
        assert_eq!(classify(-0.05, 0.05, t), BuildVerdict::Unchanged);
        // Straddling either bound decides nothing.
        assert_eq!(classify(0.03, 0.08, t), BuildVerdict::Inconclusive);
        assert_eq!(classify(-0.08, -0.03, t), BuildVerdict::Inconclusive);
        assert_eq!(classify(-0.10, 0.10, t), BuildVerdict::Inconclusive);
        // On the bound is not over it.
        assert_eq!(classify(0.05, 0.07, t), BuildVerdict::Inconclusive);
    }

    #[test]
    fn only_an_interval_open_on_the_faster_side_rules_out_a_regression() {
        let change = |low: f64, high: f64| BenchmarkChange {
            benchmark: "large/sync".into(),
            metric: BuildMetric::WallClock,
            base: Some(1.0),
            head: Some(1.0),
            change: Some((low + high) / 2.0),
            low: Some(low),
            high: Some(high),
            threshold: 0.05,
            verdict: classify(low, high, 0.05),
            pairs: 40,
            note: None,
        };
        // A comment-only commit after a disturbed first look.
        assert!(change(-0.0571, 0.0019).rules_out_a_regression());
        assert!(!change(-0.10, 0.10).rules_out_a_regression());
        assert!(!change(0.03, 0.08).rules_out_a_regression());
        // Decided intervals answer for themselves.
        assert!(!change(-0.01, 0.02).rules_out_a_regression());
        // Wholly faster, but withheld on a noisy host: stays undecided.
        let mut withheld = change(-0.20, -0.06);
        withheld.verdict = BuildVerdict::Inconclusive;
        assert!(!withheld.rules_out_a_regression());
    }

    #[test]
    fn paired_times_give_the_median_ratio_and_its_interval() {
        // Head 30% slower in every pair, with drift common to both sides.
        let base: Vec<f64> = (0..20).map(|i| 1000.0 + (i % 5) as f64 * 50.0).collect();
        let head: Vec<f64> = base.iter().map(|b| b * 1.3).collect();
        let change = wall_clock_change("large/sync", &base, &head, 0.05, 0.9875);
        assert_eq!(change.verdict, BuildVerdict::Regression);
        assert!((change.change.unwrap() - 0.3).abs() < 1e-9, "{change:?}");
        assert_eq!(change.pairs, 20);
        let same = wall_clock_change("large/sync", &base, &base, 0.05, 0.9875);
        assert_eq!(same.verdict, BuildVerdict::Unchanged);
        // Too few pairs for any interval: undecided, and said why.
        let few = wall_clock_change("large/sync", &base[..3], &head[..3], 0.05, 0.9875);
        assert_eq!(few.verdict, BuildVerdict::Inconclusive);
        assert!(few.note.unwrap().contains("3 pairs are too few"));
    }

    #[test]
    fn instruction_counts_are_judged_on_their_point() {
        let c = instruction_change("small/async", 1000, 1200, 0.01);
        assert_eq!(c.verdict, BuildVerdict::Regression);
        assert_eq!(c.low, c.high);
        assert_eq!(
            instruction_change("small/async", 1000, 1005, 0.01).verdict,
            BuildVerdict::Unchanged
        );
    }

    #[test]
    fn a_noisy_host_turns_a_decided_change_into_an_undecided_one() {
        let base = vec![100.0; 12];
        let head = vec![150.0; 12];
        let noisy = HostNoise {
            seconds: 5.0,
            foreign: 0.5,
            steal: 0.0,
            load_per_cpu: 2.0,
            involuntary_switches_per_second: 10.0,
        };
        let mut regression = wall_clock_change("small/sync", &base, &head, 0.05, 0.95);
        apply_noise(&mut regression, Some(&noisy));
        assert_eq!(regression.verdict, BuildVerdict::Inconclusive);
        assert!(regression.note.unwrap().contains("would be a regression"));
        let mut unchanged = wall_clock_change("small/sync", &base, &base, 0.05, 0.95);
        apply_noise(&mut unchanged, Some(&noisy));
        assert_eq!(unchanged.verdict, BuildVerdict::Unchanged);
        let quiet = HostNoise {
            foreign: 0.01,
            ..noisy
        };
        let mut kept = wall_clock_change("small/sync", &base, &head, 0.05, 0.95);
        apply_noise(&mut kept, Some(&quiet));
        assert_eq!(kept.verdict, BuildVerdict::Regression);
        assert_eq!(overall(&[unchanged, kept]), BuildVerdict::Regression);
    }
}
