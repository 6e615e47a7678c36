//! Run history in SQLite or PostgreSQL (sqlx). The schema is in
//! `migrations/` (SQLite) and `migrations/postgres/` (PostgreSQL): append-only,
//! embedded, applied on open, the same versions with the same tables and
//! columns in both (docs/schema.md).
//!
//! A run is written in one transaction: a crash leaves no half-run. SQLite
//! takes it with `BEGIN IMMEDIATE` in WAL mode, so concurrent writers queue on
//! the busy timeout instead of failing; [`Store::close`] checkpoints the WAL
//! into the database file. PostgreSQL serves many writers on many machines.
//!
//! What was measured is never deleted: a judgement is keyed by the contract's
//! content hash and written once, and samples taken while re-measuring are
//! appended to the run.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Decode, Postgres, QueryBuilder, Row, SqlStr, Sqlite, Type};

use crate::diagnose::probes::{Check, ProbeResult, ProbeStatus};
use crate::judge::builds::BuildComparison;
use crate::judge::change_points::{ChangePoint, SeriesChangePoint, SeriesKey};
use crate::judge::compare::{Change, Comparison};
use crate::judge::contract::Bound;
use crate::judge::verdict::{CaseVerdict, ContractVerdict, Looks, Status};
use crate::measure::batch_noise::{BatchEnvironment, BatchLog, RunNoise, Side, SpeedProbe};
use crate::measure::noise::HOST_BENCHMARK;
use crate::measure::profile::{FunctionCost, Profile};
use crate::metric::Metric;

/// The database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the database {url}: {source}; check the path or URL given with --database-url / DATABASE_URL"
    )]
    Open { url: String, source: sqlx::Error },
    #[error(
        "there is no database at {}: check --database-url / DATABASE_URL (`perfwarden run` or `perfwarden report` create one)",
        path.display()
    )]
    Missing { path: PathBuf },
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
    #[error(
        "the database {url} has schema version {found}, this perfwarden reads version {expected}; a read-only command does not migrate it: run `perfwarden report --no-measure` on it once (with write access), or use the perfwarden that wrote it"
    )]
    Schema {
        url: String,
        found: i64,
        expected: i64,
    },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("run {0} does not exist; `perfwarden history` lists the stored runs")]
    NoSuchRun(i64),
}

/// How a command uses the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Created and migrated when needed (`run`, `report`).
    Create,
    /// Must exist already; migrated, written (`report --no-measure`, `publish`).
    Existing,
    /// Must exist already; never written, not even migrated, so a read-only
    /// file or a read-only role does (`history`).
    ReadOnly,
}

/// The migrations of one engine: (version, description, SQL).
type Migrations = [(i64, &'static str, &'static str); 10];

/// SQLite's migrations (`migrations/`).
pub const SQLITE_MIGRATIONS: Migrations = [
    (1, "runs", include_str!("../../migrations/0001_runs.sql")),
    (
        2,
        "judgements",
        include_str!("../../migrations/0002_judgements.sql"),
    ),
    (
        3,
        "judgements by contract hash",
        include_str!("../../migrations/0003_judgements_by_contract_hash.sql"),
    ),
    (
        4,
        "contract metrics",
        include_str!("../../migrations/0004_contract_metrics.sql"),
    ),
    (
        5,
        "verdict looks",
        include_str!("../../migrations/0005_verdict_looks.sql"),
    ),
    (
        6,
        "checklist warn",
        include_str!("../../migrations/0006_checklist_warn.sql"),
    ),
    (
        7,
        "change points",
        include_str!("../../migrations/0007_change_points.sql"),
    ),
    (
        8,
        "build comparisons",
        include_str!("../../migrations/0008_build_comparisons.sql"),
    ),
    (
        9,
        "profiles",
        include_str!("../../migrations/0009_profiles.sql"),
    ),
    (
        10,
        "batch environment",
        include_str!("../../migrations/0010_batch_environment.sql"),
    ),
];

/// PostgreSQL's migrations (`migrations/postgres/`): the same versions.
pub const POSTGRES_MIGRATIONS: Migrations = [
    (
        1,
        "runs",
        include_str!("../../migrations/postgres/0001_runs.sql"),
    ),
    (
        2,
        "judgements",
        include_str!("../../migrations/postgres/0002_judgements.sql"),
    ),
    (
        3,
        "judgements by contract hash",
        include_str!("../../migrations/postgres/0003_judgements_by_contract_hash.sql"),
    ),
    (
        4,
        "contract metrics",
        include_str!("../../migrations/postgres/0004_contract_metrics.sql"),
    ),
    (
        5,
        "verdict looks",
        include_str!("../../migrations/postgres/0005_verdict_looks.sql"),
    ),
    (
        6,
        "checklist warn",
        include_str!("../../migrations/postgres/0006_checklist_warn.sql"),
    ),
    (
        7,
        "change points",
        include_str!("../../migrations/postgres/0007_change_points.sql"),
    ),
    (
        8,
        "build comparisons",
        include_str!("../../migrations/postgres/0008_build_comparisons.sql"),
    ),
    (
        9,
        "profiles",
        include_str!("../../migrations/postgres/0009_profiles.sql"),
    ),
    (
        10,
        "batch environment",
        include_str!("../../migrations/postgres/0010_batch_environment.sql"),
    ),
];

fn migrator(migrations: &Migrations) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).to_owned().into(),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
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

/// `url` with any password masked, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
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
    /// Callgrind's profile per benchmark (top functions only).
    pub profiles: Vec<BenchmarkProfile>,
    /// What the OS said about the paired sampler's batches, per series.
    pub environment: Vec<SeriesEnvironment>,
}

/// The callgrind profile of one benchmark of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchmarkProfile {
    /// `<payload>/<variant>`, e.g. `medium/async`.
    pub benchmark: String,
    pub profile: Profile,
}

/// The batches of one paired sample series (its judged key, as in
/// `samples`) as the OS saw them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SeriesEnvironment {
    pub benchmark: String,
    pub log: BatchLog,
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

