//! The report of one run: the PR comment body (markdown, with a mermaid
//! chart GitHub draws itself), `verdict.json`, and an HTML page with the SVG
//! charts.

use serde_json::json;

use super::charts;
use super::escape;
use super::{format_timestamp, percent, short_commit};
use crate::store::{CaseRow, CheckRow, ComparisonRow, Judgement, RunInfo, VerdictRow};

/// Everything a report shows, as plain data.
#[derive(Clone, Debug)]
pub struct ReportData {
    pub run: RunInfo,
    pub judgement: Judgement,
    pub contract: String,
    pub base_run: Option<RunInfo>,
    /// Per case, every pair's overhead (fraction).
    pub distributions: Vec<(String, Vec<f64>)>,
    pub artifact_url: Option<String>,
    pub dashboard_url: Option<String>,
    /// Shown first, each as a warning.
    pub warnings: Vec<String>,
}

impl ReportData {
    pub fn verdict(&self) -> Option<&VerdictRow> {
        self.judgement
            .verdicts
            .iter()
            .find(|v| v.contract == self.contract)
    }

    pub fn regressions(&self) -> Vec<&ComparisonRow> {
        self.judgement
            .comparisons
            .iter()
            .filter(|c| c.status == "regression")
            .collect()
    }

    /// Failing checklist items first, then the rest in the spec's order.
    pub fn checklist_failing_first(&self) -> Vec<&CheckRow> {
        let mut rows: Vec<&CheckRow> = self.judgement.checklist.iter().collect();
        let spec_order =
            |c: &CheckRow| crate::diagnose::probes::Check::parse(&c.check_id).map(|c| c as usize);
        rows.sort_by_key(|c| (c.status != "FAIL", spec_order(c)));
        rows
    }
}

fn time_text(ns: Option<f64>) -> String {
    match ns {
        None => "-".into(),
        Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        Some(ns) if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        Some(ns) => format!("{ns:.0} ns"),
    }
}

fn count_text(value: f64) -> String {
    if value.abs() >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value.abs() >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

fn status_icon(status: &str) -> &'static str {
    match status {
        "PASS" => "✅",
        "FAIL" => "❌",
        "INCONCLUSIVE" => "⚠️",
        "SKIPPED" => "➖",
        _ => "",
    }
}

fn interval_text(case: &CaseRow) -> String {
    format!(
        "{} [{}, {}]",
        percent(case.overhead),
        percent(case.ci_low),
        percent(case.ci_high)
    )
}

/// The headline: verdict and what it means.
pub fn verdict_line(data: &ReportData) -> String {
    let contract = escape::text(&data.contract);
    let Some(verdict) = data.verdict() else {
        return format!("**{contract}: not judged** — this run has no verdict.");
    };
    let cases = verdict.cases.len();
    let passed = verdict.cases.iter().filter(|c| c.status == "PASS").count();
    let meaning = match verdict.status.as_str() {
        "PASS" => format!(
            "the async wrapper costs under {:.0}% over the sync function on all {cases} payloads ({:.0}% confidence).",
            verdict.limit * 100.0,
            verdict.confidence * 100.0
        ),
        "FAIL" => format!(
            "the async wrapper costs more than {:.0}% on {} of {cases} payloads ({:.0}% confidence).",
            verdict.limit * 100.0,
            verdict.cases.iter().filter(|c| c.status == "FAIL").count(),
            verdict.confidence * 100.0
        ),
        _ => format!(
            "{passed} of {cases} payloads are proven under {:.0}%; the others' intervals straddle the limit even after re-measuring.",
            verdict.limit * 100.0
        ),
    };
    let regressions = data.regressions().len();
    let regression_text = if regressions > 0 {
        format!(" **{regressions} regression(s) against the base.**")
    } else {
        String::new()
    };
    format!(
        "{} **{contract} {}**: {meaning}{regression_text}",
        status_icon(&verdict.status),
        escape::text(&verdict.status)
    )
}

/// `xychart-beta` of overhead per case with the limit as a line.
pub fn mermaid_overhead(verdict: &VerdictRow) -> String {
    let names: Vec<String> = verdict
        .cases
        .iter()
        .map(|c| format!("\"{}\"", escape::mermaid_label(&c.case_name)))
        .collect();
    let values: Vec<String> = verdict
        .cases
        .iter()
        .map(|c| format!("{:.2}", c.overhead.unwrap_or(0.0) * 100.0))
        .collect();
    let limit = verdict.limit * 100.0;
    let highs = verdict
        .cases
        .iter()
        .filter_map(|c| c.ci_high)
        .map(|h| h * 100.0)
        .fold(limit, f64::max);
    let lows = verdict
        .cases
        .iter()
        .filter_map(|c| c.ci_low)
        .map(|l| l * 100.0)
        .fold(0.0, f64::min);
    format!(
        "```mermaid\nxychart-beta\n    title \"Async overhead over sync (%), limit {limit:.0}%\"\n    x-axis [{}]\n    y-axis \"overhead %\" {:.0} --> {:.0}\n    bar [{}]\n    line [{}]\n```\n",
        names.join(", "),
        lows.floor() - 1.0,
        highs.ceil() + 1.0,
        values.join(", "),
        vec![format!("{limit:.2}"); verdict.cases.len()].join(", ")
    )
}

