//! Run history in SQLite (sqlx). The schema is in `migrations/` (append-only,
//! embedded, applied on open) and documented in the README.
//!
//! A run is written in one `BEGIN IMMEDIATE` transaction: a crash leaves no
//! half-run, and concurrent writers queue on the busy timeout (WAL mode)
//! instead of failing.

pub mod synthetic;

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
    Migrator::with_migrations(vec![
        migration(1, "runs", include_str!("../../migrations/0001_runs.sql")),
        migration(
            2,
            "judgements",
            include_str!("../../migrations/0002_judgements.sql"),
        ),
    ])
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

    pub fn parse(name: &str) -> Option<Self> {
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

/// A stored verdict's case, as plain values.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct CaseRow {
    pub case_name: String,
    pub payload: String,
    pub payload_bytes: i64,
    pub baseline_ns: Option<f64>,
    pub candidate_ns: Option<f64>,
    pub overhead: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub status: String,
    pub pairs: i64,
    pub literal_overhead: Option<f64>,
    pub instructions_baseline: Option<f64>,
    pub instructions_candidate: Option<f64>,
    pub instruction_overhead: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct VerdictRow {
    pub contract: String,
    pub status: String,
    pub limit: f64,
    pub confidence: f64,
    pub judged_at_ms: i64,
    pub cases: Vec<CaseRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct CheckRow {
    pub check_id: String,
    pub status: String,
    pub evidence: String,
    /// A JSON object.
    pub figures: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ComparisonRow {
    pub base_run_id: i64,
    pub tool: String,
    pub benchmark: String,
    pub metric: String,
    pub head: f64,
    pub base: f64,
    pub change: f64,
    pub threshold: f64,
    pub learned: bool,
    pub status: String,
}

/// Everything `report` concluded about one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Judgement {
    pub verdicts: Vec<VerdictRow>,
    pub checklist: Vec<CheckRow>,
    pub comparisons: Vec<ComparisonRow>,
}

/// One run's headline figures, for trend charts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendPoint {
    pub run: RunInfo,
    /// (tool, benchmark, metric, value) for Criterion means and callgrind instructions.
    pub figures: Vec<(Tool, String, String, f64)>,
    /// The run's verdict per contract.
    pub verdicts: Vec<(String, String)>,
    /// Benchmarks found regressed against their base.
    pub regressions: Vec<String>,
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

    /// Replaces what was concluded about `run_id` with `judgement`, atomically.
    pub async fn save_judgement(
        &self,
        run_id: i64,
        judgement: &Judgement,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for table in ["case_verdicts", "verdicts", "checklist", "comparisons"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE run_id = ?"
            )))
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        }
        for v in &judgement.verdicts {
            sqlx::query("INSERT INTO verdicts (run_id, contract, status, limit_fraction, confidence, judged_at_ms) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(run_id)
                .bind(&v.contract)
                .bind(&v.status)
                .bind(v.limit)
                .bind(v.confidence)
                .bind(v.judged_at_ms)
                .execute(&mut *tx)
                .await?;
            for c in &v.cases {
                sqlx::query(
                    "INSERT INTO case_verdicts (run_id, contract, case_name, payload, payload_bytes, baseline_ns, candidate_ns, overhead, ci_low, ci_high, status, pairs, literal_overhead, instructions_baseline, instructions_candidate, instruction_overhead)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(run_id)
                .bind(&v.contract)
                .bind(&c.case_name)
                .bind(&c.payload)
                .bind(c.payload_bytes)
                .bind(c.baseline_ns)
                .bind(c.candidate_ns)
                .bind(c.overhead)
                .bind(c.ci_low)
                .bind(c.ci_high)
                .bind(&c.status)
                .bind(c.pairs)
                .bind(c.literal_overhead)
                .bind(c.instructions_baseline)
                .bind(c.instructions_candidate)
                .bind(c.instruction_overhead)
                .execute(&mut *tx)
                .await?;
            }
        }
        for c in &judgement.checklist {
            sqlx::query("INSERT INTO checklist (run_id, check_id, status, evidence, figures) VALUES (?, ?, ?, ?, ?)")
                .bind(run_id)
                .bind(&c.check_id)
                .bind(&c.status)
                .bind(&c.evidence)
                .bind(&c.figures)
                .execute(&mut *tx)
                .await?;
        }
        for c in &judgement.comparisons {
            sqlx::query(
                "INSERT INTO comparisons (run_id, base_run_id, tool, benchmark, metric, head, base, change, threshold, learned, status)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(c.base_run_id)
            .bind(&c.tool)
            .bind(&c.benchmark)
            .bind(&c.metric)
            .bind(c.head)
            .bind(c.base)
            .bind(c.change)
            .bind(c.threshold)
            .bind(c.learned)
            .bind(&c.status)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// What was concluded about `run_id` (empty when it was never judged).
    pub async fn judgement(&self, run_id: i64) -> Result<Judgement, StoreError> {
        let mut judgement = Judgement::default();
        let verdicts = sqlx::query("SELECT contract, status, limit_fraction, confidence, judged_at_ms FROM verdicts WHERE run_id = ? ORDER BY contract")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        for row in &verdicts {
            let contract: String = row.try_get("contract")?;
            let cases = sqlx::query(
                "SELECT case_name, payload, payload_bytes, baseline_ns, candidate_ns, overhead, ci_low, ci_high, status, pairs, literal_overhead, instructions_baseline, instructions_candidate, instruction_overhead
                 FROM case_verdicts WHERE run_id = ? AND contract = ? ORDER BY rowid",
            )
            .bind(run_id)
            .bind(&contract)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(CaseRow {
                    case_name: r.try_get("case_name")?,
                    payload: r.try_get("payload")?,
                    payload_bytes: r.try_get("payload_bytes")?,
                    baseline_ns: r.try_get("baseline_ns")?,
                    candidate_ns: r.try_get("candidate_ns")?,
                    overhead: r.try_get("overhead")?,
                    ci_low: r.try_get("ci_low")?,
                    ci_high: r.try_get("ci_high")?,
                    status: r.try_get("status")?,
                    pairs: r.try_get("pairs")?,
                    literal_overhead: r.try_get("literal_overhead")?,
                    instructions_baseline: r.try_get("instructions_baseline")?,
                    instructions_candidate: r.try_get("instructions_candidate")?,
                    instruction_overhead: r.try_get("instruction_overhead")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            judgement.verdicts.push(VerdictRow {
                contract,
                status: row.try_get("status")?,
                limit: row.try_get("limit_fraction")?,
                confidence: row.try_get("confidence")?,
                judged_at_ms: row.try_get("judged_at_ms")?,
                cases,
            });
        }
        judgement.checklist = sqlx::query("SELECT check_id, status, evidence, figures FROM checklist WHERE run_id = ? ORDER BY check_id")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(CheckRow {
                    check_id: r.try_get("check_id")?,
                    status: r.try_get("status")?,
                    evidence: r.try_get("evidence")?,
                    figures: r.try_get("figures")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        judgement.comparisons = sqlx::query(
            "SELECT base_run_id, tool, benchmark, metric, head, base, change, threshold, learned, status FROM comparisons WHERE run_id = ? ORDER BY benchmark, tool",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ComparisonRow {
                base_run_id: r.try_get("base_run_id")?,
                tool: r.try_get("tool")?,
                benchmark: r.try_get("benchmark")?,
                metric: r.try_get("metric")?,
                head: r.try_get("head")?,
                base: r.try_get("base")?,
                change: r.try_get("change")?,
                threshold: r.try_get("threshold")?,
                learned: r.try_get("learned")?,
                status: r.try_get("status")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
        Ok(judgement)
    }

    /// The latest run of `commit`, else of `branch`, other than `exclude`.
    pub async fn latest_base_run(
        &self,
        commit: Option<&str>,
        branch: Option<&str>,
        exclude: i64,
    ) -> Result<Option<RunInfo>, StoreError> {
        for (column, value) in [("commit_sha", commit), ("branch", branch)] {
            let Some(value) = value else { continue };
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE {column} = ? AND id != ? ORDER BY id DESC LIMIT 1"
            )))
            .bind(value)
            .bind(exclude)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                return Ok(Some(run_from_row(&row)?));
            }
        }
        Ok(None)
    }

    /// The newest `limit` runs (oldest first) with their headline figures,
    /// verdicts and regressions: what trend charts need, in four queries.
    pub async fn trend(&self, limit: u32) -> Result<Vec<TrendPoint>, StoreError> {
        let mut runs = self.runs(Some(limit)).await?;
        runs.reverse();
        let first = runs.first().map_or(0, |r| r.id);
        let mut points: Vec<TrendPoint> = runs
            .into_iter()
            .map(|run| TrendPoint {
                run,
                figures: Vec::new(),
                verdicts: Vec::new(),
                regressions: Vec::new(),
            })
            .collect();
        let index: std::collections::HashMap<i64, usize> = points
            .iter()
            .enumerate()
            .map(|(i, p)| (p.run.id, i))
            .collect();
        let figures = sqlx::query(
            "SELECT run_id, tool, benchmark, metric, value FROM measurements
             WHERE run_id >= ? AND value IS NOT NULL AND ((tool = 'criterion' AND metric = 'mean') OR (tool = 'callgrind' AND metric = 'instructions'))",
        )
        .bind(first)
        .fetch_all(&self.pool)
        .await?;
        for row in &figures {
            let run_id: i64 = row.try_get("run_id")?;
            let tool: String = row.try_get("tool")?;
            if let (Some(&i), Some(tool)) = (index.get(&run_id), Tool::parse(&tool)) {
                points[i].figures.push((
                    tool,
                    row.try_get("benchmark")?,
                    row.try_get("metric")?,
                    row.try_get("value")?,
                ));
            }
        }
        for row in sqlx::query("SELECT run_id, contract, status FROM verdicts WHERE run_id >= ?")
            .bind(first)
            .fetch_all(&self.pool)
            .await?
            .iter()
        {
            let run_id: i64 = row.try_get("run_id")?;
            if let Some(&i) = index.get(&run_id) {
                points[i]
                    .verdicts
                    .push((row.try_get("contract")?, row.try_get("status")?));
            }
        }
        for row in sqlx::query("SELECT run_id, benchmark, tool FROM comparisons WHERE run_id >= ? AND status = 'regression'")
            .bind(first)
            .fetch_all(&self.pool)
            .await?
            .iter()
        {
            let run_id: i64 = row.try_get("run_id")?;
            if let Some(&i) = index.get(&run_id) {
                let benchmark: String = row.try_get("benchmark")?;
                let tool: String = row.try_get("tool")?;
                points[i].regressions.push(format!("{tool}:{benchmark}"));
            }
        }
        Ok(points)
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
