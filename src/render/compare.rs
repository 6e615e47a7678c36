//! `compare` and `bisect` for people: a table per comparison, the first bad
//! commit with its evidence.

use super::{count_text, duration_text, escape, percent, short_commit};
use crate::compare::{BisectStep, Bisection};
use crate::judge::builds::{BenchmarkChange, BuildComparison, BuildMetric, BuildVerdict};

fn figure(metric: BuildMetric, value: Option<f64>) -> String {
    match (metric, value) {
        (_, None) => "-".into(),
        (BuildMetric::WallClock, Some(ns)) => duration_text(ns),
        (BuildMetric::Instructions, Some(count)) => count_text(count),
    }
}

fn interval(change: &BenchmarkChange) -> String {
    match change.metric {
        BuildMetric::Instructions => percent(change.change),
        BuildMetric::WallClock => format!(
            "{} [{}, {}]",
            percent(change.change),
            percent(change.low),
            percent(change.high)
        ),
    }
}

/// `perfwarden compare`'s table: a row per benchmark, time per call with
/// its interval and verdict, and the instruction counts beside it.
pub fn comparison_table(comparison: &BuildComparison) -> String {
    let mut out = format!(
        "base {}  head {}  ({} mode; threshold ±{:.2}% on time per call, ±{:.2}% on instructions; {:.0}% confidence, {} of {} looks)\n",
        short_commit(&comparison.base_commit),
        short_commit(&comparison.head_commit),
        if comparison.quick { "quick" } else { "full" },
        comparison.threshold * 100.0,
        crate::judge::compare::INSTRUCTION_THRESHOLD * 100.0,
        comparison.confidence * 100.0,
        comparison.looks.taken,
        comparison.looks.max,
    );
    out.push_str(&format!(
        "{:<13} {:>10} {:>10}  {:<32} {:<13} {:>9} {:>9} {:>8}  {}\n",
        "benchmark",
        "base",
        "head",
        "change [interval]",
        "verdict",
        "base ins",
        "head ins",
        "change",
        "verdict"
    ));
    let mut notes = Vec::new();
    for time in comparison.of(BuildMetric::WallClock) {
        let counts = comparison
            .of(BuildMetric::Instructions)
            .find(|c| c.benchmark == time.benchmark);
        let (base_ins, head_ins, ins_change, ins_verdict) = counts.map_or_else(
            || ("-".into(), "-".into(), "-".into(), "-"),
            |c| {
                (
                    figure(c.metric, c.base),
                    figure(c.metric, c.head),
                    interval(c),
                    c.verdict.label(),
                )
            },
        );
        out.push_str(&format!(
            "{:<13} {:>10} {:>10}  {:<32} {:<13} {:>9} {:>9} {:>8}  {}\n",
            time.benchmark,
            figure(time.metric, time.base),
            figure(time.metric, time.head),
            interval(time),
            time.verdict.label(),
            base_ins,
            head_ins,
            ins_change,
            ins_verdict
        ));
        if let Some(note) = &time.note {
            notes.push(format!("{}: {note}", time.benchmark));
        }
    }
    for note in notes.iter().chain(&comparison.notes) {
        out.push_str(&format!("note: {note}\n"));
    }
    if let Some(host) = &comparison.host {
        out.push_str(&format!("host: {host}\n"));
    }
    for build in &comparison.profile_diffs {
        out.push_str(&format!(
            "\nwhere the time went ({}): {} of the base against the head\n",
            build.reason, build.benchmark
        ));
        out.push_str(&super::profile_diff_table(&build.diff));
        out.push_str(&format!("reproduce: {}\n\n", build.command()));
    }
    out.push_str(&format!(
        "verdict: {}\n",
        comparison.verdict.label().to_uppercase()
    ));
    out
}

