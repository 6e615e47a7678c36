//! The GitHub calls publishing needs, through octocrab, with perfwarden's own
//! retries (octocrab's are turned off so that every request is counted and a
//! comment is never created twice).

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use octocrab::Octocrab;
use octocrab::Page;
use octocrab::service::middleware::retry::RetryConfig;
use serde::Deserialize;

use super::{ATTEMPTS, CommentAction, GithubContext, PublishError};

/// The longest wait for a rate limit to pass before giving up.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// How a request failed, once retries are over.
#[derive(Debug)]
pub(crate) enum Failure {
    /// 5xx, rate limits, transport errors: worth another try. `wait` is what
    /// GitHub asked for; `may_have_landed` is true when GitHub may have done
    /// the work without saying so (server errors, lost connections).
    Retryable {
        detail: String,
        wait: Option<Duration>,
        may_have_landed: bool,
    },
    /// 403 that is not a rate limit: the token may not do this.
    Forbidden(String),
    NotFound(String),
    /// 404 while listing a pull request's comments.
    PullRequestMissing(String),
    Unauthorized(String),
    Other(String),
}

/// The login a workflow's `GITHUB_TOKEN` posts as.
const ACTIONS_BOT: &str = "github-actions[bot]";

/// The fields of an issue comment that publishing reads.
#[derive(Debug, Clone, Deserialize)]
struct IssueComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
struct User {
    login: String,
}

/// A created resource's id.
#[derive(Debug, Deserialize)]
struct Created {
    id: u64,
}

pub(crate) struct Client<'a> {
    octo: Octocrab,
    owner: &'a str,
    name: &'a str,
    token: &'a str,
    api_url: &'a str,
    retry_base: Duration,
    comment_author: Option<&'a str>,
}

type Outcome<T> = Result<T, (String, Failure)>;

