//! Errors of the chat stage. Every message says what went wrong and, where the
//! user can act, what to do.

use std::path::PathBuf;

/// Loading or acquiring the SentencePiece model failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerLoadError {
    #[error("cannot read the tokenizer model {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the tokenizer model is malformed ({0}); delete it and let perfwarden fetch it again, or pass a good copy with --tokenizer"
    )]
    Malformed(String),
    #[error(
        "the tokenizer model uses {0}, which perfwarden does not implement; use the Mistral v3 model (tokenizer.model.v3)"
    )]
    Unsupported(String),
    #[error(
        "the tokenizer model {path} has SHA-256 {actual}, expected {expected} (the Mistral v3 model of mistral-common 1.13.1); it is corrupt, truncated or a different model: delete it, or pass the right file with --tokenizer"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(
        "cannot fetch the tokenizer model: {reason}. Install Python 3 with pip (`python3 -m pip --version` must work), or download mistral-common 1.13.1 yourself and pass mistral_common/data/mistral_instruct_tokenizer_240323.model.v3 with --tokenizer or PERFWARDEN_TOKENIZER"
    )]
    Fetch { reason: String },
    #[error(
        "cannot store the tokenizer model in the cache {dir}: {source}; set PERFWARDEN_CACHE_DIR to a writable directory"
    )]
    Cache {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the tokenizer model lacks the control token {0}; use the Mistral v3 model (tokenizer.model.v3)"
    )]
    MissingControlToken(&'static str),
}

/// A request the Mistral v3 chat template rejects. Each variant matches a
/// check of mistral-common 1.13.1 in test validation mode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatTemplateError {
    #[error("the request is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the request is malformed: {0}")]
    Malformed(String),
    #[error("unknown message role: {0}")]
    UnknownRole(String),
    #[error("conversation must have at least one message")]
    EmptyConversation,
    #[error("conversation must start with a user message or system message")]
    WrongFirstRole,
    #[error("expected last role user or tool (or assistant with prefix) but got {0}")]
    WrongLastRole(String),
    #[error("unexpected role '{current}' after role '{previous}'")]
    RoleOrder { previous: String, current: String },
    #[error("not the same number of function calls and responses")]
    ToolCallCountMismatch,
    #[error("assistant message must have either content or tool_calls, but not both")]
    AssistantContentAndToolCalls,
    #[error("unexpected content chunk types in {role} message: {kinds}")]
    UnsupportedChunk { role: String, kinds: String },
    #[error("tool call id was {0} but must be a-z, A-Z, 0-9, with a length of 9")]
    InvalidToolCallId(String),
    #[error(
        "tool call id 'null' is only allowed for the last assistant message in finetuning mode; give every tool call a 9-character id"
    )]
    MissingToolCallId,
    #[error("tool call id has to be defined in a tool message")]
    MissingToolMessageId,
    #[error(
        "function name was {0} but must be a-z, A-Z, 0-9, or contain underscores and dashes, with a maximum length of 64"
    )]
    InvalidFunctionName(String),
    #[error("invalid tool schema: {0}")]
    InvalidToolSchema(String),
    #[error("the text cannot be encoded as UTF-8 (it contains a lone surrogate)")]
    LoneSurrogate,
    #[error(
        "the request is {size} bytes, over the limit of {limit} bytes; raise the limit with --max-request-bytes"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("the tokenization job panicked: {0}")]
    JobPanicked(String),
    #[error(
        "async_apply_mistral_chat_template must be awaited inside a tokio runtime; call it from an async task (or use apply_mistral_chat_template)"
    )]
    NoRuntime,
    #[error("the tokenization worker is unavailable: {0}")]
    WorkerUnavailable(String),
    #[error(
        "async_apply_mistral_chat_template was called from inside a tokenization job (for example from a Borrow implementation), where it would wait for itself forever; call apply_mistral_chat_template there instead"
    )]
    CalledFromJob,
}
