//! Publishing a report to GitHub: a sticky pull-request comment and a check
//! run, through octocrab.
//!
//! - The comment carries a hidden marker, `<!-- perfwarden:{contract} -->`, on
//!   its first line. Every publish lists all of the pull request's comments,
//!   edits in place the one with the marker that perfwarden itself wrote (the
//!   token's login: `PERFWARDEN_COMMENT_AUTHOR`, the authenticated user, or
//!   `github-actions[bot]` for a workflow's token), and creates it only when
//!   there is none, so a pull request has at most one perfwarden comment per
//!   contract. Anyone else's comment is never edited, whatever it starts with.
//!   The comment is the whole report; its marker names the report's first
//!   contract.
//! - Every publish creates one check run per contract, `perfwarden /
//!   {contract}`, on the head commit, completed, with that contract's verdict
//!   as its conclusion.
//! - `GITHUB_API_URL` is honoured, GitHub Enterprise path prefixes included.
//! - When GitHub refuses to write (HTTP 403, e.g. the read-only token of a pull
//!   request from a fork) or there is no token, the body goes to the job
//!   summary (`GITHUB_STEP_SUMMARY`) instead and [`publish`] still succeeds: the
//!   caller's exit code follows the verdict, not the posting.
//! - Server errors (5xx), rate limits and transport errors are retried with
//!   exponential backoff; a comment creation that may have landed is checked
//!   by listing again before it is retried.

mod client;
mod context;

use std::io::Write;
use std::path::PathBuf;

pub use context::{DEFAULT_API_URL, DEFAULT_RETRY_BASE, DEFAULT_SERVER_URL, GithubContext};

use client::{Client, Failure};

use crate::judge::verdict::{ContractVerdict, Status};

/// GitHub's limit on an issue comment's body, in characters.
pub const COMMENT_LIMIT: usize = 65_536;
/// GitHub's limit on a check run's `output.summary`, in characters.
pub const CHECK_SUMMARY_LIMIT: usize = 65_535;
/// Tries per request: the first and two retries.
pub const ATTEMPTS: u32 = 3;

/// What to publish, produced by the render stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The pull-request comment body (perfwarden's summary.md); [`publish`]
    /// adds the hidden marker.
    pub body_markdown: String,
    /// The report's first contract, e.g. `performance-001`: the comment's
    /// marker derives from it.
    pub contract: String,
    /// One per contract.
    pub checks: Vec<CheckRun>,
}

/// One contract's check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    /// The contract, e.g. `performance-001`: the check run's name derives from it.
    pub contract: String,
    /// e.g. `performance-001: PASS (3/3 cases)`.
    pub title: String,
    pub conclusion: Conclusion,
}

impl CheckRun {
    /// The check run of a contract's verdict; a regression against the base
    /// fails every contract's check, as it fails the job.
    pub fn of(verdict: &ContractVerdict, regressed: bool) -> Self {
        let passed = verdict
            .cases
            .iter()
            .filter(|c| c.status == Status::Pass)
            .count();
        Self {
            contract: verdict.contract.clone(),
            title: format!(
                "{}: {} ({passed}/{} cases){}",
                verdict.contract,
                verdict.status.label(),
                verdict.cases.len(),
                if regressed {
                    ", regression against the base"
                } else {
                    ""
                }
            ),
            conclusion: Conclusion::of(verdict.status, regressed),
        }
    }
}

/// The check run's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    Success,
    Failure,
    Neutral,
}

impl Conclusion {
    /// Success when the verdict passes and nothing regressed, failure when
    /// it fails or something regressed, neutral when it is inconclusive.
    pub fn of(status: Status, regressed: bool) -> Self {
        match status {
            Status::Fail => Conclusion::Failure,
            _ if regressed => Conclusion::Failure,
            Status::Pass => Conclusion::Success,
            Status::Inconclusive => Conclusion::Neutral,
        }
    }

    /// GitHub's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::Neutral => "neutral",
        }
    }
}

/// What happened to the pull-request comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentAction {
    /// A new comment, with its id.
    Created(u64),
    /// The existing comment, edited in place.
    Updated(u64),
    /// No comment: no pull request (a push event), or GitHub refused it (see
    /// [`PublishOutcome::fell_back_to_step_summary`]).
    Skipped,
}

/// What [`publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    pub comment: CommentAction,
    /// The check runs created, one per contract GitHub accepted.
    pub check_run_ids: Vec<u64>,
    /// Why the body went to the job summary, when it did.
    pub fell_back_to_step_summary: Option<String>,
}

