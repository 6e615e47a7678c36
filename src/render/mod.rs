//! Turning stored runs and verdicts into text for people: pure functions that
//! return strings.

pub mod charts;
pub mod compare;
pub mod dashboard;
pub mod escape;
pub mod report;

use crate::diagnose::probes::Check;
use crate::diagnose::selftest::{self, WrapperReport};
use crate::store::RunInfo;

/// `2026-11-27 04:26:51 UTC` from Unix milliseconds.
pub fn format_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn short_commit(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// `perfwarden history`'s table.
pub fn history_table(runs: &[RunInfo]) -> String {
    if runs.is_empty() {
        return "no runs stored yet; `perfwarden run` measures the current checkout\n".into();
    }
    let mut out = format!(
        "{:>5}  {:<23}  {:<10}  {:<20}  {:<5}  {:<16}  notes\n",
        "run", "started", "commit", "branch", "mode", "machine"
    );
    for run in runs {
        let commit = format!(
            "{}{}",
            short_commit(&run.commit),
            if run.dirty { "+" } else { "" }
        );
        out.push_str(&format!(
            "{:>5}  {:<23}  {:<10}  {:<20}  {:<5}  {:<16}  {}\n",
            run.id,
            format_timestamp(run.started_at_ms),
            commit,
            run.branch.as_deref().unwrap_or("-"),
            if run.quick { "quick" } else { "full" },
            run.machine_id,
            run.notes.join(" / ")
        ));
    }
    out
}

/// `perfwarden selftest`'s matrix: one row per wrapper, one column per probe
/// and the verdict; `*` marks what the fixture is built to trip.
pub fn selftest_matrix(reports: &[WrapperReport]) -> String {
    let mut out = format!("{:<22}", "wrapper");
    for check in Check::ALL {
        out.push_str(&format!("  {:<20}", check.id()));
    }
    out.push_str("  verdict\n");
    for report in reports {
        out.push_str(&format!("{:<22}", report.wrapper));
        let expected = selftest::expected_flag(&report.wrapper);
        for check in Check::ALL {
            let mark = if expected == Some(check) { "*" } else { "" };
            out.push_str(&format!(
                "  {:<20}",
                format!("{}{mark}", report.probe(check).label())
            ));
        }
        let mark = if report.wrapper == selftest::SLOWDOWN_FIXTURE {
            "*"
        } else {
            ""
        };
        out.push_str(&format!("  {}{mark}\n", report.verdict.status.label()));
    }
    out.push_str("\nevidence:\n");
    for report in reports {
        for probe in &report.probes {
            out.push_str(&format!(
                "  {} / {}: {}\n",
                report.wrapper,
                probe.check.id(),
                probe.evidence
            ));
        }
        for case in &report.verdict.cases {
            out.push_str(&format!(
                "  {} / verdict {}: overhead {} [{}, {}] over {} pairs: {}{}\n",
                report.wrapper,
                case.case,
                percent(case.estimate),
                percent(case.low),
                percent(case.high),
                case.samples,
                case.status.label(),
                case.note
                    .as_deref()
                    .map_or(String::new(), |note| format!(" ({note})"))
            ));
        }
        if let Some(sampling) = &report.noise.sampling {
            out.push_str(&format!("  {} / verdict: {sampling}\n", report.wrapper));
        }
    }
    out
}

/// `perfwarden profile-diff`'s table: the totals, then a row per function
/// (self instructions before, after, the change and its share of the total
/// change, inclusive before and after), the rest in one row.
pub fn profile_diff_table(diff: &crate::diagnose::profile_diff::ProfileDiff) -> String {
    let share = |s: Option<f64>| s.map_or("-".into(), |s| format!("{:.1}%", s * 100.0));
    let mut out = format!(
        "total: {} -> {} instructions ({:+}, {})\n\n{:>14}  {:>14}  {:>14}  {:>7}  {:>14}  {:>14}  function\n",
        diff.total_before,
        diff.total_after,
        diff.change,
        percent(diff.relative()),
        "self before",
        "self after",
        "change",
        "share",
        "incl. before",
        "incl. after"
    );
    for f in &diff.functions {
        out.push_str(&format!(
            "{:>14}  {:>14}  {:>+14}  {:>7}  {:>14}  {:>14}  {}\n",
            f.before,
            f.after,
            f.change,
            share(f.share),
            f.inclusive_before,
            f.inclusive_after,
            f.function
        ));
    }
    if diff.rest != 0 {
        out.push_str(&format!(
            "{:>14}  {:>14}  {:>+14}  {:>7}  {:>14}  {:>14}  (every other function)\n",
            "",
            "",
            diff.rest,
            share(diff.rest_share()),
            "",
            ""
        ));
    }
    if diff.functions.is_empty() && diff.rest == 0 {
        out.push_str("(no function's count changed)\n");
    }
    out
}

/// `perfwarden calibrate`'s table: a row per scenario.
pub fn calibration_table(results: &[crate::diagnose::calibrate::ScenarioResult]) -> String {
    let mut out = format!(
        "{:<22} {:>13} {:>9} {:>8} {:>6} {:>6} {:>13} {:>10} {:>12}\n",
        "scenario",
        "true overhead",
        "neighbour",
        "verdicts",
        "PASS",
        "FAIL",
        "INCONCLUSIVE",
        "for noise",
        "noise score"
    );
    for r in results {
        out.push_str(&format!(
            "{:<22} {:>13} {:>9} {:>8} {:>6} {:>6} {:>13} {:>10} {:>12}\n",
            r.scenario.name,
            r.scenario
                .true_overhead
                .map_or("measured".into(), |o| format!("{:+.0}%", o * 100.0)),
            if r.scenario.noisy_neighbour {
                "yes"
            } else {
                "no"
            },
            r.verdicts,
            r.pass,
            r.fail,
            r.inconclusive,
            r.inconclusive_for_noise,
            r.median_noise_score
                .map_or("-".into(), |s| format!("{:.1}%", s * 100.0))
        ));
    }
    out.push_str("for noise: INCONCLUSIVE because the machine was measured too noisy to decide a FAIL at the limit; noise score: the verdicts' median\n");
    out
}

/// A complete, self-contained HTML document (no scripts, no network).
pub fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\nbody {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}\ntable {{ border-collapse: collapse; margin: 1em 0; }}\nth, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}\nfigure {{ margin: 1em 0; }}\npre.summary {{ white-space: pre-wrap; background: #f6f8fa; padding: 1em; }}\n.PASS {{ color: #1a7f37; }} .FAIL {{ color: #cf222e; }} .INCONCLUSIVE {{ color: #9a6700; }} .noisy {{ color: #9a6700; font-weight: bold; }}\n</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        charts::escape(title)
    )
}

