//! Charts as SVG strings (plotters): the two sides of a comparison, each
//! case's judged figure against its bound, sample distributions and trends.

use plotters::prelude::*;

use std::collections::BTreeSet;

use crate::judge::change_points::{SeriesChangePoint, SeriesKey};
use crate::judge::contract::Bound;
use crate::judge::verdict::{CaseVerdict, ContractVerdict};
use crate::metric::{ChartScale, Metric};
use crate::store::{Tool, TrendPoint};

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 360;
const SYNC_COLOR: RGBColor = RGBColor(31, 119, 180);
const ASYNC_COLOR: RGBColor = RGBColor(255, 127, 14);
const LIMIT_COLOR: RGBColor = RGBColor(214, 39, 40);
const CHANGE_COLOR: RGBColor = RGBColor(148, 103, 189);

/// Renders with `draw`, turning a drawing failure into a visible note.
fn svg(
    title: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> DrawResult<()>,
) -> String {
    let mut out = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
            .and_then(|_| draw(&root))
            .and_then(|_| {
                root.present()
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
            })
    };
    match result {
        Ok(()) => out,
        Err(e) => format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"40\"><text x=\"10\" y=\"25\">{title}: cannot draw ({})</text></svg>",
            escape(&e.to_string())
        ),
    }
}

/// `svg` with `overlay` (plain SVG elements) drawn last, on top.
fn with_overlay(svg: String, overlay: &str) -> String {
    match svg.rfind("</svg>") {
        Some(end) => format!("{}{overlay}{}", &svg[..end], &svg[end..]),
        None => svg,
    }
}

/// The run at `x` on a trend's axis: its commit and date, at whole runs only.
fn run_label(points: &[TrendPoint]) -> impl Fn(&f64) -> String + '_ {
    move |x: &f64| {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        points.get(i as usize).map_or(String::new(), |p| {
            format!(
                "{} {}",
                super::short_commit(&p.run.commit)
                    .chars()
                    .take(7)
                    .collect::<String>(),
                &super::format_timestamp(p.run.started_at_ms)[5..10]
            )
        })
    }
}

/// Where a trend's points link: the page of each run that has one, at
/// `prefix` + `<id>.html` from the file the chart is written in.
#[derive(Clone, Copy, Debug)]
pub struct RunLinks<'a> {
    pub prefix: &'a str,
    pub pages: &'a BTreeSet<i64>,
}

impl RunLinks<'_> {
    /// The link to run `id`'s page; `None` when it has none here.
    pub fn href(&self, id: i64) -> Option<String> {
        self.pages
            .contains(&id)
            .then(|| format!("{}{id}.html", self.prefix))
    }
}

/// A point a reader can hover (its `title`) and follow to its run's page.
struct Hotspot {
    at: (i32, i32),
    run_id: i64,
    title: String,
}

fn hotspots_svg(hotspots: &[Hotspot], links: &RunLinks) -> String {
    hotspots
        .iter()
        .map(|h| {
            let circle = format!(
                "<circle cx=\"{}\" cy=\"{}\" r=\"7\" fill=\"transparent\" stroke=\"none\"><title>{}</title></circle>",
                h.at.0,
                h.at.1,
                escape(&h.title)
            );
            match links.href(h.run_id) {
                Some(href) => format!("<a href=\"{}\">{circle}</a>", escape(&href)),
                None => circle,
            }
        })
        .collect()
}

/// A figure of `series` in the unit a reader wants.
pub fn series_value_text(series: &SeriesKey, value: f64) -> String {
    match series.source.as_str() {
        "criterion" => super::duration_text(value),
        "callgrind" => super::count_text(value),
        _ => Metric::parse(&series.metric)
            .map_or_else(|| format!("{value}"), |m| m.judged_text(value)),
    }
}

/// How much a change point moved its series: relative, or in points for a
/// contract's overhead (a relative change of a figure near zero says little).
pub fn change_text(c: &SeriesChangePoint) -> String {
    let overhead = c.series.source == "contract"
        && matches!(
            Metric::parse(&c.series.metric),
            Some(Metric::WallClock | Metric::CpuTime | Metric::Instructions)
        );
    if overhead {
        format!(
            "{:+.2} points",
            (c.change.mean_after - c.change.mean_before) * 100.0
        )
    } else {
        super::percent(Some(c.change.relative_change))
    }
}

