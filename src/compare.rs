//! The pipelines `compare` and `bisect` run: build two commits, measure them
//! side by side on this machine, judge each benchmark's change.
//!
//! Both builds serve batches from their own process (`serve-batches`); the
//! paired sampler takes one batch of the base and one of the head per pair,
//! the order alternating pair by pair (base, head, head, base, ...), so
//! drift of the machine hits both alike and cancels in each pair's ratio.
//! What stays undecided is sampled again in the contracts' group-sequential
//! design (at most [`crate::judge::MAX_LOOKS`] looks, each at its share of
//! the confidence), and on a host measured as too noisy a decided change is
//! INCONCLUSIVE instead.
//!
//! The callgrind run that counts a build's instructions leaves its profile
//! too: a benchmark that regressed (or every one, asked for) gets the
//! base's profile diffed against the head's.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diagnose::instructions::profile_call;
use crate::diagnose::profile_diff::{self, BuildDiff};
use crate::judge::builds::{
    self, BenchmarkChange, BuildComparison, BuildVerdict, apply_noise, instruction_change,
    wall_clock_change,
};
use crate::judge::compare::INSTRUCTION_THRESHOLD;
use crate::judge::verdict::Looks;
use crate::judge::{MAX_LOOKS, per_look_confidence};
use crate::measure::MeasureError;
use crate::measure::batches::{self, BatchServer, ServerError};
use crate::measure::builds::{BuildError, Builds, git};
use crate::measure::environment;
use crate::measure::machine_lock::MachineLock;
use crate::measure::noise::HostNoise;
use crate::measure::paired::{self, PairedSamples, SamplingPlan};
use crate::measure::payload::parse_benchmark_id;
use crate::measure::profile::Profile;
use crate::measure::run::Progress;

/// The confidence of a comparison's verdicts, over all its looks.
pub const CONFIDENCE: f64 = 0.95;

/// The comparison failed.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Measure(#[from] MeasureError),
    #[error(
        "unknown benchmark '{0}'; the benchmarks are small/sync, small/async, medium/sync, medium/async, large/sync and large/async"
    )]
    UnknownBenchmark(String),
    #[error("{0}")]
    Bisect(String),
}

/// How to compare.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Few pairs: every stage, quickly.
    pub quick: bool,
    /// The benchmarks to compare; empty for all.
    pub benchmarks: Vec<String>,
    /// The threshold on a change in time per call.
    pub threshold: f64,
    /// Measure time per call, paired.
    pub wall_clock: bool,
    /// Count both builds' instructions under callgrind.
    pub instructions: bool,
    /// Diff the two builds' callgrind profiles of every benchmark, not only
    /// of those that regressed.
    pub profile: bool,
    /// The tokenizer model both builds load.
    pub tokenizer_path: PathBuf,
}

impl CompareOptions {
    /// The benchmarks asked for, checked.
    pub fn benchmarks(&self) -> Result<Vec<String>, CompareError> {
        if self.benchmarks.is_empty() {
            return Ok(batches::benchmarks());
        }
        for benchmark in &self.benchmarks {
            if parse_benchmark_id(benchmark).is_none() {
                return Err(CompareError::UnknownBenchmark(benchmark.clone()));
            }
        }
        Ok(self.benchmarks.clone())
    }
}

