//! What a run records about where it ran: the checkout and the machine.

use std::path::Path;
use std::process::Command;

use crate::store::Machine;

fn command_output(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The checkout being measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    pub commit: String,
    pub branch: Option<String>,
    pub dirty: bool,
}

pub fn checkout(dir: &Path) -> Checkout {
    let git = |args: &[&str]| command_output("git", args, Some(dir));
    Checkout {
        commit: git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into()),
        branch: git(&["rev-parse", "--abbrev-ref", "HEAD"]).filter(|b| b != "HEAD"),
        dirty: git(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty()),
    }
}

/// The valgrind to use: `PERFWARDEN_VALGRIND`, else `valgrind` from `PATH`.
pub fn valgrind_program() -> String {
    std::env::var("PERFWARDEN_VALGRIND").unwrap_or_else(|_| "valgrind".into())
}

/// The first line of `valgrind --version`, or `None` when it is not installed.
pub fn valgrind_version() -> Option<String> {
    command_output(&valgrind_program(), &["--version"], None)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

fn os() -> String {
    let name = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|release| {
            release
                .lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    match std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        Ok(kernel) => format!("{name}, kernel {}", kernel.trim()),
        Err(_) => name,
    }
}

/// The machine fingerprint stored with every run.
pub fn machine() -> Machine {
    Machine {
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        os: os(),
        rustc: command_output("rustc", &["--version"], None).unwrap_or_else(|| "unknown".into()),
        valgrind: valgrind_version(),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
