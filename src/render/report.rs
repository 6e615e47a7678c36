//! The report of one run: the PR comment body (markdown, with a mermaid
//! chart GitHub draws itself), `verdict.json`, and an HTML page with the SVG
//! charts.

use serde_json::json;

use super::charts;
use super::escape;
use super::{count_text, duration_text, format_timestamp, grouped_count, percent, short_commit};
use crate::diagnose::probes::{ProbeResult, ProbeStatus};
use crate::diagnose::profile_diff::{self, BuildDiff, ProfileDiff, WhereTimeWent};
use crate::judge::builds::{BenchmarkChange, BuildVerdict};
use crate::judge::compare::{Change, Comparison};
use crate::judge::contract::Bound;
use crate::judge::verdict::{CaseVerdict, ContractVerdict, Status};
use crate::measure::batch_noise::{RunNoise, noise_threshold};
use crate::measure::decompose::Decomposition;
use crate::metric::{Metric, Shape};
use crate::store::{Judgement, RunInfo, Tool};

/// Per case (by name), every pair's overhead (fraction).
pub type CaseDistributions = Vec<(String, Vec<f64>)>;

/// Everything a report shows, as plain data.
#[derive(Clone, Debug)]
pub struct ReportData {
    pub run: RunInfo,
    /// What the host and the OS did while the contracts were measured
    /// (empty for runs stored without it).
    pub noise: RunNoise,
    /// Per spec payload, where the async call's time went.
    pub decomposition: Vec<(String, Decomposition)>,
    /// Its verdicts are this report's, one per contract, in the order judged.
    pub judgement: Judgement,
    pub base_run: Option<RunInfo>,
    /// Per contract id, per case, every pair's overhead (fraction), for the
    /// contracts judged on paired time.
    pub distributions: Vec<(String, CaseDistributions)>,
    /// Per FAIL and regression, the callgrind profiles diffed.
    pub where_time_went: Vec<WhereTimeWent>,
    pub artifact_url: Option<String>,
    pub dashboard_url: Option<String>,
    /// Shown first, each as a warning.
    pub warnings: Vec<String>,
}

impl ReportData {
    pub fn verdicts(&self) -> &[ContractVerdict] {
        &self.judgement.verdicts
    }

    /// The strictest noise threshold of the timing contracts judged (the
    /// steal threshold when there is none).
    pub fn noise_threshold(&self) -> f64 {
        self.verdicts()
            .iter()
            .filter(|v| v.metric.is_timed())
            .map(|v| noise_threshold(v.metric, v.bound))
            .reduce(f64::min)
            .unwrap_or(crate::measure::noise::STEAL_MAX)
    }

    /// The worst verdict: FAIL if any contract fails, PASS if all pass.
    pub fn status(&self) -> Status {
        self.verdicts()
            .iter()
            .map(|v| v.status)
            .max()
            .unwrap_or(Status::Inconclusive)
    }

    /// Whether anything regressed against the base: a stored-history
    /// comparison, or the base and head builds measured side by side.
    pub fn regressed(&self) -> bool {
        !self.regressions().is_empty() || !self.build_regressions().is_empty()
    }

    /// The benchmarks and metrics of the side-by-side comparison that
    /// regressed.
    pub fn build_regressions(&self) -> Vec<&BenchmarkChange> {
        self.judgement
            .build_comparison
            .iter()
            .flat_map(|c| &c.changes)
            .filter(|c| c.verdict == BuildVerdict::Regression)
            .collect()
    }

    pub fn regressions(&self) -> Vec<&Comparison> {
        self.judgement
            .comparisons
            .iter()
            .filter(|c| c.status == Change::Regression)
            .collect()
    }

    /// Failing checklist items first, then the rest in the spec's order.
    pub fn checklist_failing_first(&self) -> Vec<&ProbeResult> {
        let mut rows: Vec<&ProbeResult> = self.judgement.checklist.iter().collect();
        rows.sort_by_key(|c| {
            (
                c.status != ProbeStatus::Fail,
                c.status != ProbeStatus::Warn,
                c.check,
            )
        });
        rows
    }
}

