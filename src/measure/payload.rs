//! Payloads: the spec's three (exactly as `spec/performance-001.md` writes
//! them) and those a contract file defines itself — repeated text, a request
//! file, or a named generator of adversarial input.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::chat::ChatRequest;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    Small,
    Medium,
    Large,
}

impl Payload {
    pub const ALL: [Payload; 3] = [Payload::Small, Payload::Medium, Payload::Large];

    pub fn name(self) -> &'static str {
        match self {
            Payload::Small => "small",
            Payload::Medium => "medium",
            Payload::Large => "large",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The spec's Python expression for the user message.
    pub fn spec_expression(self) -> &'static str {
        match self {
            Payload::Small => r#""Hello " * 50"#,
            Payload::Medium => r#""Test content " * 5000"#,
            Payload::Large => r#""Large test content " * 20000"#,
        }
    }

    /// The user message's text.
    pub fn content(self) -> String {
        match self {
            Payload::Small => "Hello ".repeat(50),
            Payload::Medium => "Test content ".repeat(5000),
            Payload::Large => "Large test content ".repeat(20000),
        }
    }

    /// `{"messages": [{"role": "user", "content": <content>}]}`.
    pub fn request(self) -> ChatRequest {
        ChatRequest::single_user_message(self.content())
    }
}

/// The two functions the contract compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Sync,
    Async,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::Sync, Variant::Async];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Sync => "sync",
            Variant::Async => "async",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// A benchmark's stored name: `<payload>/<variant>`, e.g. `small/sync`, as
/// Criterion names it (group/function).
pub fn benchmark_id(payload: Payload, variant: Variant) -> String {
    format!("{}/{}", payload.name(), variant.name())
}

/// The inverse of [`benchmark_id`].
pub fn parse_benchmark_id(id: &str) -> Option<(Payload, Variant)> {
    let (payload, variant) = id.split_once('/')?;
    Some((Payload::from_name(payload)?, Variant::from_name(variant)?))
}

/// A payload as a contract file writes it: the name of one of the spec's
/// payloads (`"small"`), or a table: `{ text = "Hi ", repeat = 50 }` (a user
/// message of repeated text), `{ file = "../payloads/x.json" }` (a request
/// file, relative to the contract's directory), or `{ generator = "spaces",
/// size = 1000000 }` (one of [`crate::measure::adversarial::GENERATORS`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct PayloadSpec(toml::Value);

/// Where a case's request comes from, as parsed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadSource {
    Spec(Payload),
    Repeat { text: String, repeat: usize },
    File { path: String },
    Generator { generator: String, size: usize },
}

/// A payload ready to run: its request as JSON text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CasePayload {
    /// Names the payload in benchmark ids and reports: `small`,
    /// `spaces-1000000`, `file-<stem>`, `repeat-<hash>`.
    pub key: String,
    pub source: PayloadSource,
    /// The request's size in bytes (its JSON text).
    pub bytes: usize,
    /// SHA-256 of the JSON text: a payload file's content counts in the
    /// contract's hash.
    pub sha256: String,
    #[serde(skip)]
    pub json: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read the payload file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the payload {key} is not a request: {message}")]
    NotARequest { key: String, message: String },
}

const PAYLOAD_FORMS: &str = "give a payload as \"small\", \"medium\" or \"large\", { text = \"...\", repeat = N }, { file = \"path.json\" } or { generator = \"NAME\", size = N }";

impl CasePayload {
    /// One of the spec's payloads.
    pub fn spec(payload: Payload) -> Self {
        Self::new(
            payload.name().to_owned(),
            PayloadSource::Spec(payload),
            crate::measure::adversarial::user_message(&payload.content()),
        )
    }

    fn new(key: String, source: PayloadSource, json: String) -> Self {
        Self {
            key,
            source,
            bytes: json.len(),
            sha256: crate::chat::acquire::sha256_hex(json.as_bytes()),
            json: json.into(),
        }
    }

    /// The spec's payload this is, if it is one.
    pub fn as_spec(&self) -> Option<Payload> {
        match self.source {
            PayloadSource::Spec(p) => Some(p),
            _ => None,
        }
    }