/// The PR comment body (also `summary.md`).
pub fn summary_markdown(data: &ReportData) -> String {
    let mut md = format!(
        "## perfwarden · {}\n\n{}\n\n",
        escape::text(&data.contract),
        verdict_line(data)
    );
    for warning in &data.warnings {
        md.push_str(&format!("> [!WARNING]\n> {}\n\n", escape::text(warning)));
    }
    let run = &data.run;
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
    let checklist = data.checklist_failing_first();
    let failing_checks = checklist.iter().any(|c| c.status == "FAIL");
    let verdict_failed = data.verdict().is_some_and(|v| v.status != "PASS");
    let checklist_md = checklist_markdown(&checklist);
    // When something is wrong, the likely cause comes first.
    if verdict_failed || failing_checks {
        md.push_str(&checklist_md);
    }
    if let Some(verdict) = data.verdict() {
        md.push_str(&format!(
            "### Overhead per payload\n\nOverhead = async / sync − 1, from {} sync and async batches alternating; the verdict needs the whole {:.0}% interval under {:.0}%.\n\n",
            verdict.cases.first().map_or(0, |c| c.pairs),
            verdict.confidence * 100.0,
            verdict.limit * 100.0
        ));
        md.push_str("| payload | sync | async | overhead [95% CI] | spec's method (10 iterations, mean) | instructions (async vs sync) | verdict |\n|---|---:|---:|---|---:|---|---|\n");
        for case in &verdict.cases {
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
            md.push_str(&format!(
                "| {} ({} B) | {} | {} | {} | {} | {} | {} {} |\n",
                escape::text(&case.case_name),
                case.payload_bytes,
                time_text(case.baseline_ns),
                time_text(case.candidate_ns),
                interval_text(case),
                percent(case.literal_overhead),
                instructions,
                status_icon(&case.status),
                escape::text(&case.status)
            ));
        }
        md.push('\n');
        md.push_str(&mermaid_overhead(verdict));
        md.push('\n');
    }
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

fn checklist_markdown(checklist: &[&CheckRow]) -> String {
    if checklist.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "### The spec's regression checklist\n\n| item | status | evidence |\n|---|---|---|\n",
    );
    for check in checklist {
        let title = crate::diagnose::probes::Check::parse(&check.check_id)
            .map_or(check.check_id.as_str(), |c| c.title());
        md.push_str(&format!(
            "| {} | {} {} | {} |\n",
            escape::text(title),
            status_icon(&check.status),
            escape::text(&check.status),
            escape::text(&check.evidence)
        ));
    }
    md.push('\n');
    md
}

fn comparison_markdown(data: &ReportData) -> String {
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
    let mut rows: Vec<&ComparisonRow> = data.judgement.comparisons.iter().collect();
    rows.sort_by_key(|c| (c.status != "regression", c.status != "improvement"));
    for c in rows {
        let (head, base) = if c.tool == "callgrind" {
            (count_text(c.head), count_text(c.base))
        } else {
            (time_text(Some(c.head)), time_text(Some(c.base)))
        };
        let mark = match c.status.as_str() {
            "regression" => "🔺 regression",
            "improvement" => "🔻 improvement",
            _ => "",
        };
        md.push_str(&format!(
            "| {} | {} | {base} | {head} | {} | ±{:.1}%{} | {mark} |\n",
            escape::text(&c.benchmark),
            if c.tool == "callgrind" {
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

/// `verdict.json`: overheads as fractions, missing figures as null.
pub fn verdict_json(data: &ReportData) -> serde_json::Value {
    let verdict = data.verdict();
    let cases: Vec<serde_json::Value> = verdict
        .map(|v| {
            v.cases
                .iter()
                .map(|c| {
                    json!({
                        "case": c.case_name,
                        "payload_bytes": c.payload_bytes,
                        "sync_ns": c.baseline_ns,
                        "async_ns": c.candidate_ns,
                        "overhead": c.overhead,
                        "ci_low": c.ci_low,
                        "ci_high": c.ci_high,
                        "limit": v.limit,
                        "verdict": c.status,
                        "literal_overhead": c.literal_overhead,
                        "instructions_sync": c.instructions_baseline,
                        "instructions_async": c.instructions_candidate,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let checklist: Vec<serde_json::Value> = data
        .judgement
        .checklist
        .iter()
        .map(|c| {
            json!({
                "check": c.check_id,
                "status": c.status,
                "evidence": c.evidence,
            })
        })
        .collect();
    json!({
        "contract": data.contract,
        "run_id": data.run.id,
        "commit": data.run.commit,
        "verdict": verdict.map(|v| v.status.clone()),
        "cases": cases,
        "checklist": checklist,
    })
}

/// The charts of one run, by file name.
pub fn run_charts(data: &ReportData) -> Vec<(String, String)> {
    let Some(verdict) = data.verdict() else {
        return Vec::new();
    };
    vec![
        (
            "sync_vs_async.svg".into(),
            charts::sync_vs_async(&verdict.cases),
        ),
        (
            "overhead.svg".into(),
            charts::overhead_vs_limit(&verdict.cases, verdict.limit),
        ),
        (
            "distributions.svg".into(),
            charts::sample_distributions(&data.distributions, verdict.limit),
        ),
    ]
}

/// A self-contained HTML page of one run: the summary's tables and the charts inline.
pub fn run_page(
    data: &ReportData,
    charts: &[(String, String)],
    trend_charts: &[(String, String)],
) -> String {
    let mut body = String::new();
    body.push_str(&format!(
        "<h1>perfwarden · {} · run #{}</h1>\n",
        charts::escape(&data.contract),
        data.run.id
    ));
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