pub fn status_icon(status: Status) -> &'static str {
    match status {
        Status::Pass => "✅",
        Status::Fail => "❌",
        Status::Inconclusive => "⚠️",
    }
}

fn check_icon(status: ProbeStatus) -> &'static str {
    match status {
        ProbeStatus::Pass => "✅",
        ProbeStatus::Warn => "⚠️",
        ProbeStatus::Fail => "❌",
        ProbeStatus::Skipped => "➖",
    }
}

/// A bound as a reader wants it: `≤ +5.00%`, `≥ 0.90×`, `≤ 1.00 ms`.
pub fn bound_text(metric: Metric, bound: Bound) -> String {
    match bound {
        Bound::AtMost(v) => format!("≤ {}", metric.judged_text(v)),
        Bound::AtLeast(v) => format!("≥ {}", metric.judged_text(v)),
    }
}

fn interval_text(metric: Metric, case: &CaseVerdict) -> String {
    let text = |v: Option<f64>| v.map_or("-".into(), |v| metric.judged_text(v));
    if case.low == case.high {
        text(case.estimate)
    } else {
        format!(
            "{} [{}, {}]",
            text(case.estimate),
            text(case.low),
            text(case.high)
        )
    }
}

/// What a contract judges, in a few words: "wall-clock overhead of async
/// over sync".
fn judged_text(verdict: &ContractVerdict) -> String {
    let name = verdict.metric.judged_name();
    match (verdict.metric.shape(), &verdict.other) {
        (Shape::Compare, Some(other)) => format!("{name} of {} over {other}", verdict.judged),
        _ => format!("{name} of {}", verdict.judged),
    }
}

/// One contract's headline in markdown: its verdict and what it means.
pub fn verdict_line(verdict: &ContractVerdict) -> String {
    headline(verdict, &escape::text, "**")
}

/// The same headline as plain text, for a terminal.
pub fn verdict_text(verdict: &ContractVerdict) -> String {
    headline(verdict, &str::to_owned, "")
}

fn headline(verdict: &ContractVerdict, text: &dyn Fn(&str) -> String, bold: &str) -> String {
    let cases = verdict.cases.len();
    let count = |status| verdict.cases.iter().filter(|c| c.status == status).count();
    let bound = bound_text(verdict.metric, verdict.bound);
    let meaning = match verdict.status {
        Status::Pass => format!(
            "all {cases} cases are proven {bound} ({:.0}% confidence).",
            verdict.confidence * 100.0
        ),
        Status::Fail => {
            let failed = verdict
                .cases
                .iter()
                .filter(|c| c.status == Status::Fail)
                .map(|c| format!("{} at {}", text(&c.case), interval_text(verdict.metric, c)))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "{} of {cases} cases are proven outside {bound} ({:.0}% confidence): {failed}.",
                count(Status::Fail),
                verdict.confidence * 100.0
            )
        }
        Status::Inconclusive => {
            let open: Vec<String> = verdict
                .cases
                .iter()
                .filter(|c| c.status == Status::Inconclusive)
                .map(|c| match &c.note {
                    Some(note) if c.estimate.is_none() => {
                        format!("{} ({})", text(&c.case), text(note))
                    }
                    _ => format!("{} at {}", text(&c.case), interval_text(verdict.metric, c)),
                })
                .collect();
            format!(
                "{} of {cases} cases are proven {bound}; undecided: {}.",
                count(Status::Pass),
                open.join("; ")
            )
        }
    };
    format!(
        "{} {bold}{} {}{bold} ({}): {meaning}",
        status_icon(verdict.status),
        text(&verdict.contract),
        verdict.status.label(),
        text(&judged_text(verdict))
    )
}

