//! The static trend dashboard: every benchmark over stored runs (wall clock
//! and instructions, the limit drawn, regressions marked), the verdict
//! history and a table of runs linking to their pages. One self-contained
//! HTML file: inline SVG, no scripts, nothing fetched.

use std::collections::BTreeSet;

use super::charts::{self, escape};
use super::{format_timestamp, html_page, short_commit};
use crate::measure::payload::Payload;
use crate::store::{Tool, TrendPoint, TrendVerdict};

/// The trend charts of the benchmark suites, by name
/// (`trend-<payload>-<tool>`); `limit` is the wall-clock contract's, if any.
pub fn trend_charts(points: &[TrendPoint], limit: Option<f64>) -> Vec<(String, String)> {
    let mut charts = Vec::new();
    for tool in [Tool::Criterion, Tool::Callgrind] {
        for payload in Payload::ALL {
            charts.push((
                format!("trend-{}-{}", payload.name(), tool.name()),
                charts::trend(points, payload.name(), tool, limit),
            ));
        }
    }
    charts
}

/// Every contract judged in `points`, newest verdicts' order first seen.
fn contracts(points: &[TrendPoint]) -> Vec<&TrendVerdict> {
    let mut seen: Vec<&TrendVerdict> = Vec::new();
    for point in points.iter().rev() {
        for verdict in &point.verdicts {
            if !seen.iter().any(|v| v.contract == verdict.contract) {
                seen.push(verdict);
            }
        }
    }
    seen
}

/// The dashboard page. `run_pages` holds the runs that have a page in `runs/`.
pub fn dashboard(points: &[TrendPoint], limit: Option<f64>, run_pages: &BTreeSet<i64>) -> String {
    let contracts = contracts(points);
    let mut body = format!(
        "<h1>perfwarden</h1>\n<p>{} stored runs, {} contracts. Suite trends: sync and async per payload, dashed: the wall-clock limit, circles: regressions against the base. Contract trends: each case's judged figure, dashed: the bound.</p>\n",
        points.len(),
        contracts.len()
    );
    body.push_str("<h2>Contracts</h2>\n");
    for verdict in &contracts {
        body.push_str(&format!(
            "<section data-contract=\"{0}\">\n<h3>{0} · {1} · latest <span class=\"{2}\">{2}</span></h3>\n<figure data-chart=\"contract-{3}\">{4}</figure>\n</section>\n",
            escape(&verdict.contract),
            escape(verdict.metric.name()),
            verdict.status.label(),
            escape(&super::file_stem(&verdict.contract)),
            charts::contract_trend(points, &verdict.contract)
        ));
    }
    body.push_str("<h2>Benchmark suites</h2>\n");
    for (name, svg) in trend_charts(points, limit) {
        body.push_str(&format!("<figure data-chart=\"{name}\">{svg}</figure>\n"));
    }
    body.push_str("<h2>Runs and verdicts</h2>\n<table id=\"runs\">\n<tr><th>run</th><th>started</th><th>commit</th><th>branch</th><th>mode</th>");
    for verdict in &contracts {
        body.push_str(&format!("<th>{}</th>", escape(&verdict.contract)));
    }
    body.push_str("<th>regressions</th></tr>\n");
    for point in points.iter().rev() {
        let run = &point.run;
        let id = if run_pages.contains(&run.id) {
            format!("<a href=\"runs/{0}.html\">#{0}</a>", run.id)
        } else {
            format!("#{}", run.id)
        };
        body.push_str(&format!(
            "<tr><td>{id}</td><td>{}</td><td><code>{}</code>{}</td><td>{}</td><td>{}</td>",
            format_timestamp(run.started_at_ms),
            escape(short_commit(&run.commit)),
            if run.dirty { "+" } else { "" },
            escape(run.branch.as_deref().unwrap_or("-")),
            if run.quick { "quick" } else { "full" },
        ));
        for contract in &contracts {
            let status = point
                .verdicts
                .iter()
                .find(|v| v.contract == contract.contract)
                .map_or("-", |v| v.status.label());
            body.push_str(&format!("<td class=\"{status}\">{status}</td>"));
        }
        body.push_str(&format!(
            "<td>{}</td></tr>\n",
            escape(&point.regressions.join(", "))
        ));
    }
    body.push_str("</table>\n");
    html_page("perfwarden dashboard", &body)
}