/// Everything `report` concluded about one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Judgement {
    pub verdicts: Vec<ContractVerdict>,
    pub checklist: Vec<ProbeResult>,
    pub comparisons: Vec<Comparison>,
    /// Head against base built and measured side by side; when present it
    /// replaces `comparisons` (then empty).
    pub build_comparison: Option<BuildComparison>,
}

/// One run's headline figures, for trend charts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendPoint {
    pub run: RunInfo,
    /// (tool, benchmark, metric, value) for Criterion means with their
    /// intervals (`ci_low`, `ci_high`), callgrind instructions and the host's
    /// noise (`paired`, `host`).
    pub figures: Vec<(Tool, String, String, f64)>,
    /// The run's verdicts, the latest judged first.
    pub verdicts: Vec<TrendVerdict>,
    /// Benchmarks found regressed against their base.
    pub regressions: Vec<String>,
}

/// A stored verdict in brief, for trends: its status and each case's
/// judged figure (in the metric's judged unit).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendVerdict {
    pub contract: String,
    pub contract_hash: String,
    pub metric: Metric,
    /// In the judged unit.
    pub bound: Bound,
    pub status: Status,
    pub cases: Vec<TrendCase>,
}

/// A case's judged figure and interval in a stored verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendCase {
    pub case: String,
    pub estimate: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub struct Store {
    pool: Pool,
    access: Access,
}

/// Runs `$body` with `$pool` bound to the engine's pool. Queries are written
/// once, with `$1`-style placeholders, which both engines read.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` inside one transaction bound to `$tx` and commits it. SQLite
/// takes the write lock up front (`BEGIN IMMEDIATE`), so a writer waits on
/// the busy timeout instead of failing on a lock upgrade. `Db` names the
/// engine inside `$body`.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite(pool) => {
                type Db = Sqlite;
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            Pool::Postgres(pool) => {
                type Db = Postgres;
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}

/// A column type both engines decode.
trait Value:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Value for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A row of either engine.
trait StoreRow {
    fn value<T: Value>(&self, column: &str) -> Result<T, sqlx::Error>;
}

impl StoreRow for SqliteRow {
    fn value<T: Value>(&self, column: &str) -> Result<T, sqlx::Error> {
        self.try_get(column)
    }
}

impl StoreRow for PgRow {
    fn value<T: Value>(&self, column: &str) -> Result<T, sqlx::Error> {
        self.try_get(column)
    }
}

/// Accepts `sqlite://path`, `sqlite:path` or a plain path.
fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
    if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)
    } else {
        Ok(SqliteConnectOptions::new().filename(url))
    }
}

/// Whether this process may write `path` (and create files beside it, as
/// SQLite's WAL mode must).
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let may_write = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            // SAFETY: `c` is a NUL-terminated path that outlives the call.
            .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    may_write(path) && may_write(dir)
}

const RUN_COLUMNS: &str = "id, commit_sha, branch, base_commit, pr_number, dirty, quick, machine_id, cpu_model, cores, os, rustc, valgrind, started_at_ms, finished_at_ms, notes";

fn run_from_row(row: &impl StoreRow) -> Result<RunInfo, sqlx::Error> {
    let notes: String = row.value("notes")?;
    let cores: i64 = row.value("cores")?;
    Ok(RunInfo {
        id: row.value("id")?,
        commit: row.value("commit_sha")?,
        branch: row.value("branch")?,
        base_commit: row.value("base_commit")?,
        pr_number: row.value("pr_number")?,
        dirty: row.value("dirty")?,
        quick: row.value("quick")?,
        machine_id: row.value("machine_id")?,
        machine: Machine {
            cpu_model: row.value("cpu_model")?,
            cores: u32::try_from(cores)
                .map_err(|_| sqlx::Error::Decode(format!("cores = {cores}").into()))?,
            os: row.value("os")?,
            rustc: row.value("rustc")?,
            valgrind: row.value("valgrind")?,
        },
        started_at_ms: row.value("started_at_ms")?,
        finished_at_ms: row.value("finished_at_ms")?,
        notes: notes.lines().map(str::to_owned).collect(),
    })
}

fn measurement_from_row(row: &impl StoreRow) -> Result<Measurement, sqlx::Error> {
    let tool: String = row.value("tool")?;
    Ok(Measurement {
        tool: Tool::parse(&tool)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown tool '{tool}'").into()))?,
        benchmark: row.value("benchmark")?,
        metric: row.value("metric")?,
        value: row.value("value")?,
        unit: row.value("unit")?,
    })
}

fn decode_error(what: String) -> sqlx::Error {
    sqlx::Error::Decode(what.into())
}

fn status_from(label: &str) -> Result<Status, sqlx::Error> {
    Status::parse(label).ok_or_else(|| decode_error(format!("unknown status '{label}'")))
}

fn case_from_row(r: &impl StoreRow, verdict_bound: Bound) -> Result<CaseVerdict, sqlx::Error> {
    let status: String = r.value("status")?;
    let payload_bytes: i64 = r.value("payload_bytes")?;
    let samples: i64 = r.value("pairs")?;
    let bound: Option<f64> = r.value("bound")?;
    Ok(CaseVerdict {
        case: r.value("case_name")?,
        payload: r.value("payload")?,
        payload_bytes: usize::try_from(payload_bytes).unwrap_or(0),
        baseline: r.value("baseline_ns")?,
        candidate: r.value("candidate_ns")?,
        estimate: r.value("overhead")?,
        low: r.value("ci_low")?,
        high: r.value("ci_high")?,
        bound: bound.map_or(verdict_bound, |v| {
            Bound::from_kind(verdict_bound.kind(), v).unwrap_or(verdict_bound)
        }),
        status: status_from(&status)?,
        samples: usize::try_from(samples).unwrap_or(0),
        note: r.value("note")?,
        literal_overhead: r.value("literal_overhead")?,
        instructions_baseline: r.value("instructions_baseline")?,
        instructions_candidate: r.value("instructions_candidate")?,
        instruction_overhead: r.value("instruction_overhead")?,
    })
}

