//! Where the time went: two callgrind profiles (async against sync in one
//! run, one benchmark in two runs, or one benchmark in two builds measured
//! side by side) compared function by function.
//!
//! The change is in self instructions, so the functions' changes add up to
//! the change of the total: each function's share of it is meaningful. What
//! stored profiles left out (they keep the top functions only) is one
//! remainder row.

use serde::{Deserialize, Serialize};

use crate::judge::builds::{BenchmarkChange, BuildMetric, BuildVerdict};
use crate::judge::change_points::SeriesChangePoint;
use crate::judge::compare::{Change, Comparison};
use crate::judge::verdict::{ContractVerdict, Status};
use crate::measure::payload::{Payload, Variant, benchmark_id, parse_benchmark_id};
use crate::measure::profile::{FunctionCost, Profile};
use crate::store::{Store, StoreError, Tool};

/// How many functions a report shows.
pub const REPORT_TOP: usize = 10;

/// One function's counts on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionChange {
    pub function: String,
    /// Self instructions before and after (0: absent on that side).
    pub before: u64,
    pub after: u64,
    /// after − before.
    pub change: i64,
    /// change / the total's change (`None` when the total did not change).
    pub share: Option<f64>,
    /// Inclusive instructions (itself and what it called) before and after.
    pub inclusive_before: u64,
    pub inclusive_after: u64,
}

/// Two profiles compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileDiff {
    pub total_before: u64,
    pub total_after: u64,
    /// total_after − total_before.
    pub change: i64,
    /// The functions that changed most (by absolute change), at most `top`.
    pub functions: Vec<FunctionChange>,
    /// The change of everything not in `functions`: the other functions, and
    /// those a stored profile did not keep.
    pub rest: i64,
}

fn signed(after: u64, before: u64) -> i64 {
    after as i64 - before as i64
}

/// `after` against `before`, the `top` functions whose self count changed
/// most first. Pure.
pub fn diff(before: &Profile, after: &Profile, top: usize) -> ProfileDiff {
    let change = signed(after.total_ir, before.total_ir);
    let share = |c: i64| (change != 0).then(|| c as f64 / change as f64);
    let mut names: Vec<&str> = before
        .functions
        .iter()
        .chain(&after.functions)
        .map(|f| f.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut functions: Vec<FunctionChange> = names
        .into_iter()
        .map(|name| {
            let (b, a) = (before.function(name), after.function(name));
            let own = |f: Option<&FunctionCost>| f.map_or(0, |f| f.self_ir);
            let inclusive = |f: Option<&FunctionCost>| f.map_or(0, |f| f.inclusive_ir);
            let c = signed(own(a), own(b));
            FunctionChange {
                function: name.to_owned(),
                before: own(b),
                after: own(a),
                change: c,
                share: share(c),
                inclusive_before: inclusive(b),
                inclusive_after: inclusive(a),
            }
        })
        .filter(|f| f.change != 0)
        .collect();
    functions.sort_by(|a, b| {
        b.change
            .unsigned_abs()
            .cmp(&a.change.unsigned_abs())
            .then_with(|| a.function.cmp(&b.function))
    });
    functions.truncate(top);
    let listed: i64 = functions.iter().map(|f| f.change).sum();
    ProfileDiff {
        total_before: before.total_ir,
        total_after: after.total_ir,
        change,
        functions,
        rest: change - listed,
    }
}

impl ProfileDiff {
    /// The change as a fraction of the before total (`None` from nothing).
    pub fn relative(&self) -> Option<f64> {
        (self.total_before > 0).then(|| self.change as f64 / self.total_before as f64)
    }

    /// The rest's share of the change (`None` when the total did not change).
    pub fn rest_share(&self) -> Option<f64> {
        (self.change != 0).then(|| self.rest as f64 / self.change as f64)
    }
}

/// One benchmark of two builds measured side by side (`perfwarden compare`,
/// and `report` on a pull request): the base's profile against the head's,
/// both from the callgrind runs that counted the builds' instructions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildDiff {
    /// `<payload>/<variant>`, e.g. `large/sync`.
    pub benchmark: String,
    /// Why it was diffed: the regression's figures, or that it was asked for.
    pub reason: String,
    pub base_commit: String,
    pub head_commit: String,
    pub diff: ProfileDiff,
}

impl BuildDiff {
    /// The command that measures and prints the same diff again: the
    /// profiles do not depend on `--quick`, which only samples the wall
    /// clock for less long.
    pub fn command(&self) -> String {
        format!(
            "perfwarden compare {} {} --benchmark {} --profile --quick",
            crate::render::short_commit(&self.base_commit),
            crate::render::short_commit(&self.head_commit),
            self.benchmark
        )
    }
}