/// `xychart-beta` of an overhead metric per case with the limit as a line.
pub fn mermaid_overhead(verdict: &ContractVerdict) -> String {
    let names: Vec<String> = verdict
        .cases
        .iter()
        .map(|c| format!("\"{}\"", escape::mermaid_label(&c.case)))
        .collect();
    let values: Vec<String> = verdict
        .cases
        .iter()
        .map(|c| format!("{:.2}", c.estimate.unwrap_or(0.0) * 100.0))
        .collect();
    let limit = verdict.bound.value() * 100.0;
    let highs = verdict
        .cases
        .iter()
        .filter_map(|c| c.high)
        .map(|h| h * 100.0)
        .fold(limit, f64::max);
    let lows = verdict
        .cases
        .iter()
        .filter_map(|c| c.low)
        .map(|l| l * 100.0)
        .fold(0.0, f64::min);
    format!(
        "```mermaid\nxychart-beta\n    title \"{} (%), limit {limit:.0}%\"\n    x-axis [{}]\n    y-axis \"overhead %\" {:.0} --> {:.0}\n    bar [{}]\n    line [{}]\n```\n",
        escape::mermaid_label(&judged_text(verdict)),
        names.join(", "),
        lows.floor() - 1.0,
        highs.ceil() + 1.0,
        values.join(", "),
        vec![format!("{limit:.2}"); verdict.cases.len()].join(", ")
    )
}

/// How the verdict's looks kept its error rates, when it may take several.
fn looks_text(verdict: &ContractVerdict) -> String {
    match verdict.looks {
        Some(looks) if looks.max > 1 => format!(
            " Group-sequential: {} of at most {} looks (a look re-measures what is undecided), each interval at {:.2}%, so the {:.0}% holds whichever look decides.",
            looks.taken,
            looks.max,
            crate::judge::per_look_confidence(verdict.confidence, looks.max) * 100.0,
            verdict.confidence * 100.0
        ),
        Some(_) => String::new(),
        None => " (Judged before looks were recorded.)".into(),
    }
}

/// One contract's section: how it is measured, and a row per case.
fn contract_markdown(verdict: &ContractVerdict) -> String {
    let metric = verdict.metric;
    let samples = verdict.cases.iter().map(|c| c.samples).max().unwrap_or(0);
    let mut md = format!(
        "### {} · {}\n\n{} PASS needs the whole {:.0}% interval {}.{}\n\n",
        escape::text(&verdict.contract),
        escape::text(&verdict.title),
        metric.method_text(&verdict.judged, verdict.other.as_deref(), samples),
        verdict.confidence * 100.0,
        bound_text(metric, verdict.bound),
        looks_text(verdict)
    );
    let other = verdict.other.as_deref().unwrap_or("-");
    let extras = metric == Metric::WallClock;
    md.push_str(&format!(
        "| case | {} | {} | {} | bound | verdict |{}\n|---|---:|---:|---|---|---|{}\n",
        escape::text(other),
        escape::text(&verdict.judged),
        metric.judged_name(),
        if extras {
            " spec's method (10 iterations, mean) | instructions |"
        } else {
            " note |"
        },
        if extras { "---:|---|" } else { "---|" },
    ));
    for case in &verdict.cases {
        let side = |v: Option<f64>| v.map_or("-".into(), |v| metric.sample_text(v));
        let extra = if extras {
            let instructions = match (
                case.instructions_baseline,
                case.instructions_candidate,
                case.instruction_overhead,
            ) {
                (Some(b), Some(c), Some(o)) => format!(
                    "{} vs {} ({})",
                    count_text(c),
                    count_text(b),
                    percent(Some(o))
                ),
                _ => "not measured".into(),
            };
            format!(" {} | {instructions} |", percent(case.literal_overhead))
        } else {
            format!(" {} |", escape::text(case.note.as_deref().unwrap_or("")))
        };
        md.push_str(&format!(
            "| {} ({} B) | {} | {} | {} | {} | {} {} |{extra}\n",
            escape::text(&case.case),
            case.payload_bytes,
            side(case.baseline),
            side(case.candidate),
            interval_text(metric, case),
            bound_text(metric, case.bound),
            status_icon(case.status),
            case.status.label()
        ));
    }
    md.push('\n');
    if extras {
        md.push_str("The spec's method is the spec's own figure, shown as it asks and not judged: (async mean − sync mean) / sync mean over 10 calls each, the first one cold (it may start the worker). One small sample: on the small payload, whose calls take microseconds, one slow call moves it by tens of percent either way.\n\n");
    }
    if matches!(
        metric,
        Metric::WallClock | Metric::CpuTime | Metric::Instructions
    ) {
        md.push_str(&mermaid_overhead(verdict));
        md.push('\n');
    }
    md
}

