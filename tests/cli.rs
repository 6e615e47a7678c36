//! `perfwarden tokenize` and friends, run as a user runs them.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

use perfwarden::chat::{ChatRequest, apply_mistral_chat_template};

fn perfwarden() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_perfwarden"));
    command.env("PERFWARDEN_TOKENIZER", common::model_path());
    command
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = perfwarden()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn expected_tokens(request: &str) -> Vec<u32> {
    apply_mistral_chat_template(
        common::tokenizer(),
        &ChatRequest::from_json(request).unwrap(),
    )
    .unwrap()
}

const HELLO: &str = r#"{"messages":[{"role":"user","content":"Hello, world!"}]}"#;

#[test]
fn one_request_prints_its_ids() {
    let output = run_with_stdin(&["tokenize"], HELLO.as_bytes());
    assert!(output.status.success(), "{output:?}");
    let ids: Vec<u32> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(ids, expected_tokens(HELLO));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    std::fs::write(&file, HELLO).unwrap();
    let output = perfwarden().args(["tokenize"]).arg(&file).output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        serde_json::from_slice::<Vec<u32>>(&output.stdout).unwrap(),
        ids
    );
}

#[test]
fn an_invalid_request_exits_1_and_says_why() {
    let output = run_with_stdin(&["tokenize"], br#"{"messages":[]}"#);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least one message"), "{stderr}");
    assert!(output.stdout.is_empty());

    let output = run_with_stdin(&["tokenize"], b"{not json");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let output = perfwarden()
        .args(["tokenize", "/nonexistent/request.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot open"));
    let output = perfwarden().args(["tokenize", "--bogus"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = perfwarden()
        .args(["tokenize"])
        .env("PERFWARDEN_TOKENIZER", "/nonexistent/model")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/model"));
    let dir = tempfile::tempdir().unwrap();
    for args in [&["tokenize"][..], &["tokenize", "--jsonl"]] {
        let output = perfwarden().args(args).arg(dir.path()).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("is a directory"), "{args:?}: {stderr}");
    }
}

#[test]
fn jsonl_writes_one_line_per_input_line_and_keeps_going() {
    let lines = [
        HELLO,
        "{broken json",
        "",
        r#"{"messages":[{"role":"robot","content":"x"}]}"#,
        r#"{"messages":[{"role":"user","content":"after the errors"}]}"#,
    ];
    let mut input = lines.join("\n");
    // A CRLF ending and a last line without a newline.
    input.push_str("\r\n");
    input.push_str(r#"{"messages":[{"role":"user","content":"last"}]}"#);
    let output = run_with_stdin(&["tokenize", "--jsonl"], input.as_bytes());
    assert!(output.status.success(), "{output:?}");
    let results: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 6);
    assert_eq!(
        results[0]["tokens"],
        serde_json::json!(expected_tokens(HELLO))
    );
    for i in [1, 2, 3] {
        assert!(results[i]["error"].is_string(), "line {i}: {}", results[i]);
    }
    assert!(results[3]["error"].as_str().unwrap().contains("robot"));
    assert_eq!(
        results[4]["tokens"],
        serde_json::json!(expected_tokens(lines[4]))
    );
    assert!(results[5]["tokens"].is_array());
}

#[test]
fn oversized_requests_are_refused_before_any_work() {
    let big = format!(
        r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(500)
    );
    let output = run_with_stdin(&["tokenize", "--max-request-bytes", "100"], big.as_bytes());
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("over the limit of 100 bytes"));

    let input = format!("{HELLO}\n{big}\n{HELLO}\n");
    let output = run_with_stdin(
        &["tokenize", "--jsonl", "--max-request-bytes", "100"],
        input.as_bytes(),
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let results: Vec<&str> = text.lines().collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].starts_with(r#"{"tokens""#));
    assert!(results[1].contains("over the limit"));
    assert!(results[2].starts_with(r#"{"tokens""#));
}

#[test]
fn a_ten_megabyte_request_is_tokenized() {
    let content = "ten megabytes of chat, 42 times over. ".repeat(10_000_000 / 38);
    let request =
        serde_json::json!({"messages": [{"role": "user", "content": content}]}).to_string();
    assert!(request.len() >= 10_000_000);
    let output = run_with_stdin(&["tokenize"], request.as_bytes());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ids: Vec<u32> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(ids, expected_tokens(&request));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let input = format!("{HELLO}\n").repeat(5000);
    let mut child = perfwarden()
        .args(["tokenize", "--jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with(r#"{"tokens""#));
    // stdout is dropped here, so perfwarden's next writes hit a closed pipe.
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
