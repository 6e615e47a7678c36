//! Tokenizing requests from a reader: one request, or one per line (JSONL).

use std::io::{self, BufRead, Read, Write};

use super::error::ChatTemplateError;
use super::template::{ChatRequest, apply_mistral_chat_template};
use super::tokenizer::MistralTokenizer;

/// Requests larger than this are refused before any work (`--max-request-bytes`).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Parses and tokenizes one request given as bytes.
pub fn tokenize_request(
    tokenizer: &MistralTokenizer,
    bytes: &[u8],
    limit: usize,
) -> Result<Vec<u32>, ChatTemplateError> {
    if bytes.len() > limit {
        return Err(ChatTemplateError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ChatTemplateError::InvalidJson(format!("the input is not UTF-8 ({e})")))?;
    let request = ChatRequest::from_json(text)?;
    apply_mistral_chat_template(tokenizer, &request)
}

/// Reads all of `input`, but at most `limit + 1` bytes, so an oversized
/// request is refused without reading it whole.
pub fn read_capped(input: impl Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    input.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// One line of input: its bytes, or its size when it was over the limit
/// (the excess is skipped, not stored).
enum Line {
    Bytes(Vec<u8>),
    Oversized(usize),
}

fn read_line_capped(input: &mut impl BufRead, limit: usize) -> io::Result<Option<Line>> {
    let mut bytes = Vec::new();
    let mut size = 0usize;
    let mut saw_any = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            break;
        }
        saw_any = true;
        let (chunk, found_newline) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        size += chunk.len();
        if size <= limit {
            bytes.extend_from_slice(chunk);
        }
        let consumed = chunk.len() + usize::from(found_newline);
        input.consume(consumed);
        if found_newline {
            break;
        }
    }
    if !saw_any {
        return Ok(None);
    }
    if bytes.last() == Some(&b'\r') && size <= limit {
        // A CRLF line ending is not part of the request.
        bytes.pop();
        size -= 1;
    }
    Ok(Some(if size > limit {
        Line::Oversized(size)
    } else {
        Line::Bytes(bytes)
    }))
}

/// Counts of a JSONL run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonlSummary {
    pub lines: usize,
    pub errors: usize,
}

/// Writes exactly one output line per input line, in order:
/// `{"tokens": [...]}` or `{"error": "..."}`. Bad lines do not stop the run.
pub fn tokenize_jsonl(
    tokenizer: &MistralTokenizer,
    mut input: impl BufRead,
    mut output: impl Write,
    limit: usize,
) -> io::Result<JsonlSummary> {
    let mut summary = JsonlSummary::default();
    while let Some(line) = read_line_capped(&mut input, limit)? {
        summary.lines += 1;
        let result = match line {
            Line::Bytes(bytes) => tokenize_request(tokenizer, &bytes, limit),
            Line::Oversized(size) => Err(ChatTemplateError::TooLarge { size, limit }),
        };
        match result {
            Ok(tokens) => {
                serde_json::to_writer(&mut output, &serde_json::json!({ "tokens": tokens }))?
            }
            Err(error) => {
                summary.errors += 1;
                serde_json::to_writer(
                    &mut output,
                    &serde_json::json!({ "error": error.to_string() }),
                )?
            }
        }
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(summary)
}
