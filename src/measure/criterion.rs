//! Parser for Criterion's machine-readable output: for each benchmark,
//! `<out>/<group>/<function>/new/{benchmark,estimates,sample}.json`.

use std::path::Path;

use serde::Deserialize;

use super::MeasureError;

/// Criterion's wall-clock figures for one benchmark, in nanoseconds per iteration.
#[derive(Clone, Debug, PartialEq)]
pub struct WallClock {
    /// Criterion's full id, `<group>/<function>` (e.g. `small/sync`).
    pub benchmark: String,
    pub mean_ns: f64,
    pub median_ns: f64,
    pub std_dev_ns: f64,
    /// Confidence interval of the mean.
    pub mean_ci_low_ns: f64,
    pub mean_ci_high_ns: f64,
    pub confidence_level: f64,
    pub samples: Vec<Sample>,
}

/// One Criterion sample: `iterations` runs that took `total_ns` together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub iterations: f64,
    pub total_ns: f64,
}

impl Sample {
    pub fn per_iteration_ns(&self) -> f64 {
        self.total_ns / self.iterations
    }
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
    confidence_level: f64,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

/// `estimates.json`.
#[derive(Deserialize)]
pub struct Estimates {
    mean: Estimate,
    median: Estimate,
    std_dev: Estimate,
}

#[derive(Deserialize)]
struct SavedSample {
    iters: Vec<f64>,
    times: Vec<f64>,
}

#[derive(Deserialize)]
struct BenchmarkId {
    full_id: String,
}

fn parse<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, MeasureError> {
    serde_json::from_str(text).map_err(|e| MeasureError::Parse(format!("Criterion {what}: {e}")))
}

pub fn parse_estimates(text: &str) -> Result<Estimates, MeasureError> {
    parse(text, "estimates.json")
}

pub fn parse_samples(text: &str) -> Result<Vec<Sample>, MeasureError> {
    let saved: SavedSample = parse(text, "sample.json")?;
    if saved.iters.len() != saved.times.len() || saved.iters.is_empty() {
        return Err(MeasureError::Parse(format!(
            "Criterion sample.json: {} iteration counts for {} times",
            saved.iters.len(),
            saved.times.len()
        )));
    }
    Ok(saved
        .iters
        .into_iter()
        .zip(saved.times)
        .map(|(iterations, total_ns)| Sample {
            iterations,
            total_ns,
        })
        .collect())
}

pub fn parse_benchmark_id(text: &str) -> Result<String, MeasureError> {
    Ok(parse::<BenchmarkId>(text, "benchmark.json")?.full_id)
}

/// Builds one benchmark's figures from the texts of its three files.
pub fn parse_benchmark(
    benchmark_json: &str,
    estimates_json: &str,
    sample_json: &str,
) -> Result<WallClock, MeasureError> {
    let estimates = parse_estimates(estimates_json)?;
    Ok(WallClock {
        benchmark: parse_benchmark_id(benchmark_json)?,
        mean_ns: estimates.mean.point_estimate,
        median_ns: estimates.median.point_estimate,
        std_dev_ns: estimates.std_dev.point_estimate,
        mean_ci_low_ns: estimates.mean.confidence_interval.lower_bound,
        mean_ci_high_ns: estimates.mean.confidence_interval.upper_bound,
        confidence_level: estimates.mean.confidence_interval.confidence_level,
        samples: parse_samples(sample_json)?,
    })
}

/// Reads every benchmark under Criterion's output directory (each one's
/// `new/` folder holds its latest figures).
pub fn read_output(root: &Path) -> Result<Vec<WallClock>, MeasureError> {
    let mut found = Vec::new();
    for benchmark in super::files_named(root, "benchmark.json")? {
        let dir = benchmark.parent().expect("a file has a parent");
        if dir.file_name().is_some_and(|n| n == "new") {
            found.push(parse_benchmark(
                &super::read_text(&benchmark)?,
                &super::read_text(&dir.join("estimates.json"))?,
                &super::read_text(&dir.join("sample.json"))?,
            )?);
        }
    }
    found.sort_by(|a, b| a.benchmark.cmp(&b.benchmark));
    Ok(found)
}