/// The PR comment body (also `summary.md`).
pub fn summary_markdown(data: &ReportData) -> String {
    let run = &data.run;
    let mut md = format!("## perfwarden · run #{}\n\n", run.id);
    if data.verdicts().is_empty() {
        md.push_str("**Not judged**: this run has no verdict.\n\n");
    }
    for verdict in data.verdicts() {
        md.push_str(&format!("{}\n\n", verdict_line(verdict)));
    }
    // The headline never hides what the checklist found below it.
    let flagged: Vec<String> = data
        .checklist_failing_first()
        .into_iter()
        .filter(|c| matches!(c.status, ProbeStatus::Fail | ProbeStatus::Warn))
        .map(|c| {
            format!(
                "{} {} {}",
                check_icon(c.status),
                c.status.label(),
                c.check.title()
            )
        })
        .collect();
    if !flagged.is_empty() {
        md.push_str(&format!(
            "**The checklist below flags:** {}.\n\n",
            escape::text(&flagged.join("; "))
        ));
    }
    let regressions = data.regressions().len() + data.build_regressions().len();
    if regressions > 0 {
        md.push_str(&format!(
            "**{regressions} regression(s) against the base.**\n\n"
        ));
    }
    if data.status() == Status::Inconclusive {
        md.push_str("**Undecided** is not a pass and not a failure: this machine could not tell, within the contracts' confidence and looks, on which side of a bound the figures lie. Run the report again, or on a quieter or dedicated runner; perfwarden does not keep re-measuring until something passes.\n\n");
    }
    for warning in &data.warnings {
        md.push_str(&format!("> [!WARNING]\n> {}\n\n", escape::text(warning)));
    }
    md.push_str(&format!(
        "Run #{} of {}{}{} · {} · {} mode\n\n",
        run.id,
        escape::code(short_commit(&run.commit)),
        if run.dirty {
            " (uncommitted changes)"
        } else {
            ""
        },
        run.branch
            .as_deref()
            .map(|b| format!(" on {}", escape::code(b)))
            .unwrap_or_default(),
        format_timestamp(run.started_at_ms),
        if run.quick { "quick" } else { "full" }
    ));
    if let Some(host) = &data.noise.host {
        md.push_str(&format!(
            "Host while the contracts were measured: {host}.\n\n"
        ));
    }
    if let Some(sampling) = &data.noise.sampling {
        md.push_str(&format!(
            "**Noise score {:.1}%** (the larger of steal and the slowest CPU's slowdown in the speed probes between pairs): {sampling}.\n\n",
            sampling.score * 100.0
        ));
    }
    if let Some(reason) = data.noise.too_noisy_at(data.noise_threshold()) {
        md.push_str(&format!(
            "> [!WARNING]\n> Too noisy to decide: {reason}. A timing case that would fail is reported as INCONCLUSIVE; rerun on a quieter machine.\n\n"
        ));
    }
    let checklist = data.checklist_failing_first();
    let failing_checks = checklist
        .iter()
        .any(|c| matches!(c.status, ProbeStatus::Fail | ProbeStatus::Warn));
    let verdict_failed = data.status() != Status::Pass;
    let checklist_md = checklist_markdown(&checklist);
    // When something is wrong, the likely cause comes first.
    if verdict_failed || failing_checks {
        md.push_str(&checklist_md);
    }
    for verdict in data.verdicts() {
        md.push_str(&contract_markdown(verdict));
    }
    md.push_str(&where_time_went_markdown(&data.where_time_went));
    md.push_str(&decomposition_markdown(&data.decomposition));
    if !(verdict_failed || failing_checks) {
        md.push_str(&checklist_md);
    }
    md.push_str(&comparison_markdown(data));
    md.push_str("### Machine\n\n");
    md.push_str(&format!(
        "{} · {} cores · {} · {} · {}\n\n",
        escape::text(&run.machine.cpu_model),
        run.machine.cores,
        escape::text(&run.machine.os),
        escape::text(&run.machine.rustc),
        escape::text(
            run.machine
                .valgrind
                .as_deref()
                .unwrap_or("valgrind not installed")
        )
    ));
    for note in &run.notes {
        md.push_str(&format!("> ⚠️ {}\n\n", escape::text(note)));
    }
    let mut links = Vec::new();
    if let Some(url) = data.artifact_url.as_deref().and_then(escape::link_url) {
        links.push(format!(
            "[charts and raw report (workflow artifact)]({url})"
        ));
    }
    if let Some(url) = data.dashboard_url.as_deref().and_then(escape::link_url) {
        links.push(format!("[trend dashboard]({url})"));
    }
    if links.is_empty() {
        links.push(
            "charts: `charts/*.svg` beside this file; dashboard: `dashboard/index.html`".into(),
        );
    }
    md.push_str(&links.join(" · "));
    md.push('\n');
    md
}

