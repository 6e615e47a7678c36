//! The static trend dashboard: every benchmark over stored runs (wall clock
//! and instructions, the limit drawn, regressions and change points marked),
//! the change points listed, the verdict history and a table of runs linking
//! to their pages. One self-contained
//! HTML file: inline SVG, no scripts, nothing fetched.

use std::collections::BTreeSet;

use super::charts::{self, RunLinks, escape};
use super::{format_timestamp, html_page, short_commit};
use crate::judge::change_points::SeriesChangePoint;
use crate::measure::batch_noise::RunNoise;
use crate::measure::noise::{HOST_BENCHMARK, STEAL_MAX};
use crate::measure::payload::Payload;
use crate::store::{Measurement, Tool, TrendPoint, TrendVerdict};

/// The trend charts of the benchmark suites, by name
/// (`trend-<payload>-<tool>`); `limit` is the wall-clock contract's, if any.
pub fn trend_charts(
    points: &[TrendPoint],
    limit: Option<f64>,
    change_points: &[SeriesChangePoint],
    links: &RunLinks,
) -> Vec<(String, String)> {
    let mut charts = Vec::new();
    for tool in [Tool::Criterion, Tool::Callgrind] {
        for payload in Payload::ALL {
            charts.push((
                format!("trend-{}-{}", payload.name(), tool.name()),
                charts::trend(points, payload.name(), tool, limit, change_points, links),
            ));
        }
    }
    charts
}

/// The host's noise while a run measured its contracts, as far as stored.
fn run_noise(point: &TrendPoint) -> RunNoise {
    let measurements: Vec<Measurement> = point
        .figures
        .iter()
        .filter(|(tool, benchmark, ..)| *tool == Tool::Paired && benchmark == HOST_BENCHMARK)
        .map(|(tool, benchmark, metric, value)| Measurement {
            tool: *tool,
            benchmark: benchmark.clone(),
            metric: metric.clone(),
            value: Some(*value),
            unit: String::new(),
        })
        .collect();
    RunNoise::from_measurements(&measurements)
}

/// `#<id>`, linked to the run's page when it has one.
fn run_ref(id: i64, links: &RunLinks) -> String {
    match links.href(id) {
        Some(href) => format!("<a href=\"{}\">#{id}</a>", escape(&href)),
        None => format!("#{id}"),
    }
}