/// `name` as a file name: letters, digits, `.`, `-` and `_` kept, anything
/// else `_`, and no leading dot.
pub fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    stem.trim_start_matches('.').to_owned()
}

/// Nanoseconds in the unit a reader wants (ns, µs, ms, s).
pub fn duration_text(ns: f64) -> String {
    match ns.abs() {
        n if n >= 1e9 => format!("{:.2} s", ns / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", ns / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", ns / 1e3),
        _ => format!("{ns:.0} ns"),
    }
}

/// A count with a k or M suffix.
pub fn count_text(value: f64) -> String {
    if value.abs() >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value.abs() >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

/// An exact count with thousands separated, signed when asked: `5,148,131`,
/// `+6,733`.
pub fn grouped_count(value: i64, signed: bool) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = match (value < 0, signed && value > 0) {
        (true, _) => "-",
        (false, true) => "+",
        _ => "",
    };
    format!("{sign}{grouped}")
}

/// A fraction as a signed percentage, `-` when missing.
pub fn percent(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{:+.2}%", v * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_grouped_by_thousands() {
        assert_eq!(grouped_count(5_148_131, false), "5,148,131");
        assert_eq!(grouped_count(6_733, true), "+6,733");
        assert_eq!(grouped_count(-438, true), "-438");
        assert_eq!(grouped_count(0, true), "0");
        assert_eq!(grouped_count(100_000, false), "100,000");
    }

    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_timestamp(1_795_753_611_000),
            "2026-11-27 04:26:51 UTC"
        );
        assert_eq!(format_timestamp(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn contract_ids_make_safe_file_names() {
        assert_eq!(file_stem("performance-001"), "performance-001");
        assert_eq!(file_stem("../etc/passwd"), "_etc_passwd");
    }

    #[test]
    fn figures_read_in_human_units() {
        assert_eq!(duration_text(950.0), "950 ns");
        assert_eq!(duration_text(1_850_000.0), "1.85 ms");
        assert_eq!(duration_text(4_380_000_000.0), "4.38 s");
        assert_eq!(count_text(6_950_000.0), "6.95 M");
        assert_eq!(count_text(1234.0), "1.2 k");
    }
}