/// A change point's hover text: the series, the shift and the commits
/// either side of it.
pub fn change_title(c: &SeriesChangePoint) -> String {
    let (series, change) = (&c.series, &c.change);
    format!(
        "change point in {} {}: {} ({} → {}), p = {:.1e}; between {} (run #{}) and {} (run #{})",
        series.source,
        series.benchmark,
        change_text(c),
        series_value_text(series, change.mean_before),
        series_value_text(series, change.mean_after),
        change.p_value,
        super::short_commit(&change.before_commit),
        change.before_run_id,
        super::short_commit(&change.after_commit),
        change.after_run_id
    )
}

/// Where a change point sits on a trend's axis: halfway between the runs
/// either side of it.
fn change_x(points: &[TrendPoint], c: &SeriesChangePoint) -> Option<f64> {
    let at = |id: i64| points.iter().position(|p| p.run.id == id);
    let (before, after) = (at(c.change.before_run_id)?, at(c.change.after_run_id)?);
    Some((before + after) as f64 / 2.0)
}

/// A change point drawn across a trend: a dashed line from `top` to
/// `bottom`, a triangle on top, and its title.
struct ChangeMarker {
    x: i32,
    top: i32,
    bottom: i32,
    title: String,
}

fn change_markers_svg(markers: &[ChangeMarker]) -> String {
    let color = format!(
        "rgb({},{},{})",
        CHANGE_COLOR.0, CHANGE_COLOR.1, CHANGE_COLOR.2
    );
    markers
        .iter()
        .map(|m| {
            format!(
                "<g class=\"change-point\"><title>{title}</title><line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{bottom}\" stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"6,3\"/><line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{bottom}\" stroke=\"transparent\" stroke-width=\"10\"/><polygon points=\"{l},{t0} {r},{t0} {x},{t1}\" fill=\"{color}\"/></g>",
                title = escape(&m.title),
                x = m.x,
                top = m.top,
                bottom = m.bottom,
                l = m.x - 6,
                r = m.x + 6,
                t0 = m.top - 8,
                t1 = m.top,
            )
        })
        .collect()
}

/// The markers of `change_points` on a chart whose y axis spans `low..high`.
fn change_markers<DB: DrawingBackend>(
    chart: &ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    points: &[TrendPoint],
    change_points: &[&SeriesChangePoint],
    (low, high): (f64, f64),
) -> Vec<ChangeMarker> {
    change_points
        .iter()
        .filter_map(|c| {
            let x = change_x(points, c)?;
            let (px, top) = chart.backend_coord(&(x, high));
            let (_, bottom) = chart.backend_coord(&(x, low));
            Some(ChangeMarker {
                x: px,
                top: top + 8,
                bottom,
                title: change_title(c),
            })
        })
        .collect()
}

/// The legend entry for change points, when a chart has any.
fn change_legend<DB: DrawingBackend>(
    chart: &mut ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    any: bool,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    if any {
        chart
            .draw_series(Vec::<PathElement<(f64, f64)>>::new())
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)?
            .label("change point")
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x + 10, y - 6), (x + 10, y + 6)],
                    CHANGE_COLOR.stroke_width(2),
                )
            });
    }
    Ok(())
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn category_label(names: &[String]) -> impl Fn(&f64) -> String + '_ {
    move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

