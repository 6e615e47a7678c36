//! The contract's payloads, exactly as `spec/performance-001.md` writes them.

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