fn check_from_row(r: &impl StoreRow) -> Result<ProbeResult, sqlx::Error> {
    let id: String = r.value("check_id")?;
    let status: String = r.value("status")?;
    let figures: String = r.value("figures")?;
    Ok(ProbeResult {
        check: Check::parse(&id).ok_or_else(|| decode_error(format!("unknown check '{id}'")))?,
        status: ProbeStatus::parse(&status)
            .ok_or_else(|| decode_error(format!("unknown check status '{status}'")))?,
        evidence: r.value("evidence")?,
        figures: serde_json::from_str(&figures)
            .map_err(|e| decode_error(format!("the figures of check '{id}': {e}")))?,
    })
}

fn change_point_from_row(r: &impl StoreRow) -> Result<SeriesChangePoint, sqlx::Error> {
    let index: i64 = r.value("series_index")?;
    Ok(SeriesChangePoint {
        series: SeriesKey {
            source: r.value("source")?,
            benchmark: r.value("benchmark")?,
            metric: r.value("metric")?,
            machine_id: r.value("machine_id")?,
        },
        change: ChangePoint {
            index: usize::try_from(index)
                .map_err(|_| decode_error(format!("series_index = {index}")))?,
            before_run_id: r.value("before_run_id")?,
            before_commit: r.value("before_commit")?,
            after_run_id: r.value("after_run_id")?,
            after_commit: r.value("after_commit")?,
            mean_before: r.value("mean_before")?,
            mean_after: r.value("mean_after")?,
            relative_change: r.value("relative_change")?,
            p_value: r.value("p_value")?,
        },
    })
}

fn comparison_from_row(r: &impl StoreRow) -> Result<Comparison, sqlx::Error> {
    let tool: String = r.value("tool")?;
    let status: String = r.value("status")?;
    Ok(Comparison {
        base_run_id: r.value("base_run_id")?,
        tool: Tool::parse(&tool).ok_or_else(|| decode_error(format!("unknown tool '{tool}'")))?,
        benchmark: r.value("benchmark")?,
        metric: r.value("metric")?,
        head: r.value("head")?,
        base: r.value("base")?,
        change: r.value("change")?,
        threshold: r.value("threshold")?,
        learned: r.value("learned")?,
        status: Change::parse(&status)
            .ok_or_else(|| decode_error(format!("unknown comparison status '{status}'")))?,
    })
}

/// Rows per multi-row INSERT: six parameters each stays well under both
/// engines' limits on bound parameters.
const SAMPLES_PER_INSERT: usize = 1000;

/// Rows per INSERT of change points: fifteen parameters each.
const CHANGE_POINTS_PER_INSERT: usize = 250;

/// Appends `$samples` to run `$run_id` inside `$tx`, numbering each
/// benchmark's samples on from the last one stored.
macro_rules! insert_samples {
    ($tx:ident, $run_id:expr, $samples:expr) => {{
        let run_id: i64 = $run_id;
        let mut index = std::collections::HashMap::<(Tool, &str), i64>::new();
        let mut rows = Vec::with_capacity($samples.len());
        for s in $samples {
            let key = (s.tool, s.benchmark.as_str());
            let next = match index.entry(key) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let first: i64 = sqlx::query(
                        "SELECT COALESCE(MAX(sample_index) + 1, 0) AS next FROM samples WHERE run_id = $1 AND tool = $2 AND benchmark = $3",
                    )
                    .bind(run_id)
                    .bind(s.tool.name())
                    .bind(&s.benchmark)
                    .fetch_one(&mut *$tx)
                    .await?
                    .value("next")?;
                    entry.insert(first)
                }
            };
            rows.push((s, *next));
            *next += 1;
        }
        for chunk in rows.chunks(SAMPLES_PER_INSERT) {
            let mut insert = QueryBuilder::<Db>::new(
                "INSERT INTO samples (run_id, tool, benchmark, sample_index, iterations, total_ns) ",
            );
            insert.push_values(chunk, |mut row, (s, index)| {
                row.push_bind(run_id)
                    .push_bind(s.tool.name())
                    .push_bind(s.benchmark.as_str())
                    .push_bind(*index)
                    .push_bind(s.iterations)
                    .push_bind(s.total_ns);
            });
            insert.build().execute(&mut *$tx).await?;
        }
    }};
}

