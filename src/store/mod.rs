//! Run history in SQLite (sqlx). The schema is in `migrations/` (append-only,
//! embedded, applied on open) and documented in the README.
//!
//! A run is written in one `BEGIN IMMEDIATE` transaction: a crash leaves no
//! half-run, and concurrent writers queue on the busy timeout (WAL mode)
//! instead of failing.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqlStr};

/// The database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the database {url}: {source}; check the path or set --database-url / DATABASE_URL"
    )]
    Open { url: String, source: sqlx::Error },
    #[error("cannot create the directory {dir} for the database: {source}")]
    Directory {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot migrate the database {url}: {source}. If it was written by a newer perfwarden, use that version or another --database-url"
    )]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("run {0} does not exist; `perfwarden history` lists the stored runs")]
    NoSuchRun(i64),
}

fn migrator() -> Migrator {
    let migration = |version, description: &str, sql: &'static str| {
        Migration::new(
            version,
            description.to_owned().into(),
            MigrationType::Simple,
            SqlStr::from_static(sql),
            false,
        )
    };
    Migrator::with_migrations(vec![migration(
        1,
        "runs",
        include_str!("../../migrations/0001_runs.sql"),
    )])
}

/// The default database: `$PERFWARDEN_DATA_DIR`, else `$XDG_DATA_HOME/perfwarden`,
/// else `~/.local/share/perfwarden`; the file is `history.db`.
pub fn default_database_path() -> PathBuf {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("PERFWARDEN_DATA_DIR")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("perfwarden")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/perfwarden")))
        .unwrap_or_else(|| PathBuf::from(".perfwarden"))
        .join("history.db")
}

/// Who measured what, where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: u32,
    pub os: String,
    pub rustc: String,
    pub valgrind: Option<String>,
}

impl Machine {
    /// Runs compare wall clock only when this matches.
    pub fn id(&self) -> String {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}",
            self.cpu_model,
            self.cores,
            self.os,
            self.rustc,
            self.valgrind.as_deref().unwrap_or("-")
        );
        crate::chat::acquire::sha256_hex(text.as_bytes())[..16].to_owned()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    Criterion,
    Callgrind,
    /// The spec's own 10-iteration method.
    Spec,
    /// The verdict's sampler: sync and async batches alternating.
    Paired,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Criterion => "criterion",
            Tool::Callgrind => "callgrind",
            Tool::Spec => "spec",
            Tool::Paired => "paired",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Tool::Criterion, Tool::Callgrind, Tool::Spec, Tool::Paired]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// One figure; `value` is `None` when it could not be measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    pub tool: Tool,
    pub benchmark: String,
    pub metric: String,
    pub value: Option<f64>,
    pub unit: String,
}

/// One raw sample: `iterations` runs taking `total_ns` together.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RawSample {
    pub tool: Tool,
    pub benchmark: String,
    pub iterations: f64,
    pub total_ns: f64,
}

/// A run as measured, before it has an id.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewRun {
    pub commit: String,
    pub branch: Option<String>,
    pub base_commit: Option<String>,
    pub pr_number: Option<u64>,
    pub dirty: bool,
    pub quick: bool,
    pub machine: Machine,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub notes: Vec<String>,
    pub measurements: Vec<Measurement>,
    pub samples: Vec<RawSample>,
}

/// A stored run's metadata.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunInfo {
    pub id: i64,
    pub commit: String,
    pub branch: Option<String>,
    pub base_commit: Option<String>,
    pub pr_number: Option<i64>,
    pub dirty: bool,
    pub quick: bool,
    pub machine_id: String,
    pub machine: Machine,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub notes: Vec<String>,
}

pub struct Store {
    pool: SqlitePool,
}

/// Accepts `sqlite://path`, `sqlite:path` or a plain path.
fn connect_options(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
    let options = if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)?
    } else {
        SqliteConnectOptions::new().filename(url)
    };
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true))
}

const RUN_COLUMNS: &str = "id, commit_sha, branch, base_commit, pr_number, dirty, quick, machine_id, cpu_model, cores, os, rustc, valgrind, started_at_ms, finished_at_ms, notes";