/// Builds `base` and `head` (full hashes) and compares them: the builds
/// first, then, holding the machine's measuring lock, the measurements.
pub fn compare(
    builds: &Builds,
    base: &str,
    head: &str,
    options: &CompareOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<BuildComparison, CompareError> {
    let benchmarks = options.benchmarks()?;
    let total = 2 + usize::from(options.wall_clock) + usize::from(options.instructions);
    progress(Progress::Stage {
        index: 1,
        total,
        name: &format!("building the base, {base}"),
    });
    let base_exe = builds.binary(base, progress)?;
    progress(Progress::Stage {
        index: 2,
        total,
        name: &format!("building the head, {head}"),
    });
    let head_exe = builds.binary(head, progress)?;
    let _lock = MachineLock::acquire(progress)?;
    let mut changes: Vec<BenchmarkChange> = Vec::new();
    let mut notes = Vec::new();
    let mut looks = Looks {
        taken: 0,
        max: MAX_LOOKS,
    };
    let mut noise = None;
    let mut profiles = Vec::new();
    if options.wall_clock {
        progress(Progress::Stage {
            index: 3,
            total,
            name: "wall clock: base and head batches alternating, paired",
        });
        let confidence = per_look_confidence(CONFIDENCE, MAX_LOOKS);
        let (sampled, measured) = HostNoise::over(|| {
            wall_clock(
                &base_exe,
                &head_exe,
                &benchmarks,
                options,
                confidence,
                progress,
            )
        });
        noise = measured;
        let samples;
        (samples, looks) = sampled?;
        changes.extend(benchmarks.iter().zip(&samples).map(|(benchmark, s)| {
            let mut change = wall_clock_change(
                benchmark,
                &s.baseline_ns,
                &s.candidate_ns,
                options.threshold,
                confidence,
            );
            apply_noise(&mut change, noise.as_ref());
            change
        }));
        if let Some(reason) = noise.as_ref().and_then(HostNoise::too_noisy) {
            let warning = format!(
                "the host was too noisy while the builds were measured ({reason}): a change in time that would be decided is INCONCLUSIVE instead"
            );
            progress(Progress::Warning(&warning));
            notes.push(warning);
        }
    }
    if options.instructions {
        progress(Progress::Stage {
            index: total,
            total,
            name: "instruction counts and profiles of both builds (callgrind)",
        });
        match instructions(&base_exe, &head_exe, &benchmarks, options, progress) {
            Ok(counted) => {
                for c in counted {
                    profiles.push((c.change.benchmark.clone(), c.base, c.head));
                    changes.push(c.change);
                }
            }
            // Instructions alone: without them there is nothing to judge.
            Err(note) if !options.wall_clock => {
                return Err(MeasureError::Tool(note).into());
            }
            Err(note) => {
                progress(Progress::Warning(&note));
                notes.push(note);
            }
        }
    }
    // Where the instructions went, from the profiles of the very callgrind
    // runs that counted them.
    let profile_diffs = profiles
        .iter()
        .filter_map(|(benchmark, base_profile, head_profile)| {
            Some(BuildDiff {
                reason: profile_diff::build_reason(benchmark, &changes, options.profile)?,
                benchmark: benchmark.clone(),
                base_commit: base.to_owned(),
                head_commit: head.to_owned(),
                diff: profile_diff::diff(base_profile, head_profile, profile_diff::REPORT_TOP),
            })
        })
        .collect();
    Ok(BuildComparison {
        base_commit: base.to_owned(),
        head_commit: head.to_owned(),
        quick: options.quick,
        threshold: options.threshold,
        confidence: CONFIDENCE,
        looks,
        host: noise.map(|n| n.to_string()),
        verdict: builds::overall(&changes),
        changes,
        notes,
        profile_diffs,
    })
}

/// Paired samples of every benchmark, look after look until each is
/// decided or [`MAX_LOOKS`] looks are taken.
fn wall_clock(
    base_exe: &Path,
    head_exe: &Path,
    benchmarks: &[String],
    options: &CompareOptions,
    confidence: f64,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<PairedSamples>, Looks), CompareError> {
    let base = RefCell::new(BatchServer::start(
        base_exe,
        &options.tokenizer_path,
        "base",
    )?);
    let head = RefCell::new(BatchServer::start(
        head_exe,
        &options.tokenizer_path,
        "head",
    )?);
    let plan = SamplingPlan::for_mode(options.quick);
    let mut samples: Vec<PairedSamples> = Vec::with_capacity(benchmarks.len());
    let mut open: Vec<usize> = (0..benchmarks.len()).collect();
    let mut looks = 0;
    while !open.is_empty() && looks < MAX_LOOKS {
        looks += 1;
        for &i in &open {
            let benchmark = &benchmarks[i];
            let failure = RefCell::new(None);
            let run = |server: &RefCell<BatchServer>, iterations: usize| {
                // Each batch on the CPU the sampler placed this pair on, as an
                // in-process batch runs: left free, the two servers of one
                // pair could run on different CPUs, and one CPU running
                // slower for a while would not cancel out of the pair's
                // ratio (docs/methodology.md, Pairing).
                if let Some(cpu) = crate::affinity::current_cpu() {
                    server.borrow().run_on(cpu as usize);
                }
                match server.borrow_mut().batch(benchmark, iterations) {
                    Ok(took) => took,
                    Err(error) => {
                        failure.borrow_mut().get_or_insert(error);
                        Duration::ZERO
                    }
                }
            };
            let mut base_batch = |n| run(&base, n);
            let mut head_batch = |n| run(&head, n);
            let more = match samples.get(i) {
                None => paired::sample(&mut base_batch, &mut head_batch, plan, None),
                Some(taken) => {
                    let n = taken.batch_iterations;
                    paired::sample_pairs(&mut base_batch, &mut head_batch, (n, n), plan, None)
                }
            };
            if let Some(error) = failure.into_inner() {
                return Err(error.into());
            }
            match samples.get_mut(i) {
                None => samples.push(more),
                Some(taken) => taken.extend(more),
            }
            let now = wall_clock_change(
                benchmark,
                &samples[i].baseline_ns,
                &samples[i].candidate_ns,
                options.threshold,
                confidence,
            );
            progress(Progress::Output(&format!(
                "look {looks}: {benchmark}: {} pairs, change {} [{}, {}]: {}",
                now.pairs,
                crate::render::percent(now.change),
                crate::render::percent(now.low),
                crate::render::percent(now.high),
                now.verdict.label()
            )));
        }
        open.retain(|&i| {
            wall_clock_change(
                &benchmarks[i],
                &samples[i].baseline_ns,
                &samples[i].candidate_ns,
                options.threshold,
                confidence,
            )
            .verdict
                == BuildVerdict::Inconclusive
        });
    }
    Ok((
        samples,
        Looks {
            taken: looks,
            max: MAX_LOOKS,
        },
    ))
}

/// One benchmark's instructions in both builds, with the profiles they
/// were read from.
struct Counted {
    change: BenchmarkChange,
    base: Profile,
    head: Profile,
}

/// Both builds' instructions per benchmark, or why they were not counted.
fn instructions(
    base_exe: &Path,
    head_exe: &Path,
    benchmarks: &[String],
    options: &CompareOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Counted>, String> {
    if environment::valgrind_version().is_none() {
        return Err("valgrind is not installed: instruction counts were NOT compared. Install valgrind (e.g. `apt-get install valgrind`) and run again.".to_owned());
    }
    let valgrind = environment::valgrind_program();
    let mut changes = Vec::new();
    for benchmark in benchmarks {
        let (payload, variant) = parse_benchmark_id(benchmark).expect("checked benchmark");
        let mut count = |exe: &Path, which: &str| {
            progress(Progress::Output(&format!(
                "callgrind: {benchmark} of the {which}"
            )));
            profile_call(
                exe,
                &valgrind,
                &options.tokenizer_path,
                "real",
                payload,
                variant,
            )
            .map_err(|e| format!("instruction counts were NOT compared: {which}: {e}"))
        };
        let base = count(base_exe, "base")?;
        let head = count(head_exe, "head")?;
        changes.push(Counted {
            change: instruction_change(
                benchmark,
                base.total_ir,
                head.total_ir,
                INSTRUCTION_THRESHOLD,
            ),
            base,
            head,
        });
    }
    Ok(changes)
}

/// What `git bisect run` is told about one commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    Good,
    Bad,
    Skip,
}

impl StepOutcome {
    /// The exit code `git bisect run` reads.
    pub fn exit_code(self) -> u8 {
        match self {
            StepOutcome::Good => 0,
            StepOutcome::Bad => 1,
            StepOutcome::Skip => 125,
        }
    }

    /// Bad when a benchmark regressed; skip when one stayed undecided
    /// whether it regressed and none did; good otherwise (unchanged,
    /// improved, or undecided only by how much faster it is).
    pub fn of(comparison: &BuildComparison) -> Self {
        let undecided = |c: &builds::BenchmarkChange| {
            c.verdict == BuildVerdict::Inconclusive && !c.rules_out_a_regression()
        };
        match builds::overall(&comparison.changes) {
            BuildVerdict::Regression => StepOutcome::Bad,
            BuildVerdict::Inconclusive if comparison.changes.iter().any(undecided) => {
                StepOutcome::Skip
            }
            _ => StepOutcome::Good,
        }
    }
}

/// One commit tested during a bisection, with its evidence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BisectStep {
    pub commit: String,
    pub subject: String,
    pub outcome: StepOutcome,
    /// Why it was skipped (a failed build), or the comparison's verdict.
    pub reason: String,
    /// The comparison against the good commit, when it was measured.
    #[serde(default)]
    pub evidence: Vec<EvidenceRow>,
    /// Where the instructions went in each benchmark that regressed (when
    /// instructions were counted).
    #[serde(default)]
    pub profile_diffs: Vec<BuildDiff>,
}