/// Adds `$measurements` (a slice of [`Measurement`]) to run `$run_id`
/// inside `$tx`.
macro_rules! insert_measurements {
    ($tx:ident, $run_id:expr, $measurements:expr) => {{
        let run_id: i64 = $run_id;
        for m in $measurements {
            sqlx::query(
                "INSERT INTO measurements (run_id, tool, benchmark, metric, value, unit) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(run_id)
            .bind(m.tool.name())
            .bind(&m.benchmark)
            .bind(&m.metric)
            .bind(m.value)
            .bind(&m.unit)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// Rows per multi-row INSERT of batch records: eleven parameters each.
const BATCHES_PER_INSERT: usize = 500;

/// Appends `$series` (a slice of [`SeriesEnvironment`]) to run `$run_id`
/// inside `$tx`, numbering batches, probes and pairs on from those stored.
macro_rules! insert_environment {
    ($tx:ident, $run_id:expr, $series:expr) => {{
        let run_id: i64 = $run_id;
        for series in $series {
            let mut first = Vec::with_capacity(3);
            for query in [
                "SELECT COALESCE(MAX(batch_index) + 1, 0) AS next FROM batch_environment WHERE run_id = $1 AND benchmark = $2",
                "SELECT COALESCE(MAX(pair_index) + 1, 0) AS next FROM batch_environment WHERE run_id = $1 AND benchmark = $2",
                "SELECT COALESCE(MAX(probe_index) + 1, 0) AS next FROM cpu_speed_probes WHERE run_id = $1 AND benchmark = $2",
            ] {
                let n: i64 = sqlx::query(query)
                    .bind(run_id)
                    .bind(&series.benchmark)
                    .fetch_one(&mut *$tx)
                    .await?
                    .value("next")?;
                first.push(n);
            }
            let (first_batch, first_pair, first_probe) = (first[0], first[1], first[2]);
            let cpu = |c: Option<u32>| c.map(i64::from);
            let count = |c: Option<u64>| c.map(|c| c as i64);
            let batches: Vec<_> = series.log.batches.iter().enumerate().collect();
            for chunk in batches.chunks(BATCHES_PER_INSERT) {
                let mut insert = QueryBuilder::<Db>::new(
                    "INSERT INTO batch_environment (run_id, benchmark, batch_index, pair_index, side, sampler_cpu, worker_cpu, sampler_involuntary_switches, sampler_migrations, worker_involuntary_switches, worker_migrations) ",
                );
                insert.push_values(chunk, |mut row, (index, b)| {
                    row.push_bind(run_id)
                        .push_bind(series.benchmark.as_str())
                        .push_bind(first_batch + *index as i64)
                        .push_bind(first_pair + b.pair as i64)
                        .push_bind(b.side.name())
                        .push_bind(cpu(b.sampler_cpu))
                        .push_bind(cpu(b.worker_cpu))
                        .push_bind(count(b.sampler_involuntary_switches))
                        .push_bind(count(b.sampler_migrations))
                        .push_bind(count(b.worker_involuntary_switches))
                        .push_bind(count(b.worker_migrations));
                });
                insert.build().execute(&mut *$tx).await?;
            }
            let probes: Vec<_> = series.log.probes.iter().enumerate().collect();
            for chunk in probes.chunks(BATCHES_PER_INSERT) {
                let mut insert = QueryBuilder::<Db>::new(
                    "INSERT INTO cpu_speed_probes (run_id, benchmark, probe_index, pair_index, cpu, micros) ",
                );
                insert.push_values(chunk, |mut row, (index, p)| {
                    row.push_bind(run_id)
                        .push_bind(series.benchmark.as_str())
                        .push_bind(first_probe + *index as i64)
                        .push_bind(first_pair + p.pair as i64)
                        .push_bind(i64::from(p.cpu))
                        .push_bind(p.micros);
                });
                insert.build().execute(&mut *$tx).await?;
            }
        }
    }};
}

impl Store {
    /// Opens the database at `url`: a SQLite path or `sqlite://` URL, or a
    /// `postgres://` URL. With [`Access::Create`] a SQLite file is created;
    /// every access but [`Access::ReadOnly`] applies the migrations.
    pub async fn open(url: &str, access: Access) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let open_error = |source| StoreError::Open {
            url: shown.clone(),
            source,
        };
        let migrate_error = |source| StoreError::Migrate {
            url: shown.clone(),
            source,
        };
        if is_postgres_url(url) {
            let mut options = PgConnectOptions::from_str(url).map_err(open_error)?;
            if access == Access::ReadOnly {
                options = options.options([("default_transaction_read_only", "on")]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .map_err(open_error)?;
            if access != Access::ReadOnly {
                // sqlx holds an advisory lock while it migrates, so
                // concurrent openers apply each migration once.
                migrator(&POSTGRES_MIGRATIONS)
                    .run(&pool)
                    .await
                    .map_err(migrate_error)?;
            }
            return Self::opened(Pool::Postgres(pool), access, &shown).await;
        }

        let options = sqlite_options(url).map_err(open_error)?;
        let path = options.get_filename().to_owned();
        let options = match access {
            Access::Create => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                        dir: dir.to_owned(),
                        source,
                    })?;
                }
                options.create_if_missing(true)
            }
            Access::Existing | Access::ReadOnly if !path.is_file() => {
                return Err(StoreError::Missing { path });
            }
            Access::Existing => options,
            // Nothing is written, not even the WAL's index: a database this
            // process may not write is opened as immutable.
            Access::ReadOnly => options.read_only(true).immutable(!writable(&path)),
        };
        let options = match access {
            Access::ReadOnly => options,
            _ => options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal),
        }
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true);
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
                if access != Access::ReadOnly {
                    migrator(&SQLITE_MIGRATIONS)
                        .run(&pool)
                        .await
                        .map_err(migrate_error)?;
                }
                Self::opened(Pool::Sqlite(pool), access, &shown).await
            }
            .await;
            match result {
                Ok(store) => return Ok(store),
                Err(StoreError::Schema { .. }) | Err(StoreError::Missing { .. }) => {
                    return result;
                }
                Err(_) if attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The store over `pool`, after a read-only opener's check that the
    /// schema is the one this version reads (the others have migrated it).
    async fn opened(pool: Pool, access: Access, url: &str) -> Result<Self, StoreError> {
        let store = Self { pool, access };
        if access == Access::ReadOnly {
            store.check_schema(url).await?;
        }
        Ok(store)
    }

    async fn check_schema(&self, url: &str) -> Result<(), StoreError> {
        // Versions need not be contiguous: the newest is what this reads.
        let expected = SQLITE_MIGRATIONS
            .iter()
            .map(|(version, ..)| *version)
            .max()
            .unwrap_or(0);
        let found: Option<i64> = with_pool!(self, |pool| {
            let row =
                sqlx::query("SELECT MAX(version) AS version FROM _sqlx_migrations WHERE success")
                    .fetch_one(pool)
                    .await;
            match row {
                Ok(row) => row.value("version")?,
                // No migrations table: an empty or foreign database.
                Err(sqlx::Error::Database(_)) => None,
                Err(error) => return Err(error.into()),
            }
        });
        match found {
            Some(found) if found >= expected => Ok(()),
            found => Err(StoreError::Schema {
                url: url.to_owned(),
                found: found.unwrap_or(0),
                expected,
            }),
        }
    }

    /// Closes the database. SQLite's write-ahead log is checkpointed into the
    /// database file first, so `history.db` copied alone holds every run.
    pub async fn close(self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                if self.access != Access::ReadOnly {
                    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                        .execute(pool)
                        .await?;
                }
                pool.close().await;
            }
            Pool::Postgres(pool) => pool.close().await,
        }
        Ok(())
    }

    /// Writes a run and all its figures in one transaction; returns its id.
    pub async fn insert_run(&self, run: &NewRun) -> Result<i64, StoreError> {
        let id = in_transaction!(self, |tx| {
            let id: i64 = sqlx::query(
                "INSERT INTO runs (commit_sha, branch, base_commit, pr_number, dirty, quick, machine_id, cpu_model, cores, os, rustc, valgrind, started_at_ms, finished_at_ms, notes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
            )
            .bind(&run.commit)
            .bind(&run.branch)
            .bind(&run.base_commit)
            .bind(run.pr_number.map(|n| n as i64))
            .bind(run.dirty)
            .bind(run.quick)
            .bind(run.machine.id())
            .bind(&run.machine.cpu_model)
            .bind(i64::from(run.machine.cores))
            .bind(&run.machine.os)
            .bind(&run.machine.rustc)
            .bind(&run.machine.valgrind)
            .bind(run.started_at_ms)
            .bind(run.finished_at_ms)
            .bind(run.notes.join("\n"))
            .fetch_one(&mut *tx)
            .await?
            .value("id")?;
            insert_measurements!(tx, id, &run.measurements);
            insert_samples!(tx, id, &run.samples);
            for p in &run.profiles {
                sqlx::query(
                    "INSERT INTO profiles (run_id, benchmark, total_ir) VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(&p.benchmark)
                .bind(p.profile.total_ir as i64)
                .execute(&mut *tx)
                .await?;
                for f in &p.profile.functions {
                    sqlx::query(
                        "INSERT INTO profile_functions (run_id, benchmark, function, self_ir, inclusive_ir) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id)
                    .bind(&p.benchmark)
                    .bind(&f.name)
                    .bind(f.self_ir as i64)
                    .bind(f.inclusive_ir as i64)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            insert_environment!(tx, id, &run.environment);
            id
        });
        Ok(id)
    }

    /// Stored runs, newest first.
    pub async fn runs(&self, limit: Option<u32>) -> Result<Vec<RunInfo>, StoreError> {
        let limit = limit.map_or(i64::MAX, i64::from);
        let runs = with_pool!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT $1"
            )))
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(run_from_row)
            .collect::<Result<_, _>>()?
        });
        Ok(runs)
    }

    pub async fn run(&self, id: i64) -> Result<RunInfo, StoreError> {
        let run = with_pool!(self, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NoSuchRun(id))?;
            run_from_row(&row)?
        });
        Ok(run)
    }

    pub async fn measurements(&self, run_id: i64) -> Result<Vec<Measurement>, StoreError> {
        let measurements = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT tool, benchmark, metric, value, unit FROM measurements WHERE run_id = $1 ORDER BY tool, benchmark, metric",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(measurement_from_row)
            .collect::<Result<_, _>>()?
        });
        Ok(measurements)
    }

    /// Adds what was concluded about `run_id`, in one transaction, and
    /// replaces nothing: a verdict already stored for the same run and
    /// contract hash, a check or a comparison already stored for the run stay
    /// as they are. `new_samples` and `new_environment` (taken while
    /// re-measuring) are appended to the run's samples and batch records, and
    /// `noise_over_every_look`, the noise summed up over them and the first
    /// measurement's, replaces the run's noise figures: derived from those
    /// records, not measured, they follow what the verdicts used.
    pub async fn save_judgement(
        &self,
        run_id: i64,
        judgement: &Judgement,
        new_samples: &[RawSample],
        new_environment: &[SeriesEnvironment],
        noise_over_every_look: Option<&RunNoise>,
    ) -> Result<(), StoreError> {
        // One judgement, one time: its verdicts sort by contract hash.
        let judged_at_ms = crate::measure::environment::now_ms();
        in_transaction!(self, |tx| {
            for v in &judgement.verdicts {
                let inserted = sqlx::query(
                    "INSERT INTO contract_verdicts (run_id, contract, contract_hash, status, limit_fraction, confidence, judged_at_ms, title, metric, bound_kind, judged_variant, other_side, looks_taken, looks_max)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (run_id, contract_hash) DO NOTHING",
                )
                .bind(run_id)
                .bind(&v.contract)
                .bind(&v.contract_hash)
                .bind(v.status.label())
                .bind(v.bound.value())
                .bind(v.confidence)
                .bind(judged_at_ms)
                .bind(&v.title)
                .bind(v.metric.name())
                .bind(v.bound.kind())
                .bind(&v.judged)
                .bind(&v.other)
                .bind(v.looks.map(|l| l.taken as i64))
                .bind(v.looks.map(|l| l.max as i64))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    continue;
                }
                for (index, c) in v.cases.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO contract_case_verdicts (run_id, contract_hash, case_index, case_name, payload, payload_bytes, baseline_ns, candidate_ns, overhead, ci_low, ci_high, status, pairs, literal_overhead, instructions_baseline, instructions_candidate, instruction_overhead, bound, note)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                    )
                    .bind(run_id)
                    .bind(&v.contract_hash)
                    .bind(index as i64)
                    .bind(&c.case)
                    .bind(&c.payload)
                    .bind(c.payload_bytes as i64)
                    .bind(c.baseline)
                    .bind(c.candidate)
                    .bind(c.estimate)
                    .bind(c.low)
                    .bind(c.high)
                    .bind(c.status.label())
                    .bind(c.samples as i64)
                    .bind(c.literal_overhead)
                    .bind(c.instructions_baseline)
                    .bind(c.instructions_candidate)
                    .bind(c.instruction_overhead)
                    .bind(c.bound.value())
                    .bind(&c.note)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for c in &judgement.checklist {
                sqlx::query(
                    "INSERT INTO checklist (run_id, check_id, status, evidence, figures) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (run_id, check_id) DO NOTHING",
                )
                .bind(run_id)
                .bind(c.check.id())
                .bind(c.status.label())
                .bind(&c.evidence)
                .bind(serde_json::to_string(&c.figures).expect("figures serialize"))
                .execute(&mut *tx)
                .await?;
            }
            for c in &judgement.comparisons {
                sqlx::query(
                    "INSERT INTO comparisons (run_id, base_run_id, tool, benchmark, metric, head, base, change, threshold, learned, status)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (run_id, tool, benchmark, metric) DO NOTHING",
                )
                .bind(run_id)
                .bind(c.base_run_id)
                .bind(c.tool.name())
                .bind(&c.benchmark)
                .bind(&c.metric)
                .bind(c.head)
                .bind(c.base)
                .bind(c.change)
                .bind(c.threshold)
                .bind(c.learned)
                .bind(c.status.label())
                .execute(&mut *tx)
                .await?;
            }
            if let Some(c) = &judgement.build_comparison {
                sqlx::query(
                    "INSERT INTO build_comparisons (run_id, base_commit, head_commit, verdict, comparison)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id) DO NOTHING",
                )
                .bind(run_id)
                .bind(&c.base_commit)
                .bind(&c.head_commit)
                .bind(c.verdict.label())
                .bind(serde_json::to_string(c).expect("a comparison serializes"))
                .execute(&mut *tx)
                .await?;
            }
            insert_samples!(tx, run_id, new_samples);
            insert_environment!(tx, run_id, new_environment);
            if let Some(noise) = noise_over_every_look {
                sqlx::query(
                    "DELETE FROM measurements WHERE run_id = $1 AND tool = $2 AND benchmark = $3",
                )
                .bind(run_id)
                .bind(Tool::Paired.name())
                .bind(HOST_BENCHMARK)
                .execute(&mut *tx)
                .await?;
                insert_measurements!(tx, run_id, &noise.measurements());
            }
        });
        Ok(())
    }

    /// What was concluded about `run_id`: every stored verdict (the latest
    /// judged first), the checklist and the comparisons; empty when it was
    /// never judged.
    pub async fn judgement(&self, run_id: i64) -> Result<Judgement, StoreError> {
        let judgement = with_pool!(self, |pool| {
            let mut judgement = Judgement::default();
            let verdicts = sqlx::query(
                "SELECT contract, contract_hash, status, limit_fraction, confidence, title, metric, bound_kind, judged_variant, other_side, looks_taken, looks_max FROM contract_verdicts
                 WHERE run_id = $1 ORDER BY judged_at_ms DESC, contract_hash",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await?;
            for row in &verdicts {
                let contract_hash: String = row.value("contract_hash")?;
                let contract: String = row.value("contract")?;
                let metric: String = row.value("metric")?;
                let metric = Metric::parse(&metric)
                    .ok_or_else(|| decode_error(format!("unknown metric '{metric}'")))?;
                let kind: String = row.value("bound_kind")?;
                let bound = Bound::from_kind(&kind, row.value("limit_fraction")?)
                    .ok_or_else(|| decode_error(format!("unknown bound kind '{kind}'")))?;
                let status: String = row.value("status")?;
                let title: String = row.value("title")?;
                let looks_taken: Option<i64> = row.value("looks_taken")?;
                let looks_max: Option<i64> = row.value("looks_max")?;
                let looks = looks_taken.zip(looks_max).map(|(taken, max)| Looks {
                    taken: usize::try_from(taken).unwrap_or(0),
                    max: usize::try_from(max).unwrap_or(0),
                });
                let cases = sqlx::query(
                    "SELECT case_name, payload, payload_bytes, baseline_ns, candidate_ns, overhead, ci_low, ci_high, status, pairs, literal_overhead, instructions_baseline, instructions_candidate, instruction_overhead, bound, note
                     FROM contract_case_verdicts WHERE run_id = $1 AND contract_hash = $2 ORDER BY case_index",
                )
                .bind(run_id)
                .bind(&contract_hash)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| case_from_row(r, bound))
                .collect::<Result<Vec<_>, _>>()?;
                judgement.verdicts.push(ContractVerdict {
                    title: if title.is_empty() {
                        contract.clone()
                    } else {
                        title
                    },
                    contract,
                    contract_hash,
                    metric,
                    judged: row.value("judged_variant")?,
                    other: row.value("other_side")?,
                    bound,
                    confidence: row.value("confidence")?,
                    status: status_from(&status)?,
                    cases,
                    looks,
                });
            }
            judgement.checklist = sqlx::query(
                "SELECT check_id, status, evidence, figures FROM checklist WHERE run_id = $1 ORDER BY check_id",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(check_from_row)
            .collect::<Result<_, _>>()?;
            judgement.comparisons = sqlx::query(
                "SELECT base_run_id, tool, benchmark, metric, head, base, change, threshold, learned, status FROM comparisons WHERE run_id = $1 ORDER BY benchmark, tool, metric",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(comparison_from_row)
            .collect::<Result<_, _>>()?;
            let built: Option<String> =
                sqlx::query("SELECT comparison FROM build_comparisons WHERE run_id = $1")
                    .bind(run_id)
                    .fetch_optional(pool)
                    .await?
                    .map(|row| row.value::<String>("comparison"))
                    .transpose()?;
            judgement.build_comparison = built
                .map(|text| {
                    serde_json::from_str(&text).map_err(|e| {
                        decode_error(format!("a stored build comparison does not parse: {e}"))
                    })
                })
                .transpose()?;
            judgement
        });
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
            let found = with_pool!(self, |pool| {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE {column} = $1 AND id != $2 ORDER BY id DESC LIMIT 1"
                )))
                .bind(value)
                .bind(exclude)
                .fetch_optional(pool)
                .await?
                .map(|row| run_from_row(&row))
                .transpose()?
            });
            if found.is_some() {
                return Ok(found);
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
        with_pool!(self, |pool| {
            let figures = sqlx::query(
                "SELECT run_id, tool, benchmark, metric, value FROM measurements
                 WHERE run_id >= $1 AND value IS NOT NULL AND ((tool = 'criterion' AND metric IN ('mean', 'ci_low', 'ci_high')) OR (tool = 'callgrind' AND metric = 'instructions') OR (tool = 'paired' AND benchmark = 'host'))",
            )
            .bind(first)
            .fetch_all(pool)
            .await?;
            for row in &figures {
                let run_id: i64 = row.value("run_id")?;
                let tool: String = row.value("tool")?;
                if let (Some(&i), Some(tool)) = (index.get(&run_id), Tool::parse(&tool)) {
                    points[i].figures.push((
                        tool,
                        row.value("benchmark")?,
                        row.value("metric")?,
                        row.value("value")?,
                    ));
                }
            }
            for row in sqlx::query(
                "SELECT v.run_id, v.contract, v.contract_hash, v.metric, v.status, v.limit_fraction, v.bound_kind, c.case_name, c.overhead, c.ci_low, c.ci_high
                 FROM contract_verdicts v LEFT JOIN contract_case_verdicts c ON c.run_id = v.run_id AND c.contract_hash = v.contract_hash
                 WHERE v.run_id >= $1 ORDER BY v.judged_at_ms DESC, v.contract_hash, c.case_index",
            )
            .bind(first)
            .fetch_all(pool)
            .await?
            .iter()
            {
                let run_id: i64 = row.value("run_id")?;
                let Some(&i) = index.get(&run_id) else { continue };
                let contract: String = row.value("contract")?;
                let contract_hash: String = row.value("contract_hash")?;
                let verdicts = &mut points[i].verdicts;
                // Rows of one verdict are adjacent; a run judged twice with one
                // contract id keeps the latest only.
                let same = verdicts.last().is_some_and(|v| v.contract_hash == contract_hash);
                if !same {
                    if verdicts.iter().any(|v| v.contract == contract) {
                        continue;
                    }
                    let metric: String = row.value("metric")?;
                    let status: String = row.value("status")?;
                    let kind: String = row.value("bound_kind")?;
                    let bound = Bound::from_kind(&kind, row.value("limit_fraction")?)
                        .ok_or_else(|| decode_error(format!("unknown bound kind '{kind}'")))?;
                    verdicts.push(TrendVerdict {
                        bound,
                        contract,
                        contract_hash,
                        metric: Metric::parse(&metric)
                            .ok_or_else(|| decode_error(format!("unknown metric '{metric}'")))?,
                        status: status_from(&status)?,
                        cases: Vec::new(),
                    });
                }
                let case: Option<String> = row.value("case_name")?;
                if let (Some(case), Some(verdict)) = (case, verdicts.last_mut()) {
                    verdict.cases.push(TrendCase {
                        case,
                        estimate: row.value("overhead")?,
                        low: row.value("ci_low")?,
                        high: row.value("ci_high")?,
                    });
                }
            }
            for row in sqlx::query(
                "SELECT run_id, benchmark, tool FROM comparisons WHERE run_id >= $1 AND status = 'regression'",
            )
            .bind(first)
            .fetch_all(pool)
            .await?
            .iter()
            {
                let run_id: i64 = row.value("run_id")?;
                if let Some(&i) = index.get(&run_id) {
                    let benchmark: String = row.value("benchmark")?;
                    let tool: String = row.value("tool")?;
                    points[i].regressions.push(format!("{tool}:{benchmark}"));
                }
            }
        });
        Ok(points)
    }

    /// Replaces the change points stored for `branch` with `change_points`,
    /// in one transaction. They are derived from the stored runs, not
    /// measured: the only rows perfwarden replaces.
    pub async fn replace_change_points(
        &self,
        branch: &str,
        change_points: &[SeriesChangePoint],
    ) -> Result<(), StoreError> {
        let detected_at_ms = crate::measure::environment::now_ms();
        in_transaction!(self, |tx| {
            sqlx::query("DELETE FROM change_points WHERE branch = $1")
                .bind(branch)
                .execute(&mut *tx)
                .await?;
            for chunk in change_points.chunks(CHANGE_POINTS_PER_INSERT) {
                let mut insert = QueryBuilder::<Db>::new(
                    "INSERT INTO change_points (branch, source, benchmark, metric, machine_id, series_index, before_run_id, before_commit, after_run_id, after_commit, mean_before, mean_after, relative_change, p_value, detected_at_ms) ",
                );
                insert.push_values(chunk, |mut row, c| {
                    let (series, change) = (&c.series, &c.change);
                    row.push_bind(branch)
                        .push_bind(series.source.as_str())
                        .push_bind(series.benchmark.as_str())
                        .push_bind(series.metric.as_str())
                        .push_bind(series.machine_id.as_deref())
                        .push_bind(change.index as i64)
                        .push_bind(change.before_run_id)
                        .push_bind(change.before_commit.as_str())
                        .push_bind(change.after_run_id)
                        .push_bind(change.after_commit.as_str())
                        .push_bind(change.mean_before)
                        .push_bind(change.mean_after)
                        .push_bind(change.relative_change)
                        .push_bind(change.p_value)
                        .push_bind(detected_at_ms);
                });
                insert.build().execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// The change points stored for `branch`, oldest shift first.
    pub async fn change_points(&self, branch: &str) -> Result<Vec<SeriesChangePoint>, StoreError> {
        let found = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT source, benchmark, metric, machine_id, series_index, before_run_id, before_commit, after_run_id, after_commit, mean_before, mean_after, relative_change, p_value
                 FROM change_points WHERE branch = $1 ORDER BY after_run_id, source, benchmark, metric, machine_id",
            )
            .bind(branch)
            .fetch_all(pool)
            .await?
            .iter()
            .map(change_point_from_row)
            .collect::<Result<_, _>>()?
        });
        Ok(found)
    }

    /// The stored profile of `benchmark` in `run_id` (its top functions),
    /// `None` when none was stored.
    pub async fn profile(
        &self,
        run_id: i64,
        benchmark: &str,
    ) -> Result<Option<Profile>, StoreError> {
        let profile = with_pool!(self, |pool| {
            let Some(row) =
                sqlx::query("SELECT total_ir FROM profiles WHERE run_id = $1 AND benchmark = $2")
                    .bind(run_id)
                    .bind(benchmark)
                    .fetch_optional(pool)
                    .await?
            else {
                return Ok(None);
            };
            let total_ir: i64 = row.value("total_ir")?;
            let functions = sqlx::query(
                "SELECT function, self_ir, inclusive_ir FROM profile_functions WHERE run_id = $1 AND benchmark = $2",
            )
            .bind(run_id)
            .bind(benchmark)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                Ok(FunctionCost {
                    name: row.value("function")?,
                    self_ir: row.value::<i64>("self_ir")? as u64,
                    inclusive_ir: row.value::<i64>("inclusive_ir")? as u64,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Profile::new(total_ir as u64, functions)
        });
        Ok(Some(profile))
    }

    /// The benchmarks of `run_id` with a stored profile.
    pub async fn profiled_benchmarks(&self, run_id: i64) -> Result<Vec<String>, StoreError> {
        let benchmarks = with_pool!(self, |pool| {
            sqlx::query("SELECT benchmark FROM profiles WHERE run_id = $1 ORDER BY benchmark")
                .bind(run_id)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| row.value("benchmark"))
                .collect::<Result<_, sqlx::Error>>()?
        });
        Ok(benchmarks)
    }

    pub async fn samples(
        &self,
        run_id: i64,
        tool: Tool,
        benchmark: &str,
    ) -> Result<Vec<RawSample>, StoreError> {
        let samples = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT iterations, total_ns FROM samples WHERE run_id = $1 AND tool = $2 AND benchmark = $3 ORDER BY sample_index",
            )
            .bind(run_id)
            .bind(tool.name())
            .bind(benchmark)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                Ok(RawSample {
                    tool,
                    benchmark: benchmark.to_owned(),
                    iterations: row.value("iterations")?,
                    total_ns: row.value("total_ns")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?
        });
        Ok(samples)
    }

    /// What the OS said about run `run_id`'s batches, per series (by
    /// benchmark), in the order they ran.
    pub async fn environment(&self, run_id: i64) -> Result<Vec<SeriesEnvironment>, StoreError> {
        let series = with_pool!(self, |pool| {
            let mut series: Vec<SeriesEnvironment> = Vec::new();
            let at = |series: &mut Vec<SeriesEnvironment>, benchmark: String| match series
                .iter()
                .position(|s| s.benchmark == benchmark)
            {
                Some(i) => i,
                None => {
                    series.push(SeriesEnvironment {
                        benchmark,
                        log: BatchLog::default(),
                    });
                    series.len() - 1
                }
            };
            let cpu = |c: Option<i64>| c.and_then(|c| u32::try_from(c).ok());
            let count = |c: Option<i64>| c.and_then(|c| u64::try_from(c).ok());
            for row in sqlx::query(
                "SELECT benchmark, pair_index, side, sampler_cpu, worker_cpu, sampler_involuntary_switches, sampler_migrations, worker_involuntary_switches, worker_migrations
                 FROM batch_environment WHERE run_id = $1 ORDER BY benchmark, batch_index",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await?
            .iter()
            {
                let side: String = row.value("side")?;
                let pair: i64 = row.value("pair_index")?;
                let i = at(&mut series, row.value("benchmark")?);
                series[i].log.batches.push(BatchEnvironment {
                    pair: pair as usize,
                    side: Side::parse(&side)
                        .ok_or_else(|| decode_error(format!("unknown batch side '{side}'")))?,
                    sampler_cpu: cpu(row.value("sampler_cpu")?),
                    worker_cpu: cpu(row.value("worker_cpu")?),
                    sampler_involuntary_switches: count(row.value("sampler_involuntary_switches")?),
                    sampler_migrations: count(row.value("sampler_migrations")?),
                    worker_involuntary_switches: count(row.value("worker_involuntary_switches")?),
                    worker_migrations: count(row.value("worker_migrations")?),
                });
            }
            for row in sqlx::query(
                "SELECT benchmark, pair_index, cpu, micros FROM cpu_speed_probes WHERE run_id = $1 ORDER BY benchmark, probe_index",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await?
            .iter()
            {
                let pair: i64 = row.value("pair_index")?;
                let cpu: i64 = row.value("cpu")?;
                let i = at(&mut series, row.value("benchmark")?);
                series[i].log.probes.push(SpeedProbe {
                    pair: pair as usize,
                    cpu: cpu as u32,
                    micros: row.value("micros")?,
                });
            }
            series
        });
        Ok(series)
    }

    /// Every table and its columns (in order), for comparing the two
    /// engines' schemas; sqlx's own bookkeeping table is left out.
    pub async fn schema(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let query = match self.pool {
            Pool::Sqlite(_) => {
                "SELECT m.name AS table_name, p.name AS column_name FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\' AND m.name NOT LIKE 'sqlite%' ORDER BY m.name, p.cid"
            }
            Pool::Postgres(_) => {
                "SELECT table_name::TEXT AS table_name, column_name::TEXT AS column_name FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%' ORDER BY table_name, ordinal_position"
            }
        };
        let rows: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query(query)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok((row.value("table_name")?, row.value("column_name")?)))
                .collect::<Result<_, sqlx::Error>>()?
        });
        let mut tables: Vec<(String, Vec<String>)> = Vec::new();
        for (table, column) in rows {
            match tables.last_mut() {
                Some((name, columns)) if *name == table => columns.push(column),
                _ => tables.push((table, vec![column])),
            }
        }
        Ok(tables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgres://perf:s3cret@db.example:5432/history"),
            "postgres://perf:***@db.example:5432/history"
        );
        assert_eq!(redact_url("postgres://perf@db/h"), "postgres://perf@db/h");
        assert_eq!(redact_url("/data/history.db"), "/data/history.db");
    }
}