/// One diff as a markdown table, the top functions first and the rest in one row.
pub fn profile_diff_markdown(diff: &ProfileDiff) -> String {
    let share = |s: Option<f64>| s.map_or("-".into(), |s| format!("{:.1}%", s * 100.0));
    let mut md = format!(
        "{} → {} instructions ({}, {})\n\n| function (self instructions) | before | after | change | share of the change |\n|---|---:|---:|---:|---:|\n",
        grouped_count(diff.total_before as i64, false),
        grouped_count(diff.total_after as i64, false),
        grouped_count(diff.change, true),
        percent(diff.relative())
    );
    for f in &diff.functions {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            escape::text(&f.function),
            grouped_count(f.before as i64, false),
            grouped_count(f.after as i64, false),
            grouped_count(f.change, true),
            share(f.share)
        ));
    }
    if diff.rest != 0 {
        md.push_str(&format!(
            "| every other function | | | {} | {} |\n",
            grouped_count(diff.rest, true),
            share(diff.rest_share())
        ));
    }
    md.push('\n');
    md
}

/// A diff in a few words: the change and the function that changed most,
/// with its share.
fn most_changed_text(diff: &ProfileDiff) -> String {
    match diff.functions.first() {
        Some(top) => format!(
            "{} instructions, most in {} ({}{})",
            grouped_count(diff.change, true),
            top.function,
            grouped_count(top.change, true),
            top.share
                .map(|s| format!(", {:.1}% of the change", s * 100.0))
                .unwrap_or_default()
        ),
        None => "no function's count changed".to_owned(),
    }
}

/// One section in a terminal line: the change, the function that changed
/// most with its share, and the command that prints the whole diff.
pub fn where_time_went_text(section: &WhereTimeWent) -> String {
    let command = profile_diff::command(&section.request.before, &section.request.after);
    let found = match &section.diff {
        None => "no stored profile on one side".to_owned(),
        Some(diff) => most_changed_text(diff),
    };
    format!(
        "where the time went ({}): {found}; `{command}`",
        section.request.reason
    )
}

/// A head-against-base diff of two builds in one terminal line, as
/// [`where_time_went_text`].
pub fn build_diff_text(build: &BuildDiff) -> String {
    format!(
        "where the time went ({}): {}; `{}`",
        build.reason,
        most_changed_text(&build.diff),
        build.command()
    )
}

/// The head-versus-base section's diffs of the two builds' profiles, each
/// with the command that measures it again.
pub fn build_diffs_markdown(diffs: &[BuildDiff]) -> String {
    if diffs.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "#### Where the time went, head against base

Callgrind's instructions per function of one call in each build (the runs that counted the instructions above), in the function's own code: the functions whose count changed most, each with its share of the total change (a share over 100% is offset by functions that got cheaper).

",
    );
    for build in diffs {
        md.push_str(&format!(
            "**{}**: {} of the base {} → of the head {}

",
            escape::text(&build.reason),
            escape::code(&build.benchmark),
            escape::code(short_commit(&build.base_commit)),
            escape::code(short_commit(&build.head_commit))
        ));
        md.push_str(&profile_diff_markdown(&build.diff));
        md.push_str(&format!(
            "Reproduce: {} (builds both commits, cached by commit, and runs both under callgrind).\n\n",
            escape::code(&build.command())
        ));
    }
    md
}