/// Why a benchmark of a side-by-side comparison gets its profiles diffed:
/// it regressed in any metric, or `every` benchmark is asked for; `None`
/// otherwise. `changes` are the comparison's, all benchmarks. Pure.
pub fn build_reason(benchmark: &str, changes: &[BenchmarkChange], every: bool) -> Option<String> {
    let own: Vec<&BenchmarkChange> = changes
        .iter()
        .filter(|c| c.benchmark == benchmark)
        .collect();
    let regressed = own.iter().any(|c| c.verdict == BuildVerdict::Regression);
    if !regressed && !every {
        return None;
    }
    let figures: Vec<String> = own
        .iter()
        .filter_map(|c| {
            let change = c.change?;
            let what = c.metric.label();
            Some(match (c.metric, c.low, c.high) {
                (BuildMetric::WallClock, Some(low), Some(high)) => format!(
                    "{what} {:+.2}% [{:+.2}%, {:+.2}%] {}",
                    change * 100.0,
                    low * 100.0,
                    high * 100.0,
                    c.verdict.label()
                ),
                _ => format!("{what} {:+.2}% {}", change * 100.0, c.verdict.label()),
            })
        })
        .collect();
    Some(format!(
        "{benchmark} {}{}{}",
        if regressed {
            "regressed against the base"
        } else {
            "against the base (asked for with --profile)"
        },
        if figures.is_empty() { "" } else { ": " },
        figures.join(", ")
    ))
}

/// One side of a diff of stored profiles: a run and one of its benchmarks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredSide {
    pub run_id: i64,
    /// `<payload>/<variant>`, e.g. `medium/async`.
    pub benchmark: String,
}

impl StoredSide {
    pub fn new(run_id: i64, benchmark: &str) -> Self {
        Self {
            run_id,
            benchmark: benchmark.to_owned(),
        }
    }

    /// A run as `perfwarden profile-diff` names it: `ID` or `ID:BENCHMARK`
    /// (e.g. `7:medium/async`); `None` for anything else.
    pub fn parse_argument(argument: &str) -> Option<(i64, Option<&str>)> {
        let (id, benchmark) = match argument.split_once(':') {
            Some((id, benchmark)) => (id, Some(benchmark)),
            None => (argument, None),
        };
        let id = id.parse().ok().filter(|id| *id > 0)?;
        Some((id, benchmark.filter(|b| !b.is_empty())))
    }

    /// `7:medium/async`, as `perfwarden profile-diff` reads it.
    pub fn argument(&self) -> String {
        format!("{}:{}", self.run_id, self.benchmark)
    }
}

/// The command that prints the same diff from the history database.
pub fn command(before: &StoredSide, after: &StoredSide) -> String {
    format!(
        "perfwarden profile-diff {} {}",
        before.argument(),
        after.argument()
    )
}

/// How many sections a report shows at most (a FAIL on many cases, many
/// regressions): the first ones, in the order the verdicts and comparisons list them.
pub const REPORT_SECTIONS: usize = 6;

/// Two stored profiles to diff, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffRequest {
    /// e.g. `performance-001 FAIL, medium: async against sync`.
    pub reason: String,
    pub before: StoredSide,
    pub after: StoredSide,
}

/// A report's "where the time went" section: the request and its diff
/// (`None` when a side has no stored profile).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WhereTimeWent {
    pub request: DiffRequest,
    pub diff: Option<ProfileDiff>,
}

/// What a report diffs, pure: for each FAILed case of a spec payload, its
/// judged variant against the other in this run (or, for a contract on one
/// variant, against the base run); for each benchmark regressed against the
/// base, the base's profile against this run's; for each change point found
/// at this run in a benchmark's series, the run before the shift against
/// this one. At most [`REPORT_SECTIONS`].
pub fn requests(
    run_id: i64,
    verdicts: &[ContractVerdict],
    comparisons: &[Comparison],
    base_run_id: Option<i64>,
    change_points: &[SeriesChangePoint],
) -> Vec<DiffRequest> {
    let mut out: Vec<DiffRequest> = Vec::new();
    let mut push = |request: DiffRequest| {
        let same = |r: &DiffRequest| r.before == request.before && r.after == request.after;
        if out.len() < REPORT_SECTIONS && !out.iter().any(same) {
            out.push(request);
        }
    };
    for verdict in verdicts.iter().filter(|v| v.status == Status::Fail) {
        let Some(judged) = Variant::from_name(&verdict.judged) else {
            continue;
        };
        let other = verdict.other.as_deref().and_then(Variant::from_name);
        for case in verdict.cases.iter().filter(|c| c.status == Status::Fail) {
            let Some(payload) = Payload::from_name(&case.payload) else {
                continue;
            };
            let after = StoredSide::new(run_id, &benchmark_id(payload, judged));
            let (before, against) = match (other, base_run_id) {
                (Some(other), _) => (
                    StoredSide::new(run_id, &benchmark_id(payload, other)),
                    format!("{} against {}", judged.name(), other.name()),
                ),
                (None, Some(base)) => (
                    StoredSide::new(base, &after.benchmark),
                    format!("{} against the base (run #{base})", judged.name()),
                ),
                (None, None) => continue,
            };
            push(DiffRequest {
                reason: format!("{} FAIL, {}: {against}", verdict.contract, case.case),
                before,
                after,
            });
        }
    }
    for c in comparisons
        .iter()
        .filter(|c| c.status == Change::Regression)
    {
        if parse_benchmark_id(&c.benchmark).is_none() {
            continue;
        }
        push(DiffRequest {
            reason: format!(
                "{} regressed against the base (run #{}, {} {:+.2}%)",
                c.benchmark,
                c.base_run_id,
                if c.tool == Tool::Callgrind {
                    "instructions"
                } else {
                    "wall clock"
                },
                c.change * 100.0
            ),
            before: StoredSide::new(c.base_run_id, &c.benchmark),
            after: StoredSide::new(run_id, &c.benchmark),
        });
    }
    for c in change_points.iter().filter(|c| {
        c.change.after_run_id == run_id && parse_benchmark_id(&c.series.benchmark).is_some()
    }) {
        push(DiffRequest {
            reason: format!(
                "change point in {} {} {} ({:+.2}%, p {:.1e}) between run #{} and this run",
                c.series.source,
                c.series.benchmark,
                c.series.metric,
                c.change.relative_change * 100.0,
                c.change.p_value,
                c.change.before_run_id
            ),
            before: StoredSide::new(c.change.before_run_id, &c.series.benchmark),
            after: StoredSide::new(run_id, &c.series.benchmark),
        });
    }
    out
}