impl<'a> Client<'a> {
    /// Must be called inside a Tokio runtime.
    pub(crate) fn new(
        ctx: &'a GithubContext,
        owner: &'a str,
        name: &'a str,
        token: &'a str,
    ) -> Result<Self, PublishError> {
        let client_error = |reason: String| PublishError::Client {
            api_url: ctx.api_url.clone(),
            reason: redact(&reason, token),
        };
        let octo = Octocrab::builder()
            .base_uri(ctx.api_url.as_str())
            .map_err(|e| client_error(format!("it is not a valid URL ({e})")))?
            .personal_token(token.to_string())
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(15)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .set_write_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| client_error(describe(&e)))?;
        Ok(Self {
            octo,
            owner,
            name,
            token,
            api_url: &ctx.api_url,
            retry_base: ctx.retry_base,
            comment_author: ctx.comment_author.as_deref(),
        })
    }

    /// The login perfwarden posts as: `PERFWARDEN_COMMENT_AUTHOR`, else the
    /// authenticated user, else (a workflow's token may not read `/user`)
    /// `github-actions[bot]`.
    pub(crate) async fn identity(&self) -> Outcome<String> {
        if let Some(login) = self.comment_author {
            return Ok(login.to_string());
        }
        let user: Result<User, Failure> =
            self.retrying(|| self.octo.get("/user", None::<&()>)).await;
        match user {
            Ok(user) => Ok(user.login),
            Err(Failure::Forbidden(_) | Failure::NotFound(_)) => Ok(ACTIONS_BOT.to_string()),
            Err(failure) => Err((
                "finding out which user the token belongs to".to_string(),
                failure,
            )),
        }
    }

    /// Edits perfwarden's own comment that starts with `marker` (written by
    /// `author`) in place, or creates it. Comments by anyone else are never
    /// touched, whatever they start with.
    pub(crate) async fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        author: &str,
        body: &str,
    ) -> Outcome<CommentAction> {
        if let Some(existing) = self.find_comment(number, marker, author).await? {
            match self.edit_comment(existing.id, body).await {
                Ok(()) => return Ok(CommentAction::Updated(existing.id)),
                // Deleted since it was listed, or no longer editable with
                // this token: post a new one.
                Err((_, Failure::NotFound(_) | Failure::Forbidden(_))) => {}
                Err(failure) => return Err(failure),
            }
        }
        self.create_comment(number, marker, author, body).await
    }

    /// Creates the check run described by `request`; returns its id.
    pub(crate) async fn create_check_run(&self, request: &serde_json::Value) -> Outcome<u64> {
        let route = format!("/repos/{}/{}/check-runs", self.owner, self.name);
        let created: Created = self
            .retrying(|| self.octo.post(&route, Some(request)))
            .await
            .map_err(|f| ("creating the check run".to_string(), f))?;
        Ok(created.id)
    }

    /// The error to report for `failure` during `action`.
    pub(crate) fn error(&self, action: String, failure: Failure) -> PublishError {
        match failure {
            Failure::Unauthorized(detail) => PublishError::Unauthorized { action, detail },
            Failure::NotFound(detail) => PublishError::Api {
                action,
                detail: format!(
                    "{detail}; check GITHUB_REPOSITORY ({}/{}) and GITHUB_API_URL ({}), and that the token can read the repository",
                    self.owner, self.name, self.api_url
                ),
            },
            Failure::Retryable { detail, .. } => PublishError::Api {
                action,
                detail: format!(
                    "{detail}; still failing after {ATTEMPTS} attempts: re-run the job later"
                ),
            },
            Failure::Forbidden(detail)
            | Failure::PullRequestMissing(detail)
            | Failure::Other(detail) => PublishError::Api { action, detail },
        }
    }

    /// The oldest comment on pull request `number` written by `author` whose
    /// first line is `marker`, following the pagination until it is found.
    async fn find_comment(
        &self,
        number: u64,
        marker: &str,
        author: &str,
    ) -> Outcome<Option<IssueComment>> {
        let action = || format!("listing the comments of pull request #{number}");
        let failed = |failure| match failure {
            Failure::NotFound(detail) => (action(), Failure::PullRequestMissing(detail)),
            other => (action(), other),
        };
        let route = format!(
            "/repos/{}/{}/issues/{number}/comments",
            self.owner, self.name
        );
        let query = [("per_page", "100")];
        let mut page: Page<IssueComment> = self
            .retrying(|| self.octo.get(&route, Some(&query)))
            .await
            .map_err(failed)?;
        loop {
            if let Some(found) = page
                .items
                .iter()
                .find(|c| written_by(c, author) && has_marker(c, marker))
            {
                return Ok(Some(found.clone()));
            }
            let Some(next) = page.next.as_ref().map(|uri| uri.to_string()) else {
                return Ok(None);
            };
            page = self
                .retrying(|| self.octo.get(&next, None::<&()>))
                .await
                .map_err(failed)?;
        }
    }

    async fn edit_comment(&self, id: u64, body: &str) -> Outcome<()> {
        let route = format!("/repos/{}/{}/issues/comments/{id}", self.owner, self.name);
        let payload = serde_json::json!({ "body": body });
        let _: Created = self
            .retrying(|| self.octo.patch(&route, Some(&payload)))
            .await
            .map_err(|f| (format!("editing comment {id}"), f))?;
        Ok(())
    }

    /// Creates the comment. A creation that failed in a way that may still
    /// have created it (5xx, lost connection) is followed by a new listing
    /// before any retry, so the comment is never created twice.
    async fn create_comment(
        &self,
        number: u64,
        marker: &str,
        author: &str,
        body: &str,
    ) -> Outcome<CommentAction> {
        let action = || format!("creating the comment on pull request #{number}");
        let route = format!(
            "/repos/{}/{}/issues/{number}/comments",
            self.owner, self.name
        );
        let payload = serde_json::json!({ "body": body });
        let mut may_exist = false;
        let mut attempt = 1;
        loop {
            if may_exist && let Some(landed) = self.find_comment(number, marker, author).await? {
                if landed.body.as_deref() != Some(body) {
                    self.edit_comment(landed.id, body).await?;
                }
                return Ok(CommentAction::Created(landed.id));
            }
            let result: octocrab::Result<Created> = self.octo.post(&route, Some(&payload)).await;
            let error = match result {
                Ok(created) => return Ok(CommentAction::Created(created.id)),
                Err(error) => error,
            };
            match self.classify(&error) {
                Failure::Retryable {
                    wait,
                    may_have_landed,
                    ..
                } if attempt < ATTEMPTS => {
                    may_exist |= may_have_landed;
                    tokio::time::sleep(self.delay(attempt, wait)).await;
                    attempt += 1;
                }
                failure => return Err((action(), failure)),
            }
        }
    }

    /// Runs `request` up to [`ATTEMPTS`] times while it fails in a way worth
    /// retrying, waiting longer each time.
    async fn retrying<T, F, Fut>(&self, mut request: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = octocrab::Result<T>>,
    {
        let mut attempt = 1;
        loop {
            let error = match request().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match self.classify(&error) {
                Failure::Retryable { wait, .. } if attempt < ATTEMPTS => {
                    tokio::time::sleep(self.delay(attempt, wait)).await;
                    attempt += 1;
                }
                failure => return Err(failure),
            }
        }
    }

    /// The wait before try `attempt + 1`: the base delay doubled per try, or
    /// longer when GitHub asked for longer (up to [`MAX_WAIT`]).
    fn delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let backoff = self
            .retry_base
            .saturating_mul(1u32 << (attempt - 1).min(16));
        backoff.max(asked.unwrap_or_default().min(MAX_WAIT))
    }

    fn classify(&self, error: &octocrab::Error) -> Failure {
        let octocrab::Error::GitHub { source, .. } = error else {
            let detail = redact(&describe(error), self.token);
            return match error {
                octocrab::Error::Service { .. } | octocrab::Error::Hyper { .. } => {
                    Failure::Retryable {
                        detail: format!("could not reach {} ({detail})", self.api_url),
                        wait: None,
                        may_have_landed: true,
                    }
                }
                _ => Failure::Other(detail),
            };
        };
        let status = source.status_code.as_u16();
        let detail = redact(
            &format!("HTTP {status}: {}", shorten(&source.message)),
            self.token,
        );
        let header = |name: &str| {
            source
                .headers
                .as_ref()
                .and_then(|headers| headers.get(name))
                .and_then(|value| value.to_str().ok())
                .map(|value| value.trim().to_string())
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let secondary = source
            .message
            .to_ascii_lowercase()
            .contains("secondary rate limit");
        let primary_exhausted = header("x-ratelimit-remaining").as_deref() == Some("0");
        let until_reset = header("x-ratelimit-reset")
            .and_then(|v| v.parse::<u64>().ok())
            .map(|reset| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                Duration::from_secs(reset.saturating_sub(now) + 1)
            });
        match status {
            500..=599 => Failure::Retryable {
                detail,
                wait: None,
                may_have_landed: true,
            },
            403 | 429 if retry_after.is_some() || secondary => Failure::Retryable {
                detail,
                wait: retry_after,
                may_have_landed: false,
            },
            403 | 429 if primary_exhausted => match until_reset {
                Some(wait) if wait <= MAX_WAIT => Failure::Retryable {
                    detail,
                    wait: Some(wait),
                    may_have_landed: false,
                },
                _ => Failure::Other(format!(
                    "{detail}; the token's API rate limit is used up: re-run the job after it resets"
                )),
            },
            429 => Failure::Retryable {
                detail,
                wait: None,
                may_have_landed: false,
            },
            401 => Failure::Unauthorized(detail),
            403 => Failure::Forbidden(detail),
            404 => Failure::NotFound(detail),
            _ => Failure::Other(detail),
        }
    }
}

fn written_by(comment: &IssueComment, author: &str) -> bool {
    comment
        .user
        .as_ref()
        .is_some_and(|user| user.login.eq_ignore_ascii_case(author))
}

fn has_marker(comment: &IssueComment, marker: &str) -> bool {
    comment.body.as_deref().is_some_and(|body| {
        body.trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with(marker)
    })
}

/// octocrab's error text, with the GitHub error's message (its `Display`
/// only names the variant).
fn describe(error: &octocrab::Error) -> String {
    match error {
        octocrab::Error::GitHub { source, .. } => format!(
            "HTTP {}: {}",
            source.status_code.as_u16(),
            shorten(&source.message)
        ),
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(inner) = cause {
                let line = inner.to_string();
                if !text.contains(&line) {
                    text.push_str(": ");
                    text.push_str(&line);
                }
                cause = inner.source();
            }
            shorten(&text)
        }
    }
}

/// The first 300 characters of the first non-empty line.
fn shorten(message: &str) -> String {
    let line = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no message)");
    if line.chars().count() > 300 {
        let mut cut: String = line.chars().take(300).collect();
        cut.push('…');
        cut
    } else {
        line.to_string()
    }
}

/// `text` with every occurrence of the token masked.
pub(crate) fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "***")
    }
}