/// Why publishing failed. The messages say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    #[error("{name} is not set: {hint}")]
    MissingVariable {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name} is invalid ({value:?}): {reason}")]
    InvalidVariable {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "cannot use the GitHub event payload {} (GITHUB_EVENT_PATH): {reason}",
        path.display()
    )]
    EventPayload { path: PathBuf, reason: String },
    #[error("cannot set up a GitHub client for {api_url}: {reason}; check GITHUB_API_URL")]
    Client { api_url: String, reason: String },
    #[error(
        "pull request #{number} not found in {repository}: check GITHUB_REPOSITORY and the event payload, and that the token can read the repository"
    )]
    PullRequestNotFound { number: u64, repository: String },
    #[error(
        "GitHub rejected the token while {action} ({detail}): set GITHUB_TOKEN to a valid, unexpired token (in a workflow: GITHUB_TOKEN: ${{{{ github.token }}}})"
    )]
    Unauthorized { action: String, detail: String },
    #[error("GitHub API error while {action}: {detail}")]
    Api { action: String, detail: String },
    #[error(
        "could not publish to GitHub ({reason}), and there is no job summary to fall back to (GITHUB_STEP_SUMMARY is not set): give the job a token with pull-requests: write and checks: write, or run inside GitHub Actions"
    )]
    NoFallback { reason: String },
    #[error(
        "could not publish to GitHub ({reason}), and appending the report to the job summary {} failed too: {source}",
        path.display()
    )]
    StepSummary {
        path: PathBuf,
        reason: String,
        #[source]
        source: std::io::Error,
    },
}

/// The hidden marker that identifies the contract's comment.
pub fn marker(contract: &str) -> String {
    format!("<!-- perfwarden:{} -->", marker_safe(contract))
}

/// The check run's name: `perfwarden / {contract}`.
pub fn check_name(contract: &str) -> String {
    format!("perfwarden / {contract}")
}

/// The comment body as posted: the marker on the first line, then the body,
/// cut to GitHub's limit with a note when it is longer.
pub fn comment_body(ctx: &GithubContext, publication: &Publication) -> String {
    let marker = marker(&publication.contract);
    let body = publication.body_markdown.trim_start_matches('\u{feff}');
    let body = body
        .strip_prefix(marker.as_str())
        .map(|rest| rest.trim_start_matches(['\r', '\n']))
        .unwrap_or(body);
    let full = format!("{marker}\n{body}");
    truncate(&full, COMMENT_LIMIT, ctx, "comments")
}

/// The check run's summary: the body, cut to GitHub's limit with a note when
/// it is longer.
pub fn check_summary(ctx: &GithubContext, publication: &Publication) -> String {
    truncate(
        &publication.body_markdown,
        CHECK_SUMMARY_LIMIT,
        ctx,
        "check run summaries",
    )
}

/// Posts `publication`: the sticky pull-request comment (when there is a pull
/// request) and a check run on the head commit (when it is known). Falls back
/// to the job summary when GitHub refuses to write or there is no token.
pub async fn publish(
    ctx: &GithubContext,
    publication: &Publication,
) -> Result<PublishOutcome, PublishError> {
    let (owner, name) = ctx.owner_and_name()?;
    let Some(token) = ctx.token.as_deref() else {
        let reason = "GITHUB_TOKEN is not set, so nothing can be posted to GitHub".to_string();
        return fall_back(ctx, publication, CommentAction::Skipped, Vec::new(), reason);
    };
    let client = Client::new(ctx, owner, name, token)?;
    let mut refused: Vec<String> = Vec::new();

    let comment = match ctx.pr_number {
        None => CommentAction::Skipped,
        Some(number) => {
            let body = comment_body(ctx, publication);
            let posted = match client.identity().await {
                Ok(author) => {
                    client
                        .upsert_comment(number, &marker(&publication.contract), &author, &body)
                        .await
                }
                Err(failure) => Err(failure),
            };
            match posted {
                Ok(action) => action,
                Err((action, Failure::Forbidden(detail))) => {
                    refused.push(format!("{action} was refused ({detail})"));
                    CommentAction::Skipped
                }
                Err((_, Failure::PullRequestMissing(_))) => {
                    return Err(PublishError::PullRequestNotFound {
                        number,
                        repository: ctx.repository.clone(),
                    });
                }
                Err((action, failure)) => return Err(client.error(action, failure)),
            }
        }
    };

    let mut check_run_ids = Vec::new();
    if let Some(sha) = ctx.head_sha.as_deref() {
        for check in &publication.checks {
            let request = serde_json::json!({
                "name": check_name(&check.contract),
                "head_sha": sha,
                "status": "completed",
                "conclusion": check.conclusion.as_str(),
                "details_url": ctx.artifact_url(),
                "output": {
                    "title": check.title,
                    "summary": check_summary(ctx, publication),
                },
            });
            let request = strip_nulls(request);
            match client.create_check_run(&request).await {
                Ok(id) => check_run_ids.push(id),
                Err((action, Failure::Forbidden(detail))) => {
                    refused.push(format!("{action} was refused ({detail})"));
                    break;
                }
                Err((action, failure)) => return Err(client.error(action, failure)),
            }
        }
    }

    if refused.is_empty() {
        return Ok(PublishOutcome {
            comment,
            check_run_ids,
            fell_back_to_step_summary: None,
        });
    }
    let reason = format!(
        "GitHub refused to write with this token: {}. The token is read-only for pull requests from forks; otherwise give the job pull-requests: write and checks: write permissions",
        refused.join("; ")
    );
    fall_back(ctx, publication, comment, check_run_ids, reason)
}