/// The profiles diffed for each FAIL and regression, with the command that
/// prints the same diff.
fn where_time_went_markdown(sections: &[WhereTimeWent]) -> String {
    if sections.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "### Where the time went\n\nCallgrind's instructions per function, in the function's own code: the functions whose count changed most, each with its share of the total change (a share over 100% is offset by functions that got cheaper). Stored profiles keep each benchmark's top functions; the rest is one row.\n\n",
    );
    for section in sections {
        let request = &section.request;
        md.push_str(&format!(
            "**{}**: {} of run #{} → {} of run #{}\n\n",
            escape::text(&request.reason),
            escape::code(&request.before.benchmark),
            request.before.run_id,
            escape::code(&request.after.benchmark),
            request.after.run_id
        ));
        match &section.diff {
            Some(diff) => md.push_str(&profile_diff_markdown(diff)),
            None => md.push_str("No stored callgrind profile on one side (a run stored before profiles were kept, or measured without valgrind).\n\n"),
        }
        md.push_str(&format!(
            "Reproduce: {} (with this history database; `--database-url` names another).\n\n",
            escape::code(&profile_diff::command(&request.before, &request.after))
        ));
    }
    md
}

/// The decomposition of the async call per payload.
fn decomposition_markdown(rows: &[(String, Decomposition)]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "### Where the async call's time goes\n\nMedians of traced calls of the real wrapper, each after a sync call of the same request on the caller: dispatch (the call until the job starts, any queue wait included), the job's execution on the worker against the same work on the caller, and return (the job's end until the caller has the answer). Tracing costs a little itself; the verdict stays on the untraced end-to-end ratio.\n\n| payload | calls (inline) | dispatch | execution on the worker | on the caller | return | overhead: hand-off + execution |\n|---|---:|---:|---:|---:|---:|---|\n",
    );
    for (payload, d) in rows {
        let (hand_off, execution) = d.split();
        md.push_str(&format!(
            "| {} | {} ({}) | {} | {} | {} | {} | {} + {} |\n",
            escape::text(payload),
            d.calls,
            d.inline,
            duration_text(d.dispatch_ns),
            duration_text(d.execution_ns),
            duration_text(d.caller_execution_ns),
            duration_text(d.return_ns),
            percent(Some(hand_off)),
            percent(Some(execution))
        ));
    }
    md.push('\n');
    md
}

fn checklist_markdown(checklist: &[&ProbeResult]) -> String {
    if checklist.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "### The spec's regression checklist\n\n| item | status | evidence |\n|---|---|---|\n",
    );
    for check in checklist {
        md.push_str(&format!(
            "| {} | {} {} | {} |\n",
            escape::text(check.check.title()),
            check_icon(check.status),
            check.status.label(),
            escape::text(&check.evidence)
        ));
    }
    md.push('\n');
    md
}

fn comparison_markdown(data: &ReportData) -> String {
    if let Some(built) = &data.judgement.build_comparison {
        return super::compare::comparison_markdown(built);
    }
    let Some(base) = &data.base_run else {
        return "### Head versus base\n\nNo stored run of the base to compare with yet.\n\n".into();
    };
    let mut md = format!(
        "### Head versus base (run #{}, {})\n\n",
        base.id,
        escape::code(short_commit(&base.commit))
    );
    if data.judgement.comparisons.is_empty() {
        md.push_str("Nothing comparable (different machine and no instruction counts).\n\n");
        return md;
    }
    if base.machine_id != data.run.machine_id {
        md.push_str("Wall clock is not compared: the base ran on another machine.\n\n");
    }
    md.push_str("| benchmark | figure | base | head | change | threshold | |\n|---|---|---:|---:|---:|---:|---|\n");
    let mut rows: Vec<&Comparison> = data.judgement.comparisons.iter().collect();
    rows.sort_by_key(|c| {
        (
            c.status != Change::Regression,
            c.status != Change::Improvement,
        )
    });
    for c in rows {
        let (head, base) = if c.tool == Tool::Callgrind {
            (count_text(c.head), count_text(c.base))
        } else {
            (duration_text(c.head), duration_text(c.base))
        };
        let mark = match c.status {
            Change::Regression => "🔺 regression",
            Change::Improvement => "🔻 improvement",
            Change::Unchanged => "",
        };
        md.push_str(&format!(
            "| {} | {} | {base} | {head} | {} | ±{:.1}%{} | {mark} |\n",
            escape::text(&c.benchmark),
            if c.tool == Tool::Callgrind {
                "instructions"
            } else {
                "wall clock"
            },
            percent(Some(c.change)),
            c.threshold * 100.0,
            if c.learned { " (learned)" } else { "" }
        ));
    }
    md.push('\n');
    md
}