/// The PR comment's head-versus-base section when both builds were measured
/// side by side.
pub fn comparison_markdown(comparison: &BuildComparison) -> String {
    let mut md = format!(
        "### Head versus base (base {}, head {}, built and measured side by side)\n\n",
        escape::code(short_commit(&comparison.base_commit)),
        escape::code(short_commit(&comparison.head_commit)),
    );
    md.push_str(&format!(
        "Time per call from {} paired batches (base and head alternating), the change with its {:.0}% interval; a regression when the whole interval lies above +{:.1}%. Instructions per call under callgrind, threshold ±{:.1}%.\n\n",
        if comparison.quick { "quick" } else { "full-mode" },
        comparison.confidence * 100.0,
        comparison.threshold * 100.0,
        crate::judge::compare::INSTRUCTION_THRESHOLD * 100.0,
    ));
    md.push_str("| benchmark | figure | base | head | change | |\n|---|---|---:|---:|---:|---|\n");
    let mut rows: Vec<&BenchmarkChange> = comparison.changes.iter().collect();
    rows.sort_by_key(|c| std::cmp::Reverse(c.verdict));
    for c in rows {
        let mark = match c.verdict {
            BuildVerdict::Regression => "🔺 regression",
            BuildVerdict::Improvement => "🔻 improvement",
            BuildVerdict::Inconclusive => "❔ inconclusive",
            BuildVerdict::Unchanged => "",
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {mark} |\n",
            escape::text(&c.benchmark),
            c.metric.label(),
            figure(c.metric, c.base),
            figure(c.metric, c.head),
            interval(c)
        ));
    }
    md.push('\n');
    for note in comparison
        .changes
        .iter()
        .filter_map(|c| c.note.as_ref().map(|n| format!("{}: {n}", c.benchmark)))
        .chain(comparison.notes.iter().cloned())
    {
        md.push_str(&format!("> {}\n\n", escape::text(&note)));
    }
    md.push_str(&super::report::build_diffs_markdown(
        &comparison.profile_diffs,
    ));
    md
}

fn step_line(step: &BisectStep) -> String {
    format!(
        "{}  {:<4}  {}  ({})\n",
        short_commit(&step.commit),
        match step.outcome {
            crate::compare::StepOutcome::Good => "good",
            crate::compare::StepOutcome::Bad => "bad",
            crate::compare::StepOutcome::Skip => "skip",
        },
        step.subject,
        step.reason
    )
}

/// `perfwarden bisect`'s answer: the first bad commit and its evidence (its
/// time per call against the good commit), then every commit tested.
pub fn bisection_text(bisection: &Bisection) -> String {
    let mut out = String::new();
    match (&bisection.first_bad, &bisection.undecided) {
        (Some(first), _) => {
            out.push_str(&format!(
                "first bad commit: {} {}\nagainst the good commit {}:\n",
                first.commit,
                first.subject,
                short_commit(&bisection.good)
            ));
            for row in &first.evidence {
                out.push_str(&format!(
                    "  {:<13} {:>10} -> {:>10}  {} [{}, {}]  {}{}\n",
                    row.benchmark,
                    figure(BuildMetric::WallClock, row.base),
                    figure(BuildMetric::WallClock, row.head),
                    percent(row.change),
                    percent(row.low),
                    percent(row.high),
                    row.verdict,
                    row.note
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ));
            }
            for build in &first.profile_diffs {
                out.push_str(&format!("  {}\n", super::report::build_diff_text(build)));
            }
        }
        (None, Some(why)) => out.push_str(&format!("no first bad commit: {why}\n")),
        (None, None) => out.push_str("no first bad commit\n"),
    }
    out.push_str("tested:\n");
    for step in &bisection.steps {
        out.push_str(&format!("  {}", step_line(step)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::builds::{BuildVerdict, instruction_change, wall_clock_change};
    use crate::judge::verdict::Looks;

    fn comparison() -> BuildComparison {
        let base = vec![1000.0; 12];
        let head = vec![1300.0; 12];
        let changes = vec![
            wall_clock_change("large/sync", &base, &head, 0.05, 0.9875),
            wall_clock_change("large/async", &base, &base, 0.05, 0.9875),
            instruction_change("large/sync", 1_000_000, 1_900_000, 0.01),
        ];
        BuildComparison {
            notes: vec!["valgrind <b>missing</b>".into()],
            ..BuildComparison::of_changes(changes, Looks { taken: 1, max: 4 })
        }
    }

    #[test]
    fn the_table_has_a_row_per_benchmark_with_its_counts_beside_it() {
        let table = comparison_table(&comparison());
        let row = table.lines().find(|l| l.starts_with("large/sync")).unwrap();
        assert!(row.contains("+30.00% [+30.00%, +30.00%]"), "{row}");
        assert!(row.contains("1.00 M") && row.contains("1.90 M"), "{row}");
        assert_eq!(row.matches("regression").count(), 2, "{row}");
        let other = table
            .lines()
            .find(|l| l.starts_with("large/async"))
            .unwrap();
        assert!(
            other.contains("unchanged") && other.ends_with("-"),
            "{other}"
        );
        assert!(table.ends_with("verdict: REGRESSION\n"), "{table}");
    }

    #[test]
    fn the_comment_section_puts_regressions_first_and_escapes_notes() {
        let md = comparison_markdown(&comparison());
        assert!(
            md.starts_with("### Head versus base (base `aaaaaaaaaa`"),
            "{md}"
        );
        let first_row = md.lines().find(|l| l.starts_with("| large")).unwrap();
        assert!(first_row.contains("🔺 regression"), "{first_row}");
        assert!(!md.contains("<b>"), "{md}");
        assert_eq!(comparison().verdict, BuildVerdict::Regression);
    }
}