/// The two sides of a time comparison per case (median per call, log
/// scale); the judged bar carries the overhead's confidence interval.
pub fn sides(verdict: &ContractVerdict) -> String {
    let cases: &[CaseVerdict] = &verdict.cases;
    let other = verdict.other.as_deref().unwrap_or("baseline");
    let judged = verdict.judged.as_str();
    let what = match verdict.metric {
        Metric::CpuTime => "CPU time",
        _ => "time",
    };
    svg("sides", |root| {
        let names: Vec<String> = cases.iter().map(|c| c.case.clone()).collect();
        let values: Vec<f64> = cases
            .iter()
            .flat_map(|c| [c.baseline, c.candidate])
            .flatten()
            .map(|ns| ns / 1e3)
            .collect();
        // With nothing measured, an empty chart over a fixed range (a
        // log axis from f64::MAX down would never finish its ticks).
        let (low, high) = if values.is_empty() {
            (1.0, 10.0)
        } else {
            (
                values.iter().copied().fold(f64::MAX, f64::min).max(1e-3) / 2.0,
                values.iter().copied().fold(1e-3, f64::max) * 3.0,
            )
        };
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("{other} vs {judged}, {what} per call (µs, log scale)"),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..(names.len() as f64 - 0.5), (low..high).log_scale())?;
        let label = category_label(&names);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len().max(1))
            .x_label_formatter(&label)
            .y_desc("µs")
            .draw()?;
        for (i, case) in cases.iter().enumerate() {
            let x = i as f64;
            if let Some(sync) = case.baseline {
                chart.draw_series([Rectangle::new(
                    [(x - 0.35, low), (x - 0.02, sync / 1e3)],
                    SYNC_COLOR.filled(),
                )])?;
            }
            if let Some(asynchronous) = case.candidate {
                chart.draw_series([Rectangle::new(
                    [(x + 0.02, low), (x + 0.35, asynchronous / 1e3)],
                    ASYNC_COLOR.filled(),
                )])?;
            }
            if let (Some(sync), Some(lo), Some(hi)) = (case.baseline, case.low, case.high) {
                let us = sync / 1e3;
                chart.draw_series([ErrorBar::new_vertical(
                    x + 0.185,
                    us * (1.0 + lo),
                    us * (1.0 + case.estimate.unwrap_or(0.0)),
                    us * (1.0 + hi),
                    BLACK.stroke_width(2),
                    10,
                )])?;
            }
        }
        chart
            .draw_series([Rectangle::new(
                [(0.0, low), (0.0, low)],
                SYNC_COLOR.filled(),
            )])?
            .label(other)
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], SYNC_COLOR.filled()));
        chart
            .draw_series([Rectangle::new(
                [(0.0, low), (0.0, low)],
                ASYNC_COLOR.filled(),
            )])?
            .label(format!("{judged} (bar: interval from {other} × overhead)"))
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], ASYNC_COLOR.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

type PercentChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A chart of judged figures per case: the cases along x, the y range fitted
/// to `values` (already scaled), the origin drawn and the bound dashed.
fn bound_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    title: &str,
    names: &[String],
    values: impl Iterator<Item = f64>,
    bound: f64,
    scale: &ChartScale,
) -> DrawResult<PercentChart<'a, 'b>> {
    let limit = bound * scale.factor;
    let all: Vec<f64> = values.chain([scale.origin, limit]).collect();
    let low = all.iter().copied().fold(f64::MAX, f64::min) - 1.0;
    let top = all.iter().copied().fold(f64::MIN, f64::max);
    let high = top + 1.0 + 0.1 * top.abs();
    let x_end = names.len() as f64 - 0.5;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..x_end, low..high)?;
    let label = category_label(names);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len().max(1))
        .x_label_formatter(&label)
        .y_desc(scale.unit)
        .draw()?;
    chart
        .draw_series(DashedLineSeries::new(
            [(-0.5, limit), (x_end, limit)],
            8,
            4,
            LIMIT_COLOR.stroke_width(2),
        ))?
        .label(format!("bound {limit:.2} {}", scale.unit))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], LIMIT_COLOR.stroke_width(2)));
    chart.draw_series(LineSeries::new(
        [(-0.5, scale.origin), (x_end, scale.origin)],
        BLACK.mix(0.4),
    ))?;
    Ok(chart)
}

