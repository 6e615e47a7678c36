//! The static trend dashboard: every benchmark over stored runs (wall clock
//! and instructions, the limit drawn, regressions marked), the verdict
//! history and a table of runs linking to their pages. One self-contained
//! HTML file: inline SVG, no scripts, nothing fetched.

use std::collections::BTreeSet;

use super::charts::{self, escape};
use super::{format_timestamp, html_page, short_commit};
use crate::measure::payload::Payload;
use crate::store::{Tool, TrendPoint};

/// The trend charts, by name (`trend-<payload>-<tool>`).
pub fn trend_charts(points: &[TrendPoint], limit: f64) -> Vec<(String, String)> {
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

/// The dashboard page. `run_pages` holds the runs that have a page in `runs/`.
pub fn dashboard(
    points: &[TrendPoint],
    contract: &str,
    limit: f64,
    run_pages: &BTreeSet<i64>,
) -> String {
    let mut body = format!(
        "<h1>perfwarden · {}</h1>\n<p>{} stored runs. Lines: sync and async per payload; dashed: the contract's limit (sync + {:.0}%); circles: regressions against the base.</p>\n",
        escape(contract),
        points.len(),
        limit * 100.0
    );
    body.push_str("<h2>Trends</h2>\n");
    for (name, svg) in trend_charts(points, limit) {
        body.push_str(&format!("<figure data-chart=\"{name}\">{svg}</figure>\n"));
    }
    body.push_str("<h2>Runs and verdicts</h2>\n<table id=\"runs\">\n<tr><th>run</th><th>started</th><th>commit</th><th>branch</th><th>mode</th><th>verdict</th><th>regressions</th></tr>\n");
    for point in points.iter().rev() {
        let run = &point.run;
        let id = if run_pages.contains(&run.id) {
            format!("<a href=\"runs/{0}.html\">#{0}</a>", run.id)
        } else {
            format!("#{}", run.id)
        };
        let verdict = point
            .verdicts
            .iter()
            .find(|(c, _)| c == contract)
            .map_or("-".to_string(), |(_, s)| s.clone());
        body.push_str(&format!(
            "<tr><td>{id}</td><td>{}</td><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>\n",
            format_timestamp(run.started_at_ms),
            escape(short_commit(&run.commit)),
            if run.dirty { "+" } else { "" },
            escape(run.branch.as_deref().unwrap_or("-")),
            if run.quick { "quick" } else { "full" },
            escape(&verdict),
            escape(&verdict),
            escape(&point.regressions.join(", "))
        ));
    }
    body.push_str("</table>\n");
    html_page(&format!("perfwarden · {contract} dashboard"), &body)
}
