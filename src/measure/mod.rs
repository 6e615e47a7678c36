//! Measuring the contract's payloads: Criterion (wall clock), gungraun
//! (instruction counts) and the spec's own 10-iteration method.

pub mod callgrind;
pub mod criterion;
pub mod environment;
pub mod paired;
pub mod payload;
pub mod run;
pub mod spec_method;

/// Measuring failed.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("cannot parse benchmark output: {0}")]
    Parse(String),
    #[error("cannot read benchmark output: {0}")]
    Io(String),
    #[error("{0}")]
    Tool(String),
}
