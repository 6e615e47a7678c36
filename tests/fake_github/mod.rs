//! A fake GitHub REST API on 127.0.0.1 for tests, hand-rolled on
//! `std::net::TcpListener` (HTTP/1.1, keep-alive, `Content-Length` and
//! chunked request bodies).
//!
//! It serves one repository, [`OWNER`]/[`REPO`], and the routes publishing
//! uses, answering with bodies shaped like GitHub's (octocrab's models
//! deserialize them):
//!
//! - `GET  /repos/{o}/{r}/issues/{n}/comments?per_page=&page=` with `Link`
//!   pagination headers (404 for a pull request that was not added);
//! - `POST /repos/{o}/{r}/issues/{n}/comments`;
//! - `PATCH` (or `POST`, as octocrab's `update_comment` sends)
//!   `/repos/{o}/{r}/issues/comments/{id}`;
//! - `POST /repos/{o}/{r}/check-runs`;
//! - `GET  /user`: the token's user; a token not added with
//!   [`FakeGithub::add_user_token`] is a workflow's `GITHUB_TOKEN`, which
//!   acts as [`BOT`] and may not read `/user` (403, as on GitHub).
//!
//! Comments are written by the token's user, and only their author may edit
//! them (others get 403, as a user without admin rights does).
//!
//! Every request is recorded. Failures can be scripted per method and path,
//! optionally after doing the work (a lost response). With
//! [`FakeGithub::start_with_prefix`] every route lives under a path prefix, as
//! on GitHub Enterprise Server (`/api/v3`); requests outside it get a 404.
//!
//! ```ignore
//! mod fake_github;
//! let fake = fake_github::FakeGithub::start();
//! fake.add_pull_request(5);
//! // GITHUB_API_URL = fake.url, GITHUB_REPOSITORY = fake.repository()
//! ```
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

pub const OWNER: &str = "octo-org";
pub const REPO: &str = "octo-repo";
/// The author of the comments the API creates (the Actions token's user).
pub const BOT: &str = "github-actions[bot]";
/// A second user, with a personal token, who posts comments of their own.
pub const MALLORY: &str = "mallory";
pub const MALLORY_TOKEN: &str = "ghp_mallorysPersonalToken000000000000000";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target: path and query, prefix included.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.path.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The body as JSON (`Null` when empty or invalid).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// An issue comment held by the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub pr: u64,
    pub author: String,
    pub body: String,
    /// How many times it was edited.
    pub edits: u32,
}

/// A scripted failure: the next `times` requests whose method is `method` and
/// whose path contains `path_contains` get `status` instead of the real answer.
#[derive(Debug, Clone)]
pub struct Failure {
    pub method: String,
    pub path_contains: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub times: usize,
    /// Do the work first, then fail (a response lost after the write).
    pub after_applying: bool,
}

impl Failure {
    /// Fails once, with GitHub's usual body for `status`.
    pub fn new(method: &str, path_contains: &str, status: u16) -> Self {
        Self {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            status,
            headers: Vec::new(),
            body: error_body(reason(status)),
            times: 1,
            after_applying: false,
        }
    }

    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// GitHub's JSON error body with this message.
    pub fn message(mut self, message: &str) -> Self {
        self.body = error_body(message);
        self
    }

    /// A raw body (e.g. an HTML error page from a proxy).
    pub fn raw_body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn after_applying(mut self) -> Self {
        self.after_applying = true;
        self
    }
}

#[derive(Default)]
struct State {
    prs: BTreeSet<u64>,
    comments: Vec<Comment>,
    check_runs: Vec<Value>,
    requests: Vec<Request>,
    failures: Vec<Failure>,
    next_id: u64,
    token: Option<String>,
    /// Personal tokens and their users' logins.
    users: Vec<(String, String)>,
}

struct Shared {
    /// `http://127.0.0.1:PORT`
    origin: String,
    /// `""` or e.g. `/api/v3`
    prefix: String,
    state: Mutex<State>,
}

/// The running fake; it stops when dropped.
pub struct FakeGithub {
    /// The API root to use as `GITHUB_API_URL` (prefix included).
    pub url: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    accept: Option<thread::JoinHandle<()>>,
}

impl FakeGithub {
    /// Serves at the root: `GITHUB_API_URL=http://127.0.0.1:PORT`.
    pub fn start() -> Self {
        Self::start_with_prefix("")
    }