/// `verdict.json`: every contract with its cases; judged figures in the
/// metric's judged unit (overheads as fractions), missing figures as null.
pub fn verdict_json(data: &ReportData) -> serde_json::Value {
    let contracts: Vec<serde_json::Value> = data
        .verdicts()
        .iter()
        .map(|v| {
            let cases: Vec<serde_json::Value> = v
                .cases
                .iter()
                .map(|c| {
                    json!({
                        "case": c.case,
                        "payload": c.payload,
                        "payload_bytes": c.payload_bytes,
                        "unit": v.metric.sample_unit(),
                        "baseline": c.baseline,
                        "candidate": c.candidate,
                        "overhead": c.estimate,
                        "ci_low": c.low,
                        "ci_high": c.high,
                        "limit": c.bound.value(),
                        "bound": c.bound.kind(),
                        "verdict": c.status,
                        "samples": c.samples,
                        "note": c.note,
                        "literal_overhead": c.literal_overhead,
                        "instructions_baseline": c.instructions_baseline,
                        "instructions_candidate": c.instructions_candidate,
                    })
                })
                .collect();
            json!({
                "contract": v.contract,
                "title": v.title,
                "metric": v.metric,
                "judged": v.judged,
                "other": v.other,
                "limit": v.bound.value(),
                "bound": v.bound.kind(),
                "confidence": v.confidence,
                "verdict": v.status,
                "cases": cases,
            })
        })
        .collect();
    let checklist: Vec<serde_json::Value> = data
        .judgement
        .checklist
        .iter()
        .map(|c| {
            json!({
                "check": c.check.id(),
                "status": c.status,
                "evidence": c.evidence,
            })
        })
        .collect();
    json!({
        "run_id": data.run.id,
        "commit": data.run.commit,
        "verdict": (!data.verdicts().is_empty()).then(|| data.status()),
        "noise_score": data.noise.score(),
        "contracts": contracts,
        "checklist": checklist,
        "where_time_went": data.where_time_went,
        "build_comparison": data.judgement.build_comparison,
    })
}

/// The charts of one run, by file name: per contract, its judged figures
/// against the bound, and for paired time its two sides and every pair.
pub fn run_charts(data: &ReportData) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for verdict in data.verdicts() {
        let stem = super::file_stem(&verdict.contract);
        out.push((
            format!("{stem}-judged.svg"),
            charts::judged_vs_bound(verdict),
        ));
        if matches!(verdict.metric, Metric::WallClock | Metric::CpuTime) {
            out.push((format!("{stem}-sides.svg"), charts::sides(verdict)));
            if let Some((_, distributions)) = data
                .distributions
                .iter()
                .find(|(c, _)| *c == verdict.contract)
            {
                out.push((
                    format!("{stem}-distributions.svg"),
                    charts::sample_distributions(distributions, verdict.bound.value()),
                ));
            }
        }
    }
    out
}

/// A self-contained HTML page of one run: the summary's tables and the charts inline.
pub fn run_page(
    data: &ReportData,
    charts: &[(String, String)],
    trend_charts: &[(String, String)],
) -> String {
    let mut body = String::new();
    body.push_str(&format!("<h1>perfwarden · run #{}</h1>\n", data.run.id));
    body.push_str(&format!(
        "<pre class=\"summary\">{}</pre>\n",
        charts::escape(&summary_markdown(data))
    ));
    for (name, svg) in charts.iter().chain(trend_charts) {
        body.push_str(&format!(
            "<figure data-chart=\"{}\">{svg}</figure>\n",
            charts::escape(name)
        ));
    }
    super::html_page(&format!("perfwarden run #{}", data.run.id), &body)
}