/// Each case's judged figure with its interval, against the bound.
pub fn judged_vs_bound(verdict: &ContractVerdict) -> String {
    let scale = verdict.metric.chart_scale();
    svg("judged", |root| {
        let cases = &verdict.cases;
        let names: Vec<String> = cases.iter().map(|c| c.case.clone()).collect();
        let values = cases
            .iter()
            .flat_map(|c| [c.low, c.high, c.estimate])
            .flatten()
            .map(|v| v * scale.factor);
        let title = format!(
            "{}: {} ({:.0}% interval)",
            verdict.contract,
            verdict.metric.judged_name(),
            verdict.confidence * 100.0
        );
        let mut chart = bound_chart(root, &title, &names, values, verdict.bound.value(), &scale)?;
        for (i, case) in cases.iter().enumerate() {
            if let (Some(lo), Some(mid), Some(hi)) = (case.low, case.estimate, case.high) {
                let f = scale.factor;
                chart.draw_series([ErrorBar::new_vertical(
                    i as f64,
                    lo * f,
                    mid * f,
                    hi * f,
                    ASYNC_COLOR.stroke_width(3),
                    16,
                )])?;
                chart.draw_series([Circle::new((i as f64, mid * f), 5, ASYNC_COLOR.filled())])?;
            }
        }
        chart
            .configure_series_labels()
            .position(match verdict.bound {
                Bound::AtMost(_) => SeriesLabelPosition::UpperRight,
                Bound::AtLeast(_) => SeriesLabelPosition::LowerRight,
            })
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Every pair's overhead (candidate / baseline − 1, %) per case.
pub fn sample_distributions(distributions: &[(String, Vec<f64>)], limit: f64) -> String {
    let percent = Metric::WallClock.chart_scale();
    svg("distributions", |root| {
        let names: Vec<String> = distributions.iter().map(|(n, _)| n.clone()).collect();
        let values = distributions
            .iter()
            .flat_map(|(_, v)| v.iter().map(|x| x * 100.0));
        let mut chart = bound_chart(
            root,
            "Per-pair overhead (%), the two sides' batches alternating",
            &names,
            values,
            limit,
            &percent,
        )?;
        for (i, (_, values)) in distributions.iter().enumerate() {
            let n = values.len().max(1) as f64;
            chart.draw_series(values.iter().enumerate().map(|(j, v)| {
                // Spread the points sideways so they do not hide each other.
                let x = i as f64 - 0.3 + 0.6 * (j as f64 + 0.5) / n;
                Circle::new((x, v * 100.0), 3, SYNC_COLOR.mix(0.7).filled())
            }))?;
        }
        Ok(())
    })
}

/// One benchmark's history: sync and async of `payload` for `tool`'s figure,
/// the wall-clock limit (sync × (1 + limit)) dashed when there is one,
/// regressions circled and the series' change points marked.
pub fn trend(
    points: &[TrendPoint],
    payload: &str,
    tool: Tool,
    limit: Option<f64>,
    change_points: &[SeriesChangePoint],
    links: &RunLinks,
) -> String {
    let callgrind = tool == Tool::Callgrind;
    let metric = if callgrind { "instructions" } else { "mean" };
    let value_text = |v: f64| {
        if callgrind {
            super::count_text(v)
        } else {
            super::duration_text(v)
        }
    };
    let title = format!(
        "{payload}: {} over runs",
        if callgrind {
            "instructions"
        } else {
            "wall clock (Criterion mean)"
        }
    );
    let marked: Vec<&SeriesChangePoint> = change_points
        .iter()
        .filter(|c| {
            c.series.source == tool.name()
                && c.series.metric == metric
                && c.series.benchmark.split('/').next() == Some(payload)
        })
        .collect();
    let hotspots = std::cell::RefCell::new(Vec::new());
    let regressions = std::cell::RefCell::new(Vec::new());
    let markers = std::cell::RefCell::new(Vec::new());
    let drawn = svg(&title.clone(), |root| {
        let series = |variant: &str| -> Vec<(f64, f64)> {
            let benchmark = format!("{payload}/{variant}");
            points
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    p.figures
                        .iter()
                        .find(|(t, b, m, _)| *t == tool && *b == benchmark && m == metric)
                        .map(|(_, _, _, v)| (i as f64, *v))
                })
                .collect()
        };
        let sync = series("sync");
        let asynchronous = series("async");
        let limit_line: Vec<(f64, f64)> = limit.map_or_else(Vec::new, |limit| {
            sync.iter().map(|(x, y)| (*x, y * (1.0 + limit))).collect()
        });
        let ys: Vec<f64> = sync
            .iter()
            .chain(&asynchronous)
            .chain(&limit_line)
            .map(|p| p.1)
            .collect();
        let (low, high) = if ys.is_empty() {
            (0.0, 1.0)
        } else {
            let lo = ys.iter().copied().fold(f64::MAX, f64::min);
            let hi = ys.iter().copied().fold(f64::MIN, f64::max);
            let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.01).max(1e-9);
            (lo - pad, hi + pad)
        };
        let n = points.len().max(2) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(&title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..(n - 0.5), low..high)?;
        let x_label = run_label(points);
        let y_label = |v: &f64| value_text(*v);
        chart
            .configure_mesh()
            .x_labels(points.len().clamp(1, 8))
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc("run (commit, date; oldest to newest)")
            .y_desc(if callgrind {
                "instructions"
            } else {
                "time per call"
            })
            .draw()?;
        for (name, line, color) in [
            ("sync", &sync, SYNC_COLOR),
            ("async", &asynchronous, ASYNC_COLOR),
        ] {
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            // A marker per run: a single run still shows.
            chart.draw_series(line.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
            let benchmark = format!("{payload}/{name}");
            for &(x, y) in line.iter() {
                let point = &points[x as usize];
                let figure = |wanted: &str| {
                    point
                        .figures
                        .iter()
                        .find(|(t, b, m, _)| *t == tool && *b == benchmark && m == wanted)
                        .map(|f| f.3)
                };
                let interval = match (figure("ci_low"), figure("ci_high")) {
                    (Some(low), Some(high)) => {
                        format!(" [{}, {}]", value_text(low), value_text(high))
                    }
                    _ => String::new(),
                };
                hotspots.borrow_mut().push(Hotspot {
                    at: chart.backend_coord(&(x, y)),
                    run_id: point.run.id,
                    title: format!(
                        "run #{} · {} · {} {name}: {}{interval}",
                        point.run.id,
                        super::short_commit(&point.run.commit),
                        super::format_timestamp(point.run.started_at_ms),
                        value_text(y)
                    ),
                });
            }
        }
        chart
            .draw_series(DashedLineSeries::new(
                limit_line,
                6,
                4,
                LIMIT_COLOR.stroke_width(1),
            ))?
            .label(format!(
                "limit: sync + {:.0}%",
                limit.unwrap_or(0.0) * 100.0
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], LIMIT_COLOR));
        // Each regressed side's own point circled, with what regressed.
        let mut regressed: Vec<(f64, f64)> = Vec::new();
        for (name, line) in [("sync", &sync), ("async", &asynchronous)] {
            let key = format!("{}:{payload}/{name}", tool.name());
            for &(x, y) in line.iter() {
                let point = &points[x as usize];
                if point.regressions.contains(&key) {
                    regressed.push((x, y));
                    regressions.borrow_mut().push(Hotspot {
                        at: chart.backend_coord(&(x, y)),
                        run_id: point.run.id,
                        title: format!(
                            "regression: {payload}/{name} of run #{} ({}) against its base",
                            point.run.id,
                            super::short_commit(&point.run.commit)
                        ),
                    });
                }
            }
        }
        chart
            .draw_series(
                regressed
                    .iter()
                    .map(|p| Circle::new(*p, 7, LIMIT_COLOR.stroke_width(2))),
            )?
            .label("regression")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, LIMIT_COLOR.stroke_width(2)));
        change_legend(&mut chart, !marked.is_empty())?;
        markers.replace(change_markers(&chart, points, &marked, (low, high)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    });
    with_overlay(
        drawn,
        &(change_markers_svg(&markers.borrow())
            + &hotspots_svg(&regressions.borrow(), links)
            + &hotspots_svg(&hotspots.borrow(), links)),
    )
}

