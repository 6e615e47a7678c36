//! Where to publish: the repository, pull request and commit, read from the
//! standard GitHub Actions environment.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::PublishError;

/// The API root used when `GITHUB_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The web root used when `GITHUB_SERVER_URL` is not set.
pub const DEFAULT_SERVER_URL: &str = "https://github.com";
/// The first retry waits this long; each further one twice as long.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(1000);

/// Read from the standard GitHub Actions environment.
///
/// `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct GithubContext {
    /// `GITHUB_API_URL` without a trailing slash, e.g. `https://api.github.com`
    /// or, on GitHub Enterprise Server, `https://ghe.example.com/api/v3`.
    pub api_url: String,
    /// `GITHUB_TOKEN`; `None` when unset or empty.
    pub token: Option<String>,
    /// `owner/name`.
    pub repository: String,
    /// The pull request, from the event payload; `None` on push events.
    pub pr_number: Option<u64>,
    /// The commit the check run is attached to: the pull request's head, else
    /// `GITHUB_SHA`.
    pub head_sha: Option<String>,
    /// The pull request's base commit, from the event payload.
    pub base_sha: Option<String>,
    /// `GITHUB_SERVER_URL` without a trailing slash.
    pub server_url: String,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_STEP_SUMMARY`: the job summary file, the fallback when GitHub
    /// refuses to take the comment or the check run.
    pub step_summary: Option<PathBuf>,
    /// `PERFWARDEN_GITHUB_RETRY_BASE_MS`: the first retry's delay (default 1 s).
    pub retry_base: Duration,
    /// `PERFWARDEN_COMMENT_AUTHOR`: the login perfwarden posts as, e.g.
    /// `my-app[bot]` for a GitHub App's token. Unset: the authenticated user
    /// (`GET /user`), or `github-actions[bot]` for a workflow's `GITHUB_TOKEN`
    /// (which may not read `/user`). Only its comments are ever edited.
    pub comment_author: Option<String>,
}

impl GithubContext {
    /// `GITHUB_API_URL` (default https://api.github.com), `GITHUB_TOKEN`,
    /// `GITHUB_REPOSITORY`, `GITHUB_EVENT_PATH` (the pull request's number,
    /// head and base commits; for other events `GITHUB_SHA` is the head),
    /// `GITHUB_SERVER_URL`, `GITHUB_RUN_ID`, `GITHUB_STEP_SUMMARY` and
    /// `PERFWARDEN_GITHUB_RETRY_BASE_MS` and `PERFWARDEN_COMMENT_AUTHOR`, from
    /// the process environment.
    pub fn from_env() -> Result<Self, PublishError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Same as [`GithubContext::from_env`], from an explicit lookup (for tests
    /// and for `perfwarden publish`). Empty values count as unset.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, PublishError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let api_url = get("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let api_url = checked_url("GITHUB_API_URL", &api_url)?;
        let server_url = get("GITHUB_SERVER_URL").unwrap_or_else(|| DEFAULT_SERVER_URL.to_string());
        let server_url = checked_url("GITHUB_SERVER_URL", &server_url)?;

        let repository = get("GITHUB_REPOSITORY").ok_or(PublishError::MissingVariable {
            name: "GITHUB_REPOSITORY",
            hint: "set it to owner/name (GitHub Actions sets it for every job)",
        })?;
        if split_repository(&repository).is_none() {
            return Err(PublishError::InvalidVariable {
                name: "GITHUB_REPOSITORY",
                value: repository,
                reason: "expected owner/name, e.g. octo-org/octo-repo".into(),
            });
        }

        let mut pr_number = None;
        let mut head_sha = None;
        let mut base_sha = None;
        if let Some(path) = get("GITHUB_EVENT_PATH") {
            let path = PathBuf::from(path);
            let event = read_event(&path)?;
            if let Some(pr) = event.get("pull_request").filter(|pr| !pr.is_null()) {
                let number = pr.get("number").and_then(|n| n.as_u64()).ok_or_else(|| {
                    PublishError::EventPayload {
                        path: path.clone(),
                        reason: "it has a pull_request without a numeric number".into(),
                    }
                })?;
                pr_number = Some(number);
                head_sha = sha_at(pr, "head");
                base_sha = sha_at(pr, "base");
            }
        }
        if head_sha.is_none() {
            head_sha = get("GITHUB_SHA");
        }

        let retry_base = match get("PERFWARDEN_GITHUB_RETRY_BASE_MS") {
            None => DEFAULT_RETRY_BASE,
            Some(text) => Duration::from_millis(text.parse::<u64>().map_err(|_| {
                PublishError::InvalidVariable {
                    name: "PERFWARDEN_GITHUB_RETRY_BASE_MS",
                    value: text.clone(),
                    reason: "expected a whole number of milliseconds".into(),
                }
            })?),
        };

        Ok(Self {
            api_url,
            token: get("GITHUB_TOKEN"),
            repository,
            pr_number,
            head_sha,
            base_sha,
            server_url,
            run_id: get("GITHUB_RUN_ID"),
            step_summary: get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            retry_base,
            comment_author: get("PERFWARDEN_COMMENT_AUTHOR"),
        })
    }

    /// The workflow run's page, where its artifacts are:
    /// `{server_url}/{repository}/actions/runs/{run_id}`.
    pub fn artifact_url(&self) -> Option<String> {
        self.run_id.as_ref().map(|run| {
            format!(
                "{}/{}/actions/runs/{run}",
                self.server_url.trim_end_matches('/'),
                self.repository
            )
        })
    }

    /// `(owner, name)`.
    pub(crate) fn owner_and_name(&self) -> Result<(&str, &str), PublishError> {
        split_repository(&self.repository).ok_or_else(|| PublishError::InvalidVariable {
            name: "GITHUB_REPOSITORY",
            value: self.repository.clone(),
            reason: "expected owner/name, e.g. octo-org/octo-repo".into(),
        })
    }
}

impl fmt::Debug for GithubContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubContext")
            .field("api_url", &self.api_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("repository", &self.repository)
            .field("pr_number", &self.pr_number)
            .field("head_sha", &self.head_sha)
            .field("base_sha", &self.base_sha)
            .field("server_url", &self.server_url)
            .field("run_id", &self.run_id)
            .field("step_summary", &self.step_summary)
            .field("retry_base", &self.retry_base)
            .field("comment_author", &self.comment_author)
            .finish()
    }
}

fn checked_url(name: &'static str, value: &str) -> Result<String, PublishError> {
    let trimmed = value.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !rest.contains(char::is_whitespace) => {
            Ok(trimmed.to_string())
        }
        _ => Err(PublishError::InvalidVariable {
            name,
            value: value.to_string(),
            reason: "expected an http(s) URL such as https://api.github.com or https://ghe.example.com/api/v3".into(),
        }),
    }
}

fn split_repository(repository: &str) -> Option<(&str, &str)> {
    let (owner, name) = repository.split_once('/')?;
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (valid(owner) && valid(name)).then_some((owner, name))
}

fn read_event(path: &PathBuf) -> Result<serde_json::Value, PublishError> {
    let text = std::fs::read_to_string(path).map_err(|e| PublishError::EventPayload {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| PublishError::EventPayload {
        path: path.clone(),
        reason: format!("it is not valid JSON: {e}"),
    })
}

fn sha_at(pr: &serde_json::Value, side: &str) -> Option<String> {
    pr.get(side)
        .and_then(|s| s.get("sha"))
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
