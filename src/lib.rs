//! perfwarden: a continuous performance-regression harness for the Mistral v3
//! chat template and its async wrapper.

pub mod chat;
pub mod measure;
pub mod render;
pub mod store;