    /// Reads `spec`; payload files are looked up in `dir`.
    pub fn resolve(spec: PayloadSpec, dir: &Path) -> Result<Self, PayloadError> {
        let invalid =
            |problem: String| PayloadError::Invalid(format!("{problem}; {PAYLOAD_FORMS}"));
        let table = match spec.0 {
            toml::Value::String(name) => {
                return Payload::from_name(&name).map(Self::spec).ok_or_else(|| {
                    invalid(format!(
                        "unknown payload '{name}' (known: small, medium, large)"
                    ))
                });
            }
            toml::Value::Table(table) => table,
            other => return Err(invalid(format!("a payload cannot be {}", other.type_str()))),
        };
        let keys: Vec<&str> = {
            let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
            keys.sort_unstable();
            keys
        };
        let text = |name: &str| table.get(name).and_then(toml::Value::as_str);
        let count = |name: &str| {
            table
                .get(name)
                .and_then(toml::Value::as_integer)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid(format!("`{name}` must be a positive integer")))
        };
        let payload = match keys.as_slice() {
            ["repeat", "text"] => {
                let content =
                    text("text").ok_or_else(|| invalid("`text` must be a string".into()))?;
                let repeat = count("repeat")?;
                let json = crate::measure::adversarial::user_message(&content.repeat(repeat));
                let key = format!(
                    "repeat-{}",
                    &crate::chat::acquire::sha256_hex(json.as_bytes())[..8]
                );
                Self::new(
                    key,
                    PayloadSource::Repeat {
                        text: content.to_owned(),
                        repeat,
                    },
                    json,
                )
            }
            ["file"] => {
                let path = text("file").ok_or_else(|| invalid("`file` must be a path".into()))?;
                let full = dir.join(path);
                let json = std::fs::read_to_string(&full).map_err(|source| PayloadError::Read {
                    path: full.display().to_string(),
                    source,
                })?;
                let stem = Path::new(path)
                    .file_stem()
                    .map_or("payload".into(), |s| s.to_string_lossy());
                Self::new(
                    format!("file-{stem}"),
                    PayloadSource::File {
                        path: path.to_owned(),
                    },
                    json,
                )
            }
            ["generator", "size"] => {
                let name = text("generator")
                    .ok_or_else(|| invalid("`generator` must be a name".into()))?;
                let size = count("size")?;
                let json = crate::measure::adversarial::generate(name, size).ok_or_else(|| {
                    invalid(format!(
                        "unknown generator '{name}' (known: {})",
                        crate::measure::adversarial::GENERATORS.join(", ")
                    ))
                })?;
                Self::new(
                    format!("{name}-{size}"),
                    PayloadSource::Generator {
                        generator: name.to_owned(),
                        size,
                    },
                    json,
                )
            }
            other => return Err(invalid(format!("a payload table with the keys {other:?}"))),
        };
        // A payload that is not a request would fail every call: say so now.
        ChatRequest::from_json(&payload.json).map_err(|e| PayloadError::NotARequest {
            key: payload.key.clone(),
            message: e.to_string(),
        })?;
        Ok(payload)
    }

    /// The request, parsed.
    pub fn request(&self) -> ChatRequest {
        ChatRequest::from_json(&self.json).expect("a resolved payload parses")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<CasePayload, PayloadError> {
        #[derive(Deserialize)]
        struct Holder {
            payload: PayloadSpec,
        }
        let holder: Holder = toml::from_str(&format!("payload = {text}")).unwrap();
        CasePayload::resolve(holder.payload, Path::new("harness/contracts"))
    }

    #[test]
    fn every_form_resolves_to_a_request() {
        let medium = resolve("\"medium\"").unwrap();
        assert_eq!(medium.as_spec(), Some(Payload::Medium));
        assert_eq!(
            &*medium.json,
            crate::measure::adversarial::user_message(&Payload::Medium.content())
        );
        let repeat = resolve("{ text = \"Test content \", repeat = 5000 }").unwrap();
        assert_eq!(
            repeat.json, medium.json,
            "the same request, written as data"
        );
        assert!(repeat.key.starts_with("repeat-"), "{}", repeat.key);
        let generated = resolve("{ generator = \"spaces\", size = 1000 }").unwrap();
        assert_eq!(generated.key, "spaces-1000");
        assert_eq!(generated.bytes, generated.json.len());
    }

    #[test]
    fn bad_payloads_say_how_to_write_one() {
        for (text, expected) in [
            ("\"huge\"", "unknown payload 'huge'"),
            (
                "{ generator = \"nope\", size = 3 }",
                "unknown generator 'nope'",
            ),
            (
                "{ text = \"a\", repeat = 0 }",
                "`repeat` must be a positive integer",
            ),
            ("{ text = \"a\" }", "keys [\"text\"]"),
            (
                "{ file = \"no-such-file.json\" }",
                "cannot read the payload file",
            ),
            ("3", "cannot be integer"),
        ] {
            let error = resolve(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
