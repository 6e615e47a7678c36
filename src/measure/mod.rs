//! Measuring the contract's payloads: Criterion (wall clock), gungraun
//! (instruction counts) and the spec's own 10-iteration method.

pub mod adversarial;
pub mod batch_noise;
pub mod batches;
pub mod builds;
pub mod callgrind;
pub mod criterion;
pub mod decompose;
pub mod environment;
pub mod machine_lock;
pub mod noise;
pub mod paired;
pub mod payload;
pub mod profile;
pub mod run;
pub mod spec_method;
pub mod subject;

/// Every file called `name` below `root`, in a stable order.
pub fn files_named(
    root: &std::path::Path,
    name: &str,
) -> Result<Vec<std::path::PathBuf>, MeasureError> {
    files_where(root, |n| n == name)
}

/// Every file below `root` whose name `wanted` accepts, in a stable order.
pub fn files_where(
    root: &std::path::Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<std::path::PathBuf>, MeasureError> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| MeasureError::Io(format!("{}: {e}", dir.display())))?;
        for path in entries.filter_map(|e| Some(e.ok()?.path())) {
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(&wanted)
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A tool's output file, read whole.
pub fn read_text(path: &std::path::Path) -> Result<String, MeasureError> {
    std::fs::read_to_string(path).map_err(|e| MeasureError::Io(format!("{}: {e}", path.display())))
}

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