/// A change as the bisection keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvidenceRow {
    pub benchmark: String,
    pub base: Option<f64>,
    pub head: Option<f64>,
    pub change: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub pairs: usize,
    pub verdict: String,
    pub note: Option<String>,
}

impl From<&BenchmarkChange> for EvidenceRow {
    fn from(c: &BenchmarkChange) -> Self {
        Self {
            benchmark: c.benchmark.clone(),
            base: c.base,
            head: c.head,
            change: c.change,
            low: c.low,
            high: c.high,
            pairs: c.pairs,
            verdict: c.verdict.label().to_owned(),
            note: c.note.clone(),
        }
    }
}

/// Tests the commit checked out in `builds.repo` against `good`: builds it
/// (a build that fails is skipped), compares time per call, and records
/// the step in `evidence_dir`.
pub fn bisect_step(
    builds: &Builds,
    good: &str,
    evidence_dir: &Path,
    options: &CompareOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<BisectStep, CompareError> {
    let commit = builds.resolve("HEAD")?;
    let subject = builds.subject(&commit)?;
    let step = match compare(builds, good, &commit, options, progress) {
        Ok(comparison) => BisectStep {
            outcome: StepOutcome::of(&comparison),
            reason: format!(
                "{} against {}",
                comparison.verdict.label(),
                crate::render::short_commit(good)
            ),
            evidence: comparison.changes.iter().map(EvidenceRow::from).collect(),
            profile_diffs: comparison.profile_diffs,
            commit,
            subject,
        },
        Err(CompareError::Build(
            error @ (BuildError::Failed { .. } | BuildError::PredatesProtocol(_)),
        )) => BisectStep {
            outcome: StepOutcome::Skip,
            reason: error.to_string(),
            evidence: Vec::new(),
            profile_diffs: Vec::new(),
            commit,
            subject,
        },
        Err(other) => return Err(other),
    };
    let path = evidence_dir.join(format!("{}.json", step.commit));
    let text = serde_json::to_string_pretty(&step).expect("a step serializes");
    std::fs::write(&path, text)
        .map_err(|e| CompareError::Bisect(format!("cannot write {}: {e}", path.display())))?;
    Ok(step)
}

/// The result of a bisection.
#[derive(Clone, Debug, Serialize)]
pub struct Bisection {
    pub good: String,
    pub bad: String,
    /// The first bad commit, when the bisection found one.
    pub first_bad: Option<BisectStep>,
    /// What the bad commit itself measured against the good one.
    pub bad_step: BisectStep,
    /// Every commit tested, in order.
    pub steps: Vec<BisectStep>,
    /// Why no first bad commit was named, if none was.
    pub undecided: Option<String>,
}

/// The hidden subcommand `git bisect run` runs for each commit.
pub const STEP_SUBCOMMAND: &str = "bisect-step";

/// Finds the first commit between `good` and `bad` (full hashes) that
/// regresses against `good`: checks that `bad` does, then runs
/// `git bisect run <exe> bisect-step ...` in a worktree of its own (the
/// user's checkout is not touched). `exe` is this perfwarden.
pub fn bisect(
    builds: &Builds,
    good: &str,
    bad: &str,
    exe: &Path,
    metric: &str,
    options: &CompareOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Bisection, CompareError> {
    options.benchmarks()?;
    if git(&builds.repo, &["merge-base", "--is-ancestor", good, bad]).is_err() {
        return Err(CompareError::Bisect(format!(
            "{good} is not an ancestor of {bad}: give the good commit first, then a later bad one"
        )));
    }
    // The good commit must build: every step is compared with it.
    builds.binary(good, progress)?;
    let state = builds.cache_dir().join(format!("bisect-{good}-{bad}"));
    let evidence_dir = state.join("evidence");
    let worktree = state.join("tree");
    let _ = std::fs::remove_dir_all(&state);
    let _ = git(&builds.repo, &["worktree", "prune"]);
    std::fs::create_dir_all(&evidence_dir).map_err(|e| {
        CompareError::Bisect(format!("cannot create {}: {e}", evidence_dir.display()))
    })?;
    let worktree_arg = worktree.display().to_string();
    git(
        &builds.repo,
        &["worktree", "add", "--detach", "--force", &worktree_arg, bad],
    )?;
    let result = bisect_in(
        builds,
        &worktree,
        &evidence_dir,
        (good, bad),
        exe,
        metric,
        options,
        progress,
    );
    let _ = git(&worktree, &["bisect", "reset"]);
    let _ = git(
        &builds.repo,
        &["worktree", "remove", "--force", &worktree_arg],
    );
    let _ = git(&builds.repo, &["worktree", "prune"]);
    let _ = std::fs::remove_dir_all(&state);
    result
}

#[allow(clippy::too_many_arguments)]
fn bisect_in(
    builds: &Builds,
    worktree: &Path,
    evidence_dir: &Path,
    (good, bad): (&str, &str),
    exe: &Path,
    metric: &str,
    options: &CompareOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Bisection, CompareError> {
    let in_worktree = Builds {
        repo: worktree.to_path_buf(),
        target_dir: builds.target_dir.clone(),
    };
    progress(Progress::Stage {
        index: 1,
        total: 2,
        name: &format!("the bad commit {bad} against the good one"),
    });
    let bad_step = bisect_step(&in_worktree, good, evidence_dir, options, progress)?;
    let mut bisection = Bisection {
        good: good.to_owned(),
        bad: bad.to_owned(),
        first_bad: None,
        bad_step: bad_step.clone(),
        steps: Vec::new(),
        undecided: None,
    };
    if bad_step.outcome != StepOutcome::Bad {
        bisection.undecided = Some(format!(
            "the bad commit does not regress against the good one ({}): nothing to bisect",
            bad_step.reason
        ));
        return Ok(bisection);
    }
    progress(Progress::Stage {
        index: 2,
        total: 2,
        name: "git bisect run",
    });
    git(worktree, &["bisect", "start", bad, good])?;
    let mut command = std::process::Command::new("git");
    command
        .current_dir(worktree)
        .args(["bisect", "run"])
        .arg(exe)
        .arg(STEP_SUBCOMMAND)
        .arg("--good")
        .arg(good)
        .arg("--evidence")
        .arg(evidence_dir)
        .arg("--metric")
        .arg(metric)
        // The step's --threshold is in percent, as the user's.
        .arg("--threshold")
        .arg((options.threshold * 100.0).to_string())
        .env("PERFWARDEN_TOKENIZER", &options.tokenizer_path)
        .env("CARGO_TARGET_DIR", &builds.target_dir);
    if options.quick {
        command.arg("--quick");
    }
    for benchmark in &options.benchmarks {
        command.arg("--benchmark").arg(benchmark);
    }
    let mut output = Vec::new();
    let ran = crate::measure::run::run_tool(command, "git bisect run", &mut |event| {
        if let Progress::Output(line) = &event {
            output.push((*line).to_owned());
        }
        progress(event)
    });
    // `git bisect run` names the first bad commit, or the commits it
    // could be when skipped ones hide it.
    let first_bad = output
        .iter()
        .find_map(|line| line.strip_suffix(" is the first bad commit"))
        .map(str::to_owned);
    bisection.steps = read_steps(evidence_dir);
    match first_bad {
        Some(commit) => {
            bisection.first_bad = bisection
                .steps
                .iter()
                .chain([&bad_step])
                .find(|s| s.commit == commit)
                .cloned();
            if bisection.first_bad.is_none() {
                return Err(CompareError::Bisect(format!(
                    "git bisect named {commit}, which perfwarden did not test"
                )));
            }
        }
        None => {
            let tail: Vec<&str> = output
                .iter()
                .rev()
                .take(8)
                .rev()
                .map(String::as_str)
                .collect();
            bisection.undecided = Some(match ran {
                Ok(()) => format!("git bisect named no first bad commit:\n{}", tail.join("\n")),
                Err(error) => format!("git bisect run stopped: {error}"),
            });
        }
    }
    Ok(bisection)
}

/// The steps recorded in `evidence_dir`, in the order they were taken.
fn read_steps(evidence_dir: &Path) -> Vec<BisectStep> {
    let mut steps: Vec<(std::time::SystemTime, BisectStep)> = std::fs::read_dir(evidence_dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            let text = std::fs::read_to_string(entry.path()).ok()?;
            Some((modified, serde_json::from_str(&text).ok()?))
        })
        .collect();
    steps.sort_by_key(|(modified, _)| *modified);
    steps.into_iter().map(|(_, step)| step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A comparison of wall-clock changes with these intervals, threshold 5%.
    fn comparison(intervals: &[(f64, f64)]) -> BuildComparison {
        let changes: Vec<BenchmarkChange> = intervals
            .iter()
            .map(|&(low, high)| BenchmarkChange {
                low: Some(low),
                high: Some(high),
                change: Some((low + high) / 2.0),
                verdict: builds::classify(low, high, 0.05),
                ..wall_clock_change("large/sync", &[1.0; 12], &[1.0; 12], 0.05, 0.95)
            })
            .collect();
        BuildComparison::of_changes(changes, Looks { taken: 4, max: 4 })
    }

    #[test]
    fn a_step_is_skipped_only_while_a_regression_is_still_possible() {
        let step = |intervals: &[(f64, f64)]| StepOutcome::of(&comparison(intervals));
        assert_eq!(step(&[(-0.01, 0.01)]), StepOutcome::Good);
        assert_eq!(step(&[(0.06, 0.09)]), StepOutcome::Bad);
        // Undecided only by how much faster: no regression.
        assert_eq!(step(&[(-0.0571, 0.0019), (-0.01, 0.01)]), StepOutcome::Good);
        // A regression is still possible in one benchmark.
        assert_eq!(step(&[(-0.0571, 0.0019), (0.03, 0.08)]), StepOutcome::Skip);
        assert_eq!(step(&[(-0.10, 0.10)]), StepOutcome::Skip);
        // A regression anywhere decides.
        assert_eq!(step(&[(-0.10, 0.10), (0.06, 0.09)]), StepOutcome::Bad);
    }
}
