//! perfwarden: a continuous performance-regression harness for the Mistral v3
//! chat template and its async wrapper.

pub mod affinity;
pub mod chat;
pub mod compare;
pub mod diagnose;
pub mod judge;
pub mod measure;
pub mod metric;
pub mod publish;
pub mod render;
pub mod report;
pub mod splitmix;
pub mod stack_shift;
pub mod store;