/// One contract's history: each case's judged figure over runs, with the
/// bound dashed and the change points marked.
pub fn contract_trend(
    points: &[TrendPoint],
    contract: &str,
    change_points: &[SeriesChangePoint],
    links: &RunLinks,
) -> String {
    let verdicts: Vec<(usize, &crate::store::TrendVerdict)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            p.verdicts
                .iter()
                .find(|v| v.contract == contract)
                .map(|v| (i, v))
        })
        .collect();
    let Some((_, latest)) = verdicts.last() else {
        return String::new();
    };
    let scale = latest.metric.chart_scale();
    let title = format!("{contract}: {} over runs", latest.metric.judged_name());
    let bound = latest.bound.value() * scale.factor;
    let metric = latest.metric;
    let prefix = format!("{contract}/");
    let marked: Vec<&SeriesChangePoint> = change_points
        .iter()
        .filter(|c| c.series.source == "contract" && c.series.benchmark.starts_with(&prefix))
        .collect();
    let hotspots = std::cell::RefCell::new(Vec::new());
    let markers = std::cell::RefCell::new(Vec::new());
    let drawn = svg(&title.clone(), |root| {
        let mut cases: Vec<String> = Vec::new();
        for (_, v) in &verdicts {
            for case in &v.cases {
                if !cases.contains(&case.case) {
                    cases.push(case.case.clone());
                }
            }
        }
        let series: Vec<Vec<(f64, f64)>> = cases
            .iter()
            .map(|case| {
                verdicts
                    .iter()
                    .filter_map(|(i, v)| {
                        let found = v.cases.iter().find(|c| c.case == *case)?;
                        Some((*i as f64, found.estimate? * scale.factor))
                    })
                    .collect()
            })
            .collect();
        let ys: Vec<f64> = series
            .iter()
            .flatten()
            .map(|p| p.1)
            .chain([bound, scale.origin])
            .collect();
        let lo = ys.iter().copied().fold(f64::MAX, f64::min);
        let hi = ys.iter().copied().fold(f64::MIN, f64::max);
        let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.01).max(1e-9);
        let (low, high) = (lo - pad, hi + pad);
        let n = points.len().max(2) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(&title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..(n - 0.5), low..high)?;
        let x_label = run_label(points);
        chart
            .configure_mesh()
            .x_labels(points.len().clamp(1, 8))
            .x_label_formatter(&x_label)
            .x_desc("run (commit, date; oldest to newest)")
            .y_desc(scale.unit)
            .draw()?;
        let palette = [
            SYNC_COLOR,
            ASYNC_COLOR,
            RGBColor(44, 160, 44),
            RGBColor(148, 103, 189),
            RGBColor(140, 86, 75),
        ];
        for (i, (case, line)) in cases.iter().zip(&series).enumerate() {
            let color = palette[i % palette.len()];
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
                .label(case.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(line.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
            for &(x, y) in line {
                let point = &points[x as usize];
                let run = &point.run;
                let interval = point
                    .verdicts
                    .iter()
                    .find(|v| v.contract == contract)
                    .and_then(|v| v.cases.iter().find(|c| c.case == *case))
                    .and_then(|c| Some((c.low?, c.high?)))
                    .map_or(String::new(), |(low, high)| {
                        format!(
                            " [{}, {}]",
                            metric.judged_text(low),
                            metric.judged_text(high)
                        )
                    });
                hotspots.borrow_mut().push(Hotspot {
                    at: chart.backend_coord(&(x, y)),
                    run_id: run.id,
                    title: format!(
                        "run #{} · {} · {} {case}: {}{interval}",
                        run.id,
                        super::short_commit(&run.commit),
                        super::format_timestamp(run.started_at_ms),
                        metric.judged_text(y / scale.factor)
                    ),
                });
            }
        }
        chart
            .draw_series(DashedLineSeries::new(
                [(-0.5, bound), (n - 0.5, bound)],
                6,
                4,
                LIMIT_COLOR.stroke_width(1),
            ))?
            .label("bound")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], LIMIT_COLOR));
        change_legend(&mut chart, !marked.is_empty())?;
        markers.replace(change_markers(&chart, points, &marked, (low, high)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    });
    with_overlay(
        drawn,
        &(change_markers_svg(&markers.borrow()) + &hotspots_svg(&hotspots.borrow(), links)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::verdict::Status;

    #[test]
    fn a_verdict_with_nothing_measured_still_draws() {
        let verdict = ContractVerdict {
            contract: "c".into(),
            title: "t".into(),
            contract_hash: "h".into(),
            metric: Metric::CpuTime,
            judged: "async".into(),
            other: Some("sync".into()),
            bound: Bound::AtMost(0.2),
            confidence: 0.95,
            status: Status::Inconclusive,
            cases: vec![CaseVerdict {
                case: "small".into(),
                payload: "small".into(),
                payload_bytes: 343,
                baseline: None,
                candidate: None,
                estimate: None,
                low: None,
                high: None,
                bound: Bound::AtMost(0.2),
                status: Status::Inconclusive,
                samples: 0,
                note: Some("no samples".into()),
                literal_overhead: None,
                instructions_baseline: None,
                instructions_candidate: None,
                instruction_overhead: None,
            }],
            looks: None,
        };
        for svg in [sides(&verdict), judged_vs_bound(&verdict)] {
            assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{svg}");
        }
    }

    fn one_run() -> Vec<TrendPoint> {
        let run = crate::store::RunInfo {
            id: 7,
            commit: "abcdef1234567890".into(),
            branch: Some("main".into()),
            base_commit: None,
            pr_number: None,
            dirty: false,
            quick: false,
            machine_id: "m".into(),
            machine: crate::store::Machine {
                cpu_model: "cpu".into(),
                cores: 2,
                os: "os".into(),
                rustc: "rustc".into(),
                valgrind: None,
            },
            started_at_ms: 1_795_753_611_000,
            finished_at_ms: 1_795_753_611_000,
            notes: Vec::new(),
        };
        let figure = |variant: &str, value: f64| {
            (
                Tool::Callgrind,
                format!("medium/{variant}"),
                "instructions".to_owned(),
                value,
            )
        };
        vec![TrendPoint {
            run,
            figures: vec![figure("sync", 6_950_000.0), figure("async", 6_952_000.0)],
            verdicts: Vec::new(),
            regressions: Vec::new(),
        }]
    }

    #[test]
    fn one_run_draws_its_points_labelled_and_linked() {
        let pages = BTreeSet::from([7]);
        let links = RunLinks {
            prefix: "runs/",
            pages: &pages,
        };
        let svg = trend(
            &one_run(),
            "medium",
            Tool::Callgrind,
            Some(0.05),
            &[],
            &links,
        );
        // A marker per side, a hover title and a link to the run's page.
        assert_eq!(svg.matches("<title>").count(), 2, "{svg}");
        assert!(svg.contains("<a href=\"runs/7.html\">"), "{svg}");
        assert!(svg.contains("async: 6.95 M"), "{svg}");
        // Human numbers and the run's commit and date on the axes, not
        // "6950000.0" and "-0.4".
        assert!(!svg.contains("6950000"), "{svg}");
        assert!(svg.contains("abcdef1 11-27"), "{svg}");
        assert!(!svg.contains(">-0.4<"), "{svg}");
        // No page for the run here: the point keeps its title, not a link.
        let unlinked = RunLinks {
            prefix: "runs/",
            pages: &BTreeSet::new(),
        };
        let svg = trend(&one_run(), "medium", Tool::Callgrind, None, &[], &unlinked);
        assert_eq!(svg.matches("<title>").count(), 2, "{svg}");
        assert!(!svg.contains("href"), "{svg}");
    }

    #[test]
    fn a_regression_is_circled_on_its_own_side_and_titled() {
        let mut points = one_run();
        points[0].regressions = vec!["callgrind:medium/sync".to_owned()];
        let pages = BTreeSet::new();
        let links = RunLinks {
            prefix: "runs/",
            pages: &pages,
        };
        let svg = trend(&points, "medium", Tool::Callgrind, None, &[], &links);
        assert!(
            svg.contains(
                "<title>regression: medium/sync of run #7 (abcdef1234) against its base</title>"
            ),
            "{svg}"
        );
        assert!(!svg.contains("regression: medium/async"), "{svg}");
        // Both sides' points sit where the sync one is circled.
        let sync_point = svg
            .split("<title>run #7 · abcdef1234 · 2026-11-27 04:26:51 UTC sync")
            .next()
            .and_then(|before| before.rsplit("<circle").next())
            .expect("the sync point");
        let regression = svg
            .split("<title>regression:")
            .next()
            .and_then(|before| before.rsplit("<circle").next())
            .expect("the regression");
        assert_eq!(sync_point, regression, "{svg}");
    }
}
