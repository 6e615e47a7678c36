//! perfwarden as built at any commit: each commit is checked out in a git
//! worktree and built with the checkout's own cargo target directory, so
//! that the dependencies are compiled once for all commits; the binary is
//! kept under `<target>/perfwarden-compare/<commit>/`, and a commit already
//! there is not built again.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::batches;
use super::run::{Progress, cargo_command, run_tool};

/// A commit could not be resolved, checked out or built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("git {args} failed in {dir}: {message}")]
    Git {
        args: String,
        dir: String,
        message: String,
    },
    #[error(
        "'{0}' names no commit of this repository; give a commit, branch or tag (`git log` lists them)"
    )]
    UnknownCommit(String),
    #[error(
        "commit {0} predates `perfwarden compare`: its perfwarden has no `{cmd}` to serve batches from, so it cannot be measured this way. Pick a commit that has src/measure/batches.rs",
        cmd = batches::SUBCOMMAND
    )]
    PredatesProtocol(String),
    #[error("perfwarden does not build at commit {commit}: {message}")]
    Failed { commit: String, message: String },
    #[error("{0}")]
    Io(String),
}

/// Runs git in `dir` and returns its trimmed standard output.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, BuildError> {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| BuildError::Git {
            args: args.join(" "),
            dir: dir.display().to_string(),
            message: format!("cannot run git: {e}; install git"),
        })?;
    if !output.status.success() {
        return Err(BuildError::Git {
            args: args.join(" "),
            dir: dir.display().to_string(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The builds of one repository, cached by commit.
#[derive(Clone, Debug)]
pub struct Builds {
    /// Any checkout of the repository (git runs there).
    pub repo: PathBuf,
    /// The cargo target directory shared by every build.
    pub target_dir: PathBuf,
}

impl Builds {
    /// The builds of the repository checked out at `repo`, sharing
    /// `CARGO_TARGET_DIR` when it is set, else `<repo>/target`.
    pub fn new(repo: &Path) -> Self {
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|dir| {
                if dir.is_relative() {
                    repo.join(dir)
                } else {
                    dir
                }
            })
            .unwrap_or_else(|| repo.join("target"));
        Self {
            repo: repo.to_path_buf(),
            target_dir,
        }
    }

    /// Where built binaries and the worktrees they are built in live.
    pub fn cache_dir(&self) -> PathBuf {
        self.target_dir.join("perfwarden-compare")
    }

    /// The full hash of the commit `rev` names.
    pub fn resolve(&self, rev: &str) -> Result<String, BuildError> {
        git(
            &self.repo,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
        )
        .map_err(|_| BuildError::UnknownCommit(rev.to_owned()))
    }

    /// The one-line subject of `commit`.
    pub fn subject(&self, commit: &str) -> Result<String, BuildError> {
        git(&self.repo, &["log", "-1", "--format=%s", commit])
    }

    /// Whether `commit` has the batch protocol (without building it).
    pub fn has_protocol(&self, commit: &str) -> bool {
        git(
            &self.repo,
            &[
                "cat-file",
                "-e",
                &format!("{commit}:src/measure/batches.rs"),
            ],
        )
        .is_ok()
    }

    /// The cached binary of `commit`, present or not.
    pub fn binary_path(&self, commit: &str) -> PathBuf {
        self.cache_dir().join(commit).join("perfwarden")
    }

    /// perfwarden built at `commit` (a full hash): from the cache, or built
    /// now in a worktree, with cargo's output passed to `progress`. Nothing
    /// is cached unless the build succeeded.
    pub fn binary(
        &self,
        commit: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PathBuf, BuildError> {
        let binary = self.binary_path(commit);
        if binary.is_file() {
            progress(Progress::Output(&format!(
                "{commit} already built: {}",
                binary.display()
            )));
            return Ok(binary);
        }
        if !self.has_protocol(commit) {
            return Err(BuildError::PredatesProtocol(commit.to_owned()));
        }
        let io = |what: &str, e: std::io::Error| BuildError::Io(format!("{what}: {e}"));
        let cache = self.cache_dir();
        std::fs::create_dir_all(&cache)
            .map_err(|e| io(&format!("creating {}", cache.display()), e))?;
        let worktree = cache.join(format!("src-{commit}"));
        self.remove_worktree(&worktree);
        let worktree_arg = worktree.display().to_string();
        git(
            &self.repo,
            &[
                "worktree",
                "add",
                "--detach",
                "--force",
                &worktree_arg,
                commit,
            ],
        )?;
        let dir = binary.parent().expect("the binary is in a directory");
        std::fs::create_dir_all(dir).map_err(|e| io(&format!("creating {}", dir.display()), e))?;
        // Built under another name and renamed: an interrupted build leaves
        // no binary that looks complete.
        let partial = dir.join("perfwarden.partial");
        let built = self.build_in(&worktree, commit, &partial, progress);
        self.remove_worktree(&worktree);
        built?;
        std::fs::rename(&partial, &binary)
            .map_err(|e| io(&format!("renaming {}", partial.display()), e))?;
        Ok(binary)
    }

    /// Builds the checkout in `worktree` and moves the binary to `to`.
    /// Cargo writes it over `<target>/release/perfwarden`, which is the
    /// user's own build: that is set aside first and put back after.
    fn build_in(
        &self,
        worktree: &Path,
        commit: &str,
        to: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), BuildError> {
        let uplifted = self.target_dir.join("release/perfwarden");
        let kept = self.cache_dir().join("release-perfwarden.kept");
        let _ = std::fs::remove_file(&kept);
        let had_own = std::fs::hard_link(&uplifted, &kept).is_ok();
        let mut command = cargo_command();
        command
            .current_dir(worktree)
            .args(["build", "--release", "--bin", "perfwarden"])
            .env("CARGO_TARGET_DIR", &self.target_dir);
        let result = run_tool(
            command,
            &format!("cargo build --release at {commit}"),
            progress,
        );
        let moved = result.is_ok() && std::fs::rename(&uplifted, to).is_ok();
        if had_own {
            let _ = std::fs::rename(&kept, &uplifted);
        }
        match result {
            Err(error) => Err(BuildError::Failed {
                commit: commit.to_owned(),
                message: error.to_string(),
            }),
            Ok(()) if !moved => Err(BuildError::Failed {
                commit: commit.to_owned(),
                message: format!("cargo left no binary at {}", uplifted.display()),
            }),
            Ok(()) => Ok(()),
        }
    }

    /// Removes a worktree this module made, if it is there.
    fn remove_worktree(&self, worktree: &Path) {
        if worktree.exists() {
            let path = worktree.display().to_string();
            let _ = git(&self.repo, &["worktree", "remove", "--force", &path]);
            let _ = std::fs::remove_dir_all(worktree);
        }
        let _ = git(&self.repo, &["worktree", "prune"]);
    }
}
