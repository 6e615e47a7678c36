//! The subject: the Mistral v3 chat template, token-exact with mistral-common 1.13.1.

pub mod acquire;
pub mod error;
pub mod pyjson;
pub mod pyre;
pub mod schema;
pub mod sentencepiece;
pub mod stream;
pub mod template;
pub mod tokenizer;
pub mod worker;

pub use acquire::load_tokenizer;
pub use error::{ChatTemplateError, TokenizerLoadError};
pub use template::{ChatRequest, apply_mistral_chat_template};
pub use tokenizer::MistralTokenizer;
pub use worker::async_apply_mistral_chat_template;
