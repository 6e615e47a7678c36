//! What a measuring run holds on its machine: a lock, so that two runs never
//! measure on the same CPUs at once (the second says so and waits), and the
//! scratch directories (`$TMPDIR/perfwarden-run-*`) that a killed run leaves
//! behind, which the next run removes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::MeasureError;
use super::run::Progress;

/// The prefix of a run's scratch directory in the temporary directory.
pub const SCRATCH_PREFIX: &str = "perfwarden-run-";

/// Held while a run measures; released when dropped (or when the process
/// dies, however it dies).
#[derive(Debug)]
pub struct MachineLock {
    _file: File,
}

/// The lock file: `$TMPDIR/perfwarden-measure.lock`.
pub fn lock_path() -> PathBuf {
    std::env::temp_dir().join("perfwarden-measure.lock")
}

impl MachineLock {
    /// Takes the machine's measuring lock, waiting (after saying so through
    /// `progress`) while another run holds it.
    pub fn acquire(progress: &mut dyn FnMut(Progress)) -> Result<Self, MeasureError> {
        let path = lock_path();
        let failed = |e: std::io::Error| {
            MeasureError::Io(format!(
                "cannot use the measuring lock {}: {e}; remove it if it is not a regular file, or set TMPDIR to another directory",
                path.display()
            ))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(failed)?;
        if !flock(&file, libc::LOCK_EX | libc::LOCK_NB).map_err(failed)? {
            let holder = holder_pid(&mut file).map_or(String::new(), |pid| format!(" (pid {pid})"));
            let message = format!(
                "another perfwarden run{holder} is measuring on this machine; waiting for it to finish, so that the two do not share the CPUs and skew each other's figures"
            );
            progress(Progress::Warning(&message));
            flock(&file, libc::LOCK_EX).map_err(failed)?;
        }
        // Written over the old pid in one write of a fixed width (a pid has
        // at most 10 digits), so that a waiter never reads an empty file or
        // two pids mixed while the lock is held.
        let pid = format!("{:<10}", std::process::id());
        file.write_all_at(pid.as_bytes(), 0).map_err(failed)?;
        file.set_len(pid.len() as u64).map_err(failed)?;
        Ok(Self { _file: file })
    }

    /// A new scratch directory for this run, after removing those that runs
    /// killed before they could clean up left behind (the lock says no other
    /// run is using any).
    pub fn scratch_dir(&self) -> Result<tempfile::TempDir, MeasureError> {
        remove_stale_scratch(&std::env::temp_dir());
        tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir()
            .map_err(|e| MeasureError::Io(format!("cannot create a scratch directory: {e}")))
    }
}

/// The pid the lock's holder wrote. A holder that took the lock a moment
/// ago may not have written it yet (the file of the first run on a machine
/// starts empty), so an empty file is read again for up to 100 ms.
fn holder_pid(file: &mut File) -> Option<String> {
    for _ in 0..20 {
        let mut holder = String::new();
        if file.rewind().is_ok() && file.read_to_string(&mut holder).is_ok() {
            let holder = holder.trim();
            if !holder.is_empty() {
                return Some(holder.to_owned());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}

/// `flock(2)`; `Ok(false)` when a non-blocking request finds it held.
fn flock(file: &File, operation: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: the descriptor belongs to `file`, open for the call.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(true);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(error),
        }
    }
}

/// Removes every `perfwarden-run-*` directory in `dir` this user owns
/// (symbolic links are not followed); others are left alone.
fn remove_stale_scratch(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(SCRATCH_PREFIX));
        let path = entry.path();
        let mine = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.is_dir() && !m.file_type().is_symlink() && m.uid() == me);
        if stale && mine {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_scratch_is_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(format!("{SCRATCH_PREFIX}abc123"));
        std::fs::create_dir_all(stale.join("criterion/small")).unwrap();
        std::fs::write(stale.join("criterion/small/sample.json"), "{}").unwrap();
        let other = dir.path().join("other-tool-xyz");
        std::fs::create_dir(&other).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        let link = dir.path().join(format!("{SCRATCH_PREFIX}link"));
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();

        remove_stale_scratch(dir.path());

        assert!(!stale.exists());
        assert!(other.is_dir());
        assert!(outside.path().join("keep").is_file(), "followed a link");
    }
}
