//! Turning stored runs and verdicts into text for people: pure functions that
//! return strings.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_timestamp(1_795_753_611_000),
            "2026-11-27 04:26:51 UTC"
        );
        assert_eq!(format_timestamp(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
