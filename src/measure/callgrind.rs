//! Parser for gungraun's JSON summary (`--save-summary=json`, schema 7): one
//! `summary.json` per benchmark, with callgrind's counts per thread and in total.

use std::path::Path;

use serde::Deserialize;

use super::MeasureError;
use super::payload::{Payload, Variant, benchmark_id};
use super::profile::{self, Profile};
use crate::store::BenchmarkProfile;

/// Callgrind's figures for one benchmark, summed over all threads.
#[derive(Clone, Debug, PartialEq)]
pub struct InstructionCounts {
    /// `<payload>/<variant>`, as for wall clock.
    pub benchmark: String,
    pub instructions: u64,
    pub estimated_cycles: Option<u64>,
    pub l1_hits: Option<u64>,
    pub ll_hits: Option<u64>,
    pub ram_hits: Option<u64>,
    pub total_rw: Option<u64>,
    /// Threads callgrind saw with collection on (the worker's appears here).
    pub threads: usize,
    /// Instructions on each of those threads.
    pub instructions_per_thread: Vec<u64>,
}

#[derive(Deserialize)]
struct Summary {
    version: String,
    function_name: String,
    id: Option<String>,
    profiles: Vec<ToolProfile>,
}

/// One tool's figures in the summary.
#[derive(Deserialize)]
struct ToolProfile {
    tool: String,
    data: ProfileData,
}

#[derive(Deserialize)]
struct ProfileData {
    parts: Vec<Part>,
    total: Total,
}

#[derive(Deserialize)]
struct Part {
    metrics: std::collections::HashMap<String, Metric>,
}

#[derive(Deserialize)]
struct Total {
    metrics: std::collections::HashMap<String, Metric>,
}

#[derive(Deserialize)]
struct Metric {
    values: Values,
}

#[derive(Deserialize)]
struct Values {
    new: serde_json::Number,
}

fn count(metrics: &std::collections::HashMap<String, Metric>, key: &str) -> Option<u64> {
    metrics.get(key).and_then(|m| m.values.new.as_u64())
}

/// Maps the benchmark's function and id (`sync_template`, `small`) to its
/// stored name (`small/sync`).
fn benchmark_name(function: &str, id: Option<&str>) -> Result<String, MeasureError> {
    let variant = match function {
        "sync_template" => Variant::Sync,
        "async_template" => Variant::Async,
        other => {
            return Err(MeasureError::Parse(format!(
                "unknown gungraun benchmark function '{other}'"
            )));
        }
    };
    let payload = id
        .and_then(Payload::from_name)
        .ok_or_else(|| MeasureError::Parse(format!("unknown gungraun benchmark id {id:?}")))?;
    Ok(benchmark_id(payload, variant))
}

pub fn parse_summary(text: &str) -> Result<InstructionCounts, MeasureError> {
    let summary: Summary = serde_json::from_str(text)
        .map_err(|e| MeasureError::Parse(format!("gungraun summary.json: {e}")))?;
    if summary.version != "7" {
        return Err(MeasureError::Parse(format!(
            "gungraun summary schema {} (expected 7): is the gungraun-runner version 0.20.0?",
            summary.version
        )));
    }
    let profile = summary
        .profiles
        .iter()
        .find(|p| p.tool == "Callgrind")
        .ok_or_else(|| MeasureError::Parse("gungraun summary has no Callgrind profile".into()))?;
    let total = &profile.data.total.metrics;
    let instructions = count(total, "Ir").ok_or_else(|| {
        MeasureError::Parse("gungraun summary has no instruction count (Ir)".into())
    })?;
    let instructions_per_thread: Vec<u64> = profile
        .data
        .parts
        .iter()
        .filter_map(|p| count(&p.metrics, "Ir"))
        .filter(|ir| *ir > 0)
        .collect();
    Ok(InstructionCounts {
        benchmark: benchmark_name(&summary.function_name, summary.id.as_deref())?,
        instructions,
        estimated_cycles: count(total, "EstimatedCycles"),
        l1_hits: count(total, "L1hits"),
        ll_hits: count(total, "LLhits"),
        ram_hits: count(total, "RamHits"),
        total_rw: count(total, "TotalRW"),
        threads: instructions_per_thread.len(),
        instructions_per_thread,
    })
}

/// Reads every `summary.json` under gungraun's output directory.
pub fn read_output(root: &Path) -> Result<Vec<InstructionCounts>, MeasureError> {
    let mut found = super::files_named(root, "summary.json")?
        .iter()
        .map(|path| parse_summary(&super::read_text(path)?))
        .collect::<Result<Vec<_>, _>>()?;
    found.sort_by(|a, b| a.benchmark.cmp(&b.benchmark));
    Ok(found)
}

/// Whether `name` is one of callgrind's profile files as gungraun names them:
/// `callgrind.<function>.<id>.out`, with `.t<N>` before `.out` per thread.
pub fn is_profile_file(name: &str) -> bool {
    name.starts_with("callgrind.") && name.ends_with(".out")
}

/// One callgrind profile file, or a directory's (a gungraun benchmark's
/// directory: one file per thread) combined.
pub fn read_profile(path: &Path) -> Result<Profile, MeasureError> {
    let files = if path.is_dir() {
        super::files_where(path, is_profile_file)?
    } else {
        vec![path.to_owned()]
    };
    if files.is_empty() {
        return Err(MeasureError::Io(format!(
            "{}: no callgrind profile (callgrind.*.out) in this directory",
            path.display()
        )));
    }
    let parts = files
        .iter()
        .map(|file| profile_of(file))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Profile::combined(&parts))
}

fn profile_of(path: &Path) -> Result<Profile, MeasureError> {
    profile::parse_profile(&super::read_text(path)?).map_err(|e| match e {
        MeasureError::Parse(what) => MeasureError::Parse(format!("{}: {what}", path.display())),
        other => other,
    })
}

/// Reads the callgrind profiles under gungraun's output directory: one per
/// benchmark (its threads' files combined), keeping the `top` functions.
/// A benchmark's directory is `<function>.<id>`, e.g. `async_template.large`.
pub fn read_profiles(root: &Path, top: usize) -> Result<Vec<BenchmarkProfile>, MeasureError> {
    let mut files: std::collections::BTreeMap<String, Vec<Profile>> = Default::default();
    for path in super::files_where(root, is_profile_file)? {
        let dir = path
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str())
            .unwrap_or_default();
        let (function, id) = dir.split_once('.').ok_or_else(|| {
            MeasureError::Parse(format!(
                "{}: not in a gungraun benchmark directory (<function>.<id>)",
                path.display()
            ))
        })?;
        let parsed = profile_of(&path)?;
        files
            .entry(benchmark_name(function, Some(id))?)
            .or_default()
            .push(parsed);
    }
    Ok(files
        .into_iter()
        .map(|(benchmark, parts)| BenchmarkProfile {
            benchmark,
            profile: Profile::combined(&parts).top(top),
        })
        .collect())
}