/// How noisy the hosts were: the runs measured on a host too noisy to
/// decide at `limit` (the wall-clock contract's), with the reason.
fn noise_panel(points: &[TrendPoint], limit: f64, links: &RunLinks) -> String {
    let measured: Vec<(&TrendPoint, RunNoise)> = points
        .iter()
        .map(|p| (p, run_noise(p)))
        .filter(|(_, n)| n.host.is_some() || n.sampling.is_some())
        .collect();
    let scored: Vec<f64> = measured.iter().filter_map(|(_, n)| n.score()).collect();
    let noisy: Vec<String> = measured
        .iter()
        .filter_map(|(p, n)| {
            Some(format!(
                "<li>{} {}: {}</li>",
                run_ref(p.run.id, links),
                escape(short_commit(&p.run.commit)),
                escape(&n.too_noisy_at(limit)?)
            ))
        })
        .collect();
    format!(
        "<h2>Noise</h2>\n<section id=\"noise\"><p>{} of {} runs measured their host; {} of them on a host too noisy to decide (other processes ≥ 25% of the CPUs, steal ≥ 5%, or a CPU ≥ {:.0}% slower in the speed probes while sampling), where a timing contract's failing case is INCONCLUSIVE.{}</p>\n{}</section>\n",
        measured.len(),
        points.len(),
        noisy.len(),
        limit * 100.0,
        match scored.iter().copied().reduce(f64::max) {
            Some(worst) => format!(
                " Noise score (the larger of steal and the slowest CPU's slowdown) of {} runs: latest {:.1}%, worst {:.1}%.",
                scored.len(),
                scored.last().copied().unwrap_or(worst) * 100.0,
                worst * 100.0
            ),
            None => String::new(),
        },
        if noisy.is_empty() {
            String::new()
        } else {
            format!("<ul>{}</ul>", noisy.concat())
        }
    )
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

/// The change points table: every shift found in the branch's history,
/// newest first.
fn change_points_table(
    change_points: &[SeriesChangePoint],
    branch: &str,
    links: &RunLinks,
) -> String {
    let mut out = format!(
        "<h2>Change points</h2>\n<section id=\"change-points\"><p>{} shifts found in the history of {} (E-divisive means with a t-test, p &lt; {}; docs/methodology.md). The shift came with a commit after the one before it, up to the one after it.</p>\n",
        change_points.len(),
        escape(branch),
        crate::judge::change_points::PARAMETERS.max_p_value
    );
    if change_points.is_empty() {
        out.push_str("</section>\n");
        return out;
    }
    out.push_str("<table id=\"change-point-list\">\n<tr><th>series</th><th>machine</th><th>commits</th><th>before</th><th>after</th><th>change</th><th>p-value</th></tr>\n");
    for c in change_points.iter().rev() {
        let (series, change) = (&c.series, &c.change);
        out.push_str(&format!(
            "<tr class=\"change-point\"><td>{} {} {}</td><td>{}</td><td><code>{}</code> ({}) .. <code>{}</code> ({})</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1e}</td></tr>\n",
            escape(&series.source),
            escape(&series.benchmark),
            escape(&series.metric),
            escape(series.machine_id.as_deref().unwrap_or("all")),
            escape(short_commit(&change.before_commit)),
            run_ref(change.before_run_id, links),
            escape(short_commit(&change.after_commit)),
            run_ref(change.after_run_id, links),
            escape(&charts::series_value_text(series, change.mean_before)),
            escape(&charts::series_value_text(series, change.mean_after)),
            escape(&charts::change_text(c)),
            change.p_value
        ));
    }
    out.push_str("</table>\n</section>\n");
    out
}

/// The dashboard page. `run_pages` holds the runs that have a page in
/// `runs/`; `change_points` are those of `branch`'s history.
pub fn dashboard(
    points: &[TrendPoint],
    limit: Option<f64>,
    run_pages: &BTreeSet<i64>,
    change_points: &[SeriesChangePoint],
    branch: &str,
) -> String {
    let links = RunLinks {
        prefix: "runs/",
        pages: run_pages,
    };
    let contracts = contracts(points);
    let mut body = format!(
        "<h1>perfwarden</h1>\n<p>{} stored runs, {} contracts. Suite trends: sync and async per payload, dashed: the wall-clock limit, circles: regressions against the base, purple dashed lines: change points in {}'s history. Contract trends: each case's judged figure, dashed: the bound.</p>\n",
        points.len(),
        contracts.len(),
        escape(branch)
    );
    body.push_str("<h2>Contracts</h2>\n");
    for verdict in &contracts {
        body.push_str(&format!(
            "<section data-contract=\"{0}\">\n<h3>{0} · {1} · latest <span class=\"{2}\">{2}</span></h3>\n<figure data-chart=\"contract-{3}\">{4}</figure>\n</section>\n",
            escape(&verdict.contract),
            escape(verdict.metric.name()),
            verdict.status.label(),
            escape(&super::file_stem(&verdict.contract)),
            charts::contract_trend(points, &verdict.contract, change_points, &links)
        ));
    }
    body.push_str(&change_points_table(change_points, branch, &links));
    body.push_str(&noise_panel(points, limit.unwrap_or(STEAL_MAX), &links));
    body.push_str("<h2>Benchmark suites</h2>\n");
    for (name, svg) in trend_charts(points, limit, change_points, &links) {
        body.push_str(&format!("<figure data-chart=\"{name}\">{svg}</figure>\n"));
    }
    body.push_str("<h2>Runs and verdicts</h2>\n<table id=\"runs\">\n<tr><th>run</th><th>started</th><th>commit</th><th>branch</th><th>mode</th>");
    for verdict in &contracts {
        body.push_str(&format!("<th>{}</th>", escape(&verdict.contract)));
    }
    body.push_str("<th>host noise</th><th>regressions</th></tr>\n");
    for point in points.iter().rev() {
        let run = &point.run;
        let id = run_ref(run.id, &links);
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
        let noise = run_noise(point);
        let class = match noise.too_noisy_at(limit.unwrap_or(STEAL_MAX)) {
            Some(_) => "noisy",
            None if noise.host.is_some() || noise.sampling.is_some() => "quiet",
            None => "",
        };
        let mut cell: Vec<String> = noise
            .score()
            .map(|s| format!("score {:.1}%", s * 100.0))
            .into_iter()
            .collect();
        if let Some(host) = noise.host {
            cell.push(format!(
                "other {:.1}%, steal {:.1}%",
                host.foreign * 100.0,
                host.steal * 100.0
            ));
        }
        let noise = if cell.is_empty() {
            "-".to_owned()
        } else {
            cell.join(", ")
        };
        body.push_str(&format!(
            "<td class=\"{class}\">{noise}</td><td>{}</td></tr>\n",
            escape(&point.regressions.join(", "))
        ));
    }
    body.push_str("</table>\n");
    html_page("perfwarden dashboard", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::batch_noise::{BatchLog, SamplingNoise, SpeedProbe};
    use crate::measure::noise::HostNoise;
    use crate::store::{Machine, RunInfo};

    /// A run with its host's noise and, with `slow_cpu`, a speed probe
    /// that found CPU 1 that much slower while sampling.
    fn run(id: i64, foreign: f64, slow_cpu: Option<f64>) -> TrendPoint {
        let noise = HostNoise {
            seconds: 300.0,
            foreign,
            steal: 0.001,
            load_per_cpu: 1.0,
            involuntary_switches_per_second: 10.0,
        };
        TrendPoint {
            run: RunInfo {
                id,
                commit: format!("{id:040x}"),
                branch: Some("main".into()),
                base_commit: None,
                pr_number: None,
                dirty: false,
                quick: false,
                machine_id: "m".into(),
                machine: Machine {
                    cpu_model: "cpu".into(),
                    cores: 2,
                    os: "os".into(),
                    rustc: "rustc".into(),
                    valgrind: None,
                },
                started_at_ms: 0,
                finished_at_ms: 0,
                notes: Vec::new(),
            },
            figures: noise
                .figures()
                .into_iter()
                .chain(slow_cpu.map_or_else(Vec::new, |slowdown| {
                    let probe = |cpu, micros| SpeedProbe {
                        pair: 0,
                        cpu,
                        micros,
                    };
                    let log = BatchLog {
                        batches: Vec::new(),
                        probes: vec![probe(0, 20.0), probe(1, 20.0 * (1.0 + slowdown))],
                    };
                    SamplingNoise::summarize([&log], noise.steal)
                        .unwrap()
                        .figures()
                }))
                .map(|(metric, value, _)| {
                    (
                        Tool::Paired,
                        HOST_BENCHMARK.to_owned(),
                        metric.to_owned(),
                        value,
                    )
                })
                .collect(),
            verdicts: Vec::new(),
            regressions: Vec::new(),
        }
    }

    #[test]
    fn the_noise_panel_names_the_runs_measured_on_a_noisy_host() {
        let page = dashboard(
            &[
                run(1, 0.02, None),
                run(2, 0.6, None),
                run(3, 0.02, Some(0.03)),
                run(4, 0.02, Some(0.3)),
            ],
            Some(0.05),
            &BTreeSet::from([1, 2, 3, 4]),
            &[],
            "main",
        );
        assert!(
            page.contains("4 of 4 runs measured their host; 2 of them on a host too noisy"),
            "{page}"
        );
        assert!(
            page.contains("Noise score (the larger of steal and the slowest CPU's slowdown) of 2 runs: latest 30.0%, worst 30.0%."),
            "{page}"
        );
        assert!(
            page.contains("#4</a> 0000000000: CPU 1 ran 30% slower during sampling</li>"),
            "{page}"
        );
        assert!(page.contains("<td class=\"quiet\">score 3.0%, other 2.0%, steal 0.1%</td>"));
        assert!(page.contains("<td class=\"noisy\">score 30.0%, other 2.0%, steal 0.1%</td>"));
        assert!(
            page.contains("other processes used 60% of the measured CPUs"),
            "{page}"
        );
        assert!(page.contains("<td class=\"noisy\">other 60.0%, steal 0.1%</td>"));
        assert!(page.contains("<td class=\"quiet\">other 2.0%, steal 0.1%</td>"));
    }

    #[test]
    fn change_points_are_marked_on_their_trend_and_listed() {
        use crate::judge::change_points::{self, PARAMETERS};
        let points: Vec<TrendPoint> = (1..=16)
            .map(|id| {
                let mut point = run(id, 0.02, None);
                let instructions = if id <= 8 { 6_590_000.0 } else { 6_720_000.0 };
                point.figures.push((
                    Tool::Callgrind,
                    "medium/async".to_owned(),
                    "instructions".to_owned(),
                    instructions,
                ));
                point
            })
            .collect();
        let found = change_points::detect_all(&points, "main", &PARAMETERS);
        assert_eq!(found.len(), 1, "{found:?}");
        let pages = BTreeSet::from([8, 9]);
        let page = dashboard(&points, None, &pages, &found, "main");
        // On the medium instructions chart, and only there: the marker with
        // its title naming the commits either side.
        let chart = page
            .split("<figure data-chart=\"trend-medium-callgrind\">")
            .nth(1)
            .and_then(|rest| rest.split("</figure>").next())
            .expect("the chart is drawn");
        assert_eq!(
            chart.matches("<g class=\"change-point\">").count(),
            1,
            "{chart}"
        );
        assert!(
            chart.contains("<title>change point in callgrind medium/async: +1.97% (6.59 M → 6.72 M), p = 0.0e0; between 0000000000 (run #8) and 0000000000 (run #9)</title>"),
            "{chart}"
        );
        assert!(chart.contains("<polygon"), "{chart}");
        assert_eq!(page.matches("<g class=\"change-point\">").count(), 1);
        // The table: one row, the runs linked to their pages.
        assert!(
            page.contains("<section id=\"change-points\"><p>1 shifts found in the history of main"),
            "{page}"
        );
        assert!(page.contains("<tr class=\"change-point\"><td>callgrind medium/async instructions</td><td>all</td><td><code>0000000000</code> (<a href=\"runs/8.html\">#8</a>) .. <code>0000000000</code> (<a href=\"runs/9.html\">#9</a>)</td><td>6.59 M</td><td>6.72 M</td><td>+1.97%</td><td>0.0e0</td></tr>"), "{page}");
        // None found: the section says so and draws no marker.
        let quiet = dashboard(&points, None, &pages, &[], "main");
        assert!(quiet.contains("0 shifts found"), "{quiet}");
        assert!(!quiet.contains("class=\"change-point\""));
    }
}