/// Appends the body and `reason` to the job summary.
fn fall_back(
    ctx: &GithubContext,
    publication: &Publication,
    comment: CommentAction,
    check_run_ids: Vec<u64>,
    reason: String,
) -> Result<PublishOutcome, PublishError> {
    let Some(path) = ctx.step_summary.clone() else {
        return Err(PublishError::NoFallback { reason });
    };
    let text = format!(
        "{}\n\n> perfwarden could not post this report to GitHub: {reason}\n\n",
        publication.body_markdown.trim_end()
    );
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    match written {
        Ok(()) => Ok(PublishOutcome {
            comment,
            check_run_ids,
            fell_back_to_step_summary: Some(reason),
        }),
        Err(source) => Err(PublishError::StepSummary {
            path,
            reason,
            source,
        }),
    }
}

/// Cuts `text` to at most `limit` characters, ending with a note that says
/// where the rest is.
fn truncate(text: &str, limit: usize, ctx: &GithubContext, what: &str) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let where_ = match ctx.artifact_url() {
        Some(url) => format!("the full report is in the run's artifacts: {url}"),
        None => "the full report is in the run's reports/ directory".to_string(),
    };
    let note = format!("\n\n*… truncated: GitHub limits {what} to {limit} characters; {where_}*");
    let keep = limit.saturating_sub(note.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&note);
    out
}

/// The contract as it may appear inside an HTML comment.
fn marker_safe(contract: &str) -> String {
    let mut safe: String = contract
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while safe.contains("--") {
        safe = safe.replace("--", "-");
    }
    safe
}

fn strip_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> GithubContext {
        GithubContext::from_vars(|name| match name {
            "GITHUB_REPOSITORY" => Some("o/r".into()),
            "GITHUB_RUN_ID" => Some("42".into()),
            _ => None,
        })
        .unwrap()
    }

    fn publication(body: &str) -> Publication {
        Publication {
            body_markdown: body.into(),
            contract: "performance-001".into(),
            checks: Vec::new(),
        }
    }

    #[test]
    fn conclusions_follow_the_verdict_and_regressions() {
        assert_eq!(Conclusion::of(Status::Pass, false), Conclusion::Success);
        assert_eq!(Conclusion::of(Status::Pass, true), Conclusion::Failure);
        assert_eq!(Conclusion::of(Status::Fail, false), Conclusion::Failure);
        assert_eq!(
            Conclusion::of(Status::Inconclusive, false),
            Conclusion::Neutral
        );
        assert_eq!(
            Conclusion::of(Status::Inconclusive, true),
            Conclusion::Failure
        );
    }

    #[test]
    fn marker_is_on_the_first_line_once() {
        let body = comment_body(&ctx(), &publication("# Report\n"));
        assert_eq!(body, "<!-- perfwarden:performance-001 -->\n# Report\n");
        let again = comment_body(&ctx(), &publication(&body));
        assert_eq!(again, body);
    }

    #[test]
    fn marker_cannot_close_the_html_comment() {
        assert_eq!(marker("a-->b c"), "<!-- perfwarden:a-_b_c -->");
        assert_eq!(marker("a---b"), "<!-- perfwarden:a-b -->");
        assert_eq!(
            marker("performance-001"),
            "<!-- perfwarden:performance-001 -->"
        );
    }

    #[test]
    fn long_bodies_are_cut_to_the_limits_with_a_note() {
        let long = "é".repeat(70_000);
        let summary = check_summary(&ctx(), &publication(&long));
        assert_eq!(summary.chars().count(), CHECK_SUMMARY_LIMIT);
        assert!(
            summary.contains("truncated"),
            "{}",
            &summary[summary.len() - 200..]
        );
        assert!(summary.ends_with("https://github.com/o/r/actions/runs/42*"));
        let comment = comment_body(&ctx(), &publication(&long));
        assert_eq!(comment.chars().count(), COMMENT_LIMIT);
        assert!(comment.starts_with("<!-- perfwarden:performance-001 -->\n"));
    }
}