    /// Serves under `prefix`, e.g. `/api/v3` as on GitHub Enterprise Server.
    pub fn start_with_prefix(prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/').to_string();
        assert!(
            prefix.is_empty() || prefix.starts_with('/'),
            "the prefix must start with /"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let origin = format!("http://{addr}");
        let shared = Arc::new(Shared {
            origin: origin.clone(),
            prefix: prefix.clone(),
            state: Mutex::new(State {
                next_id: 1000,
                ..State::default()
            }),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&shared);
                    thread::spawn(move || serve(stream, &shared));
                }
            })
        };
        Self {
            url: format!("{origin}{prefix}"),
            shared,
            stop,
            addr,
            accept: Some(accept),
        }
    }

    /// `owner/name`, for `GITHUB_REPOSITORY`.
    pub fn repository(&self) -> String {
        format!("{OWNER}/{REPO}")
    }

    /// Makes pull request `number` exist.
    pub fn add_pull_request(&self, number: u64) {
        self.state().prs.insert(number);
    }

    /// Adds a comment by `author` to pull request `pr` (which is added too);
    /// returns its id.
    pub fn add_comment(&self, pr: u64, author: &str, body: &str) -> u64 {
        let mut state = self.state();
        state.prs.insert(pr);
        let id = state.next_id;
        state.next_id += 1;
        state.comments.push(Comment {
            id,
            pr,
            author: author.to_string(),
            body: body.to_string(),
            edits: 0,
        });
        id
    }

    /// Requests must carry `Authorization: Bearer {token}`; others get 401.
    pub fn require_token(&self, token: &str) {
        self.state().token = Some(token.to_string());
    }

    /// Requests with `token` act as the user `login` (a personal token):
    /// `GET /user` answers with it, and their comments are written by it.
    pub fn add_user_token(&self, token: &str, login: &str) {
        self.state()
            .users
            .push((token.to_string(), login.to_string()));
    }

    /// Scripts a failure (see [`Failure`]).
    pub fn fail(&self, failure: Failure) {
        self.state().failures.push(failure);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// The requests with this method whose path contains `path_contains`.
    pub fn requests_matching(&self, method: &str, path_contains: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(path_contains))
            .collect()
    }

    /// The comments on pull request `pr`, oldest first.
    pub fn comments(&self, pr: u64) -> Vec<Comment> {
        self.state()
            .comments
            .iter()
            .filter(|c| c.pr == pr)
            .cloned()
            .collect()
    }

    /// The check runs created, as the JSON bodies of their requests plus
    /// their `id`.
    pub fn check_runs(&self) -> Vec<Value> {
        self.state().check_runs.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: error_body(message),
        }
    }
}

fn error_body(message: &str) -> String {
    json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": "",
    })
    .to_string()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Answers requests on one connection until the client closes it.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader) {
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let response = shared.handle(request);
        if write_response(&mut writer, &response, close).is_err() || close {
            return;
        }
    }
}

fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            let size_text = size_line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16).ok()?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut trailer = String::new();
                    reader.read_line(&mut trailer).ok()?;
                    if trailer.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk);
            let mut crlf = [0; 2];
            reader.read_exact(&mut crlf).ok()?;
        }
    } else if let Some(length) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
    }
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn write_response(
    writer: &mut impl Write,
    response: &Response,
    close: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nx-github-media-type: github.v3; format=json\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    writer.write_all(response.body.as_bytes())?;
    writer.flush()
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(&self, request: Request) -> Response {
        let mut state = self.state();
        state.requests.push(request.clone());

        let Some(path) = request.path.strip_prefix(self.prefix.as_str()) else {
            return Response::error(
                404,
                &format!("Not Found (outside the API prefix {})", self.prefix),
            );
        };
        if !path.starts_with('/') {
            return Response::error(404, "Not Found");
        }
        let sent = request.header("authorization").unwrap_or("");
        let sent_token = sent
            .strip_prefix("Bearer ")
            .or_else(|| sent.strip_prefix("token "))
            .unwrap_or("");
        let user = state
            .users
            .iter()
            .find(|(token, _)| token == sent_token)
            .map(|(_, login)| login.clone());
        if let Some(token) = &state.token
            && sent_token != token
            && user.is_none()
        {
            return Response::error(401, "Bad credentials");
        }
        let scripted = state.failures.iter().position(|f| {
            f.times > 0
                && f.method.eq_ignore_ascii_case(&request.method)
                && path.contains(&f.path_contains)
        });
        if let Some(index) = scripted {
            state.failures[index].times -= 1;
            let failure = state.failures[index].clone();
            if failure.after_applying {
                let _ = self.route(&mut state, &request, path, user.as_deref());
            }
            return Response {
                status: failure.status,
                headers: failure.headers,
                body: failure.body,
            };
        }
        self.route(&mut state, &request, path, user.as_deref())
    }

    /// `user`: the login of a personal token; `None` for the workflow token.
    fn route(
        &self,
        state: &mut State,
        request: &Request,
        target: &str,
        user: Option<&str>,
    ) -> Response {
        let actor = user.unwrap_or(BOT);
        let route = target.split('?').next().unwrap_or("");
        let segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
        let method = request.method.as_str();
        match segments.as_slice() {
            ["repos", owner, repo, rest @ ..] if *owner == OWNER && *repo == REPO => {
                match (method, rest) {
                    ("GET", ["issues", number, "comments"]) => {
                        self.list_comments(state, request, route, number)
                    }
                    ("POST", ["issues", number, "comments"]) => {
                        self.create_comment(state, request, number, actor)
                    }
                    ("PATCH" | "POST", ["issues", "comments", id]) => {
                        self.edit_comment(state, request, id, actor)
                    }
                    ("POST", ["check-runs"]) => self.create_check_run(state, request),
                    _ => Response::error(404, "Not Found"),
                }
            }
            ["user"] if method == "GET" => match user {
                Some(login) => Response::json(200, self.user_json(login)),
                None => Response::error(403, "Resource not accessible by integration"),
            },
            _ => Response::error(404, "Not Found"),
        }
    }

    fn list_comments(
        &self,
        state: &State,
        request: &Request,
        route: &str,
        number: &str,
    ) -> Response {
        let Some(pr) = number.parse::<u64>().ok().filter(|n| state.prs.contains(n)) else {
            return Response::error(404, "Not Found");
        };
        let per_page = request
            .query("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        let page = request
            .query("page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let all: Vec<&Comment> = state.comments.iter().filter(|c| c.pr == pr).collect();
        let pages = all.len().div_ceil(per_page).max(1);
        let items: Vec<Value> = all
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|c| self.comment_json(c))
            .collect();
        let mut response = Response::json(200, Value::Array(items));
        if pages > 1 {
            let link = |p: usize, rel: &str| {
                format!(
                    "<{}{}{route}?per_page={per_page}&page={p}>; rel=\"{rel}\"",
                    self.origin, self.prefix
                )
            };
            let mut links = Vec::new();
            if page > 1 {
                links.push(link(page - 1, "prev"));
            }
            if page < pages {
                links.push(link(page + 1, "next"));
                links.push(link(pages, "last"));
            }
            if page > 1 {
                links.push(link(1, "first"));
            }
            response.headers.push(("link".into(), links.join(", ")));
        }
        response
    }

    fn create_comment(
        &self,
        state: &mut State,
        request: &Request,
        number: &str,
        author: &str,
    ) -> Response {
        let Some(pr) = number.parse::<u64>().ok().filter(|n| state.prs.contains(n)) else {
            return Response::error(404, "Not Found");
        };
        let Some(body) = request
            .json()
            .get("body")
            .and_then(|b| b.as_str())
            .map(str::to_string)
        else {
            return Response::error(422, "Invalid request.\n\n\"body\" wasn't supplied.");
        };
        let id = state.next_id;
        state.next_id += 1;
        let comment = Comment {
            id,
            pr,
            author: author.to_string(),
            body,
            edits: 0,
        };
        let json = self.comment_json(&comment);
        state.comments.push(comment);
        Response::json(201, json)
    }

    fn edit_comment(
        &self,
        state: &mut State,
        request: &Request,
        id: &str,
        actor: &str,
    ) -> Response {
        let Some(body) = request
            .json()
            .get("body")
            .and_then(|b| b.as_str())
            .map(str::to_string)
        else {
            return Response::error(422, "Invalid request.\n\n\"body\" wasn't supplied.");
        };
        let id = id.parse::<u64>().unwrap_or(0);
        let Some(comment) = state.comments.iter_mut().find(|c| c.id == id) else {
            return Response::error(404, "Not Found");
        };
        if comment.author != actor {
            return Response::error(403, "You must be the author of this comment to edit it.");
        }
        comment.body = body;
        comment.edits += 1;
        let comment = comment.clone();
        Response::json(200, self.comment_json(&comment))
    }

    fn create_check_run(&self, state: &mut State, request: &Request) -> Response {
        let mut run = request.json();
        for field in ["name", "head_sha"] {
            if run.get(field).and_then(|v| v.as_str()).is_none() {
                return Response::error(
                    422,
                    &format!("Invalid request.\n\n\"{field}\" wasn't supplied."),
                );
            }
        }
        let id = state.next_id;
        state.next_id += 1;
        run["id"] = json!(id);
        state.check_runs.push(run.clone());
        let api = format!("{}{}", self.origin, self.prefix);
        let output = run.get("output").cloned().unwrap_or(json!({}));
        Response::json(
            201,
            json!({
                "id": id,
                "node_id": format!("CR_kwDO{id}"),
                "head_sha": run["head_sha"],
                "external_id": run.get("external_id").cloned().unwrap_or(json!("")),
                "url": format!("{api}/repos/{OWNER}/{REPO}/check-runs/{id}"),
                "html_url": format!("{}/{OWNER}/{REPO}/runs/{id}", self.origin),
                "details_url": run.get("details_url").cloned().unwrap_or(Value::Null),
                "status": run.get("status").cloned().unwrap_or(json!("queued")),
                "conclusion": run.get("conclusion").cloned().unwrap_or(Value::Null),
                "started_at": "2026-01-01T00:00:00Z",
                "completed_at": "2026-01-01T00:00:01Z",
                "output": {
                    "title": output.get("title").cloned().unwrap_or(Value::Null),
                    "summary": output.get("summary").cloned().unwrap_or(Value::Null),
                    "text": output.get("text").cloned().unwrap_or(Value::Null),
                    "annotations_count": 0,
                    "annotations_url": format!("{api}/repos/{OWNER}/{REPO}/check-runs/{id}/annotations"),
                },
                "name": run["name"],
                "check_suite": { "id": 1 },
                "app": null,
                "pull_requests": [],
            }),
        )
    }

    fn comment_json(&self, comment: &Comment) -> Value {
        let api = format!("{}{}", self.origin, self.prefix);
        let id = comment.id;
        json!({
            "url": format!("{api}/repos/{OWNER}/{REPO}/issues/comments/{id}"),
            "html_url": format!("{}/{OWNER}/{REPO}/pull/{}#issuecomment-{id}", self.origin, comment.pr),
            "issue_url": format!("{api}/repos/{OWNER}/{REPO}/issues/{}", comment.pr),
            "id": id,
            "node_id": format!("IC_kwDO{id}"),
            "user": self.user_json(&comment.author),
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": if comment.edits > 0 { "2026-01-02T00:00:00Z" } else { "2026-01-01T00:00:00Z" },
            "author_association": if comment.author == BOT { "NONE" } else { "CONTRIBUTOR" },
            "body": comment.body,
            "performed_via_github_app": null,
        })
    }

    fn user_json(&self, login: &str) -> Value {
        let api = format!("{}{}", self.origin, self.prefix);
        let escaped = login.replace('[', "%5B").replace(']', "%5D");
        let user = format!("{api}/users/{escaped}");
        let id = login
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            % 1_000_000;
        json!({
            "login": login,
            "id": id,
            "node_id": format!("U_kgDO{id}"),
            "avatar_url": format!("{}/avatars/u/{id}?v=4", self.origin),
            "gravatar_id": "",
            "url": user,
            "html_url": format!("{}/{escaped}", self.origin),
            "followers_url": format!("{user}/followers"),
            "following_url": format!("{user}/following{{/other_user}}"),
            "gists_url": format!("{user}/gists{{/gist_id}}"),
            "starred_url": format!("{user}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{user}/subscriptions"),
            "organizations_url": format!("{user}/orgs"),
            "repos_url": format!("{user}/repos"),
            "events_url": format!("{user}/events{{/privacy}}"),
            "received_events_url": format!("{user}/received_events"),
            "type": if login == BOT { "Bot" } else { "User" },
            "site_admin": false,
        })
    }
}