fn run_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RunInfo, sqlx::Error> {
    let notes: String = row.try_get("notes")?;
    Ok(RunInfo {
        id: row.try_get("id")?,
        commit: row.try_get("commit_sha")?,
        branch: row.try_get("branch")?,
        base_commit: row.try_get("base_commit")?,
        pr_number: row.try_get("pr_number")?,
        dirty: row.try_get("dirty")?,
        quick: row.try_get("quick")?,
        machine_id: row.try_get("machine_id")?,
        machine: Machine {
            cpu_model: row.try_get("cpu_model")?,
            cores: row.try_get("cores")?,
            os: row.try_get("os")?,
            rustc: row.try_get("rustc")?,
            valgrind: row.try_get("valgrind")?,
        },
        started_at_ms: row.try_get("started_at_ms")?,
        finished_at_ms: row.try_get("finished_at_ms")?,
        notes: notes.lines().map(str::to_owned).collect(),
    })
}

impl Store {
    /// Opens (creating and migrating when needed) the database at `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            url: url.to_owned(),
            source,
        };
        let options = connect_options(url).map_err(open_error)?;
        let path: &Path = options.get_filename();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                dir: dir.to_owned(),
                source,
            })?;
        }
        // Two processes creating one file at once can collide on the switch
        // to WAL or on the first migration; the loser retries.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options.clone())
                    .await
                    .map_err(open_error)?;
                migrator()
                    .run(&pool)
                    .await
                    .map_err(|source| StoreError::Migrate {
                        url: url.to_owned(),
                        source,
                    })?;
                Ok(pool)
            }
            .await;
            match result {
                Ok(pool) => return Ok(Self { pool }),
                Err(_) if attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Writes a run and all its figures in one transaction; returns its id.
    pub async fn insert_run(&self, run: &NewRun) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = sqlx::query(
            "INSERT INTO runs (commit_sha, branch, base_commit, pr_number, dirty, quick, machine_id, cpu_model, cores, os, rustc, valgrind, started_at_ms, finished_at_ms, notes)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&run.commit)
        .bind(&run.branch)
        .bind(&run.base_commit)
        .bind(run.pr_number.map(|n| n as i64))
        .bind(run.dirty)
        .bind(run.quick)
        .bind(run.machine.id())
        .bind(&run.machine.cpu_model)
        .bind(run.machine.cores)
        .bind(&run.machine.os)
        .bind(&run.machine.rustc)
        .bind(&run.machine.valgrind)
        .bind(run.started_at_ms)
        .bind(run.finished_at_ms)
        .bind(run.notes.join("\n"))
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        for m in &run.measurements {
            sqlx::query(
                "INSERT INTO measurements (run_id, tool, benchmark, metric, value, unit) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(m.tool.name())
            .bind(&m.benchmark)
            .bind(&m.metric)
            .bind(m.value)
            .bind(&m.unit)
            .execute(&mut *tx)
            .await?;
        }
        let mut index = std::collections::HashMap::<(Tool, &str), i64>::new();
        for s in &run.samples {
            let next = index.entry((s.tool, s.benchmark.as_str())).or_insert(0);
            sqlx::query(
                "INSERT INTO samples (run_id, tool, benchmark, sample_index, iterations, total_ns) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(s.tool.name())
            .bind(&s.benchmark)
            .bind(*next)
            .bind(s.iterations)
            .bind(s.total_ns)
            .execute(&mut *tx)
            .await?;
            *next += 1;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Stored runs, newest first.
    pub async fn runs(&self, limit: Option<u32>) -> Result<Vec<RunInfo>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?"
        )))
        .bind(limit.map_or(-1, i64::from))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(run_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn run(&self, id: i64) -> Result<RunInfo, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NoSuchRun(id))?;
        Ok(run_from_row(&row)?)
    }

    pub async fn measurements(&self, run_id: i64) -> Result<Vec<Measurement>, StoreError> {
        let rows = sqlx::query(
            "SELECT tool, benchmark, metric, value, unit FROM measurements WHERE run_id = ? ORDER BY tool, benchmark, metric",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let tool: String = row.try_get("tool")?;
                Ok(Measurement {
                    tool: Tool::parse(&tool).ok_or_else(|| {
                        sqlx::Error::Decode(format!("unknown tool '{tool}'").into())
                    })?,
                    benchmark: row.try_get("benchmark")?,
                    metric: row.try_get("metric")?,
                    value: row.try_get("value")?,
                    unit: row.try_get("unit")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn samples(
        &self,
        run_id: i64,
        tool: Tool,
        benchmark: &str,
    ) -> Result<Vec<RawSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT iterations, total_ns FROM samples WHERE run_id = ? AND tool = ? AND benchmark = ? ORDER BY sample_index",
        )
        .bind(run_id)
        .bind(tool.name())
        .bind(benchmark)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RawSample {
                    tool,
                    benchmark: benchmark.to_owned(),
                    iterations: row.try_get("iterations")?,
                    total_ns: row.try_get("total_ns")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