/// A diff of two stored runs' profiles of a benchmark (or of two benchmarks
/// of one run): `None` when either side has no stored profile (runs before
/// profiles were kept, or measured without valgrind).
pub async fn diff_stored(
    store: &Store,
    before: &StoredSide,
    after: &StoredSide,
    top: usize,
) -> Result<Option<ProfileDiff>, StoreError> {
    let Some(b) = store.profile(before.run_id, &before.benchmark).await? else {
        return Ok(None);
    };
    let Some(a) = store.profile(after.run_id, &after.benchmark).await? else {
        return Ok(None);
    };
    Ok(Some(diff(&b, &a, top)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(total: u64, functions: &[(&str, u64, u64)]) -> Profile {
        Profile {
            total_ir: total,
            functions: functions
                .iter()
                .map(|(name, own, inclusive)| FunctionCost {
                    name: (*name).into(),
                    self_ir: *own,
                    inclusive_ir: *inclusive,
                })
                .collect(),
        }
    }

    #[test]
    fn shares_of_the_change_add_up_with_the_rest() {
        let before = profile(1000, &[("encode", 600, 900), ("alloc", 200, 200)]);
        let after = profile(
            1300,
            &[
                ("encode", 800, 1150),
                ("alloc", 150, 150),
                ("dispatch", 150, 300),
            ],
        );
        let d = diff(&before, &after, 10);
        assert_eq!(d.change, 300);
        let rows: Vec<(&str, i64)> = d
            .functions
            .iter()
            .map(|f| (f.function.as_str(), f.change))
            .collect();
        assert_eq!(rows, [("encode", 200), ("dispatch", 150), ("alloc", -50)]);
        assert_eq!(d.functions[0].share, Some(200.0 / 300.0));
        assert_eq!(d.functions[2].share, Some(-50.0 / 300.0));
        assert_eq!(d.functions[1].before, 0);
        assert_eq!(d.functions[1].inclusive_after, 300);
        // The functions not listed in either profile: 200 before, 200 after.
        assert_eq!(d.rest, 0);
        assert_eq!(d.relative(), Some(0.3));

        let top = diff(&before, &after, 1);
        assert_eq!(top.functions.len(), 1);
        assert_eq!(top.rest, 100);
    }

    #[test]
    fn no_change_has_no_shares() {
        let same = profile(10, &[("f", 10, 10)]);
        let d = diff(&same, &same, 5);
        assert!(d.functions.is_empty());
        assert_eq!((d.change, d.rest), (0, 0));
        let moved = diff(&same, &profile(10, &[("g", 10, 10)]), 5);
        assert!(moved.functions.iter().all(|f| f.share.is_none()));
    }

    #[test]
    fn run_arguments() {
        assert_eq!(
            StoredSide::parse_argument("7:medium/async"),
            Some((7, Some("medium/async")))
        );
        assert_eq!(StoredSide::parse_argument("12"), Some((12, None)));
        assert_eq!(StoredSide::parse_argument("12:"), Some((12, None)));
        for not_a_run in ["callgrind.out", "0", "-3", "x:medium/sync", ""] {
            assert_eq!(StoredSide::parse_argument(not_a_run), None, "{not_a_run}");
        }
    }

    #[test]
    fn the_command_names_both_sides() {
        assert_eq!(
            command(
                &StoredSide::new(3, "medium/sync"),
                &StoredSide::new(3, "medium/async")
            ),
            "perfwarden profile-diff 3:medium/sync 3:medium/async"
        );
    }
}
