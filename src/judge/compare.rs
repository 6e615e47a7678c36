//! Head versus base: every benchmark of a run against the latest stored run
//! of its base. Instruction counts compare across machines; wall clock only
//! between runs with the same machine fingerprint, with a threshold learned
//! from that machine's history.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::{Measurement, Tool};

/// Instruction counts are deterministic up to allocator noise, far under
/// this (docs/methodology.md).
pub const INSTRUCTION_THRESHOLD: f64 = 0.01;
/// Wall-clock threshold while the history is too short to learn one.
pub const WALL_CLOCK_FALLBACK: f64 = 0.10;
/// The fewest past runs a threshold is learned from.
pub const MIN_HISTORY: usize = 5;
/// A learned threshold is never tighter than this.
pub const WALL_CLOCK_FLOOR: f64 = 0.02;

/// The figures of one stored run that comparisons use.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFigures {
    pub run_id: i64,
    pub machine_id: String,
    /// (tool, benchmark, metric) → value; missing figures are absent.
    pub values: BTreeMap<(Tool, String, String), f64>,
}

impl RunFigures {
    pub fn new(run_id: i64, machine_id: &str, measurements: &[Measurement]) -> Self {
        Self {
            run_id,
            machine_id: machine_id.to_owned(),
            values: measurements
                .iter()
                .filter_map(|m| Some(((m.tool, m.benchmark.clone(), m.metric.clone()), m.value?)))
                .collect(),
        }
    }

    pub fn get(&self, tool: Tool, benchmark: &str, metric: &str) -> Option<f64> {
        self.values
            .get(&(tool, benchmark.to_owned(), metric.to_owned()))
            .copied()
    }

    fn benchmarks(&self, tool: Tool, metric: &str) -> Vec<String> {
        self.values
            .keys()
            .filter(|(t, _, m)| *t == tool && m == metric)
            .map(|(_, b, _)| b.clone())
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Regression,
    Improvement,
    Unchanged,
}

impl Change {
    pub fn label(self) -> &'static str {
        match self {
            Change::Regression => "regression",
            Change::Improvement => "improvement",
            Change::Unchanged => "unchanged",
        }
    }

    pub fn parse(label: &str) -> Option<Self> {
        [Change::Regression, Change::Improvement, Change::Unchanged]
            .into_iter()
            .find(|c| c.label() == label)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub benchmark: String,
    pub tool: Tool,
    pub metric: String,
    pub base_run_id: i64,
    pub head: f64,
    pub base: f64,
    /// head / base − 1.
    pub change: f64,
    pub threshold: f64,
    /// Whether the threshold was learned from history (else a fixed one).
    pub learned: bool,
    pub status: Change,
}

/// The wall-clock threshold from a machine's past means of one benchmark
/// (oldest first): three times the median run-to-run change, at least
/// [`WALL_CLOCK_FLOOR`]; the fallback while history is short.
pub fn wall_clock_threshold(past_means: &[f64]) -> (f64, bool) {
    if past_means.len() < MIN_HISTORY {
        return (WALL_CLOCK_FALLBACK, false);
    }
    let steps: Vec<f64> = past_means
        .windows(2)
        .map(|w| (w[1] / w[0] - 1.0).abs())
        .collect();
    let typical = super::stats::median(&steps).unwrap_or(WALL_CLOCK_FALLBACK);
    ((3.0 * typical).max(WALL_CLOCK_FLOOR), true)
}

fn judge_change(change: f64, threshold: f64) -> Change {
    if change > threshold {
        Change::Regression
    } else if change < -threshold {
        Change::Improvement
    } else {
        Change::Unchanged
    }
}

/// Compares `head` with `base`. `history` holds earlier runs (oldest first)
/// used to learn wall-clock noise; only those on head's machine count.
pub fn compare(head: &RunFigures, base: &RunFigures, history: &[RunFigures]) -> Vec<Comparison> {
    let mut comparisons = Vec::new();
    let mut push = |tool, benchmark: &str, metric: &str, threshold: f64, learned: bool| {
        if let (Some(h), Some(b)) = (
            head.get(tool, benchmark, metric),
            base.get(tool, benchmark, metric),
        ) && b > 0.0
        {
            let change = h / b - 1.0;
            comparisons.push(Comparison {
                benchmark: benchmark.to_owned(),
                tool,
                metric: metric.to_owned(),
                base_run_id: base.run_id,
                head: h,
                base: b,
                change,
                threshold,
                learned,
                status: judge_change(change, threshold),
            });
        }
    };
    for benchmark in head.benchmarks(Tool::Callgrind, "instructions") {
        push(
            Tool::Callgrind,
            &benchmark,
            "instructions",
            INSTRUCTION_THRESHOLD,
            false,
        );
    }
    if head.machine_id == base.machine_id {
        for benchmark in head.benchmarks(Tool::Criterion, "mean") {
            let past: Vec<f64> = history
                .iter()
                .filter(|r| r.machine_id == head.machine_id && r.run_id != head.run_id)
                .filter_map(|r| r.get(Tool::Criterion, &benchmark, "mean"))
                .collect();
            let (threshold, learned) = wall_clock_threshold(&past);
            push(Tool::Criterion, &benchmark, "mean", threshold, learned);
        }
    }
    comparisons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(run_id: i64, machine: &str, entries: &[(Tool, &str, &str, f64)]) -> RunFigures {
        RunFigures {
            run_id,
            machine_id: machine.into(),
            values: entries
                .iter()
                .map(|(t, b, m, v)| ((*t, b.to_string(), m.to_string()), *v))
                .collect(),
        }
    }

    #[test]
    fn instructions_compare_across_machines_wall_clock_only_on_one() {
        let base = figures(
            1,
            "m1",
            &[
                (Tool::Callgrind, "large/async", "instructions", 100.0),
                (Tool::Criterion, "large/async", "mean", 10.0),
            ],
        );
        let head = figures(
            2,
            "m2",
            &[
                (Tool::Callgrind, "large/async", "instructions", 103.0),
                (Tool::Criterion, "large/async", "mean", 20.0),
            ],
        );
        let result = compare(&head, &base, &[]);
        assert_eq!(
            result.len(),
            1,
            "wall clock must not compare across machines"
        );
        assert_eq!(result[0].status, Change::Regression);
        assert!((result[0].change - 0.03).abs() < 1e-12);

        let head_same = figures(2, "m1", &[(Tool::Criterion, "large/async", "mean", 8.0)]);
        let result = compare(&head_same, &base, &[]);
        assert_eq!(result.len(), 1);
        assert_eq!(result[0].status, Change::Improvement);
        assert!(!result[0].learned);
        assert_eq!(result[0].threshold, WALL_CLOCK_FALLBACK);
    }

    #[test]
    fn the_threshold_is_learned_from_noise() {
        assert_eq!(
            wall_clock_threshold(&[1.0, 1.0]),
            (WALL_CLOCK_FALLBACK, false)
        );
        let quiet = [100.0, 100.5, 100.0, 100.4, 100.1, 100.2];
        assert_eq!(wall_clock_threshold(&quiet), (WALL_CLOCK_FLOOR, true));
        let noisy = [100.0, 110.0, 100.0, 110.0, 100.0, 110.0];
        let (threshold, learned) = wall_clock_threshold(&noisy);
        assert!(learned && threshold > 0.25, "{threshold}");
        // A 6% slowdown is a regression on the quiet machine, noise on the noisy one.
        assert_eq!(
            judge_change(0.06, wall_clock_threshold(&quiet).0),
            Change::Regression
        );
        assert_eq!(judge_change(0.06, threshold), Change::Unchanged);
    }
}
