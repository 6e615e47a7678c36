//! A real PostgreSQL server for the tests of one test binary, started on
//! first use and stopped when the binary exits: `initdb` in a temporary
//! directory, `postgres` on a free port of 127.0.0.1 (trust authentication,
//! no fsync), run as the `postgres` system user (else `nobody`) when the tests
//! run as root, since PostgreSQL refuses to run as root.
//!
//! The server runs under a small shell that waits for its standard input to
//! close: the test binary holds the other end, so however the binary ends,
//! the shell then stops the server (fast shutdown) and removes its directory.
//!
//! The binaries come from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<version>/bin`); without them the tests fail and say
//! to install it (`.ci/run` does).
#![allow(dead_code)] // each test binary uses its own part

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::Connection;

pub struct Server {
    pub port: u16,
    dir: PathBuf,
    /// Closing it (when the test binary exits) stops the server.
    _stdin: std::sync::Mutex<ChildStdin>,
}

/// The directory holding `initdb`, `postgres` and `pg_ctl`: the newest
/// version under /usr/lib/postgresql, or `PERFWARDEN_PG_BIN`.
pub fn bin_dir() -> PathBuf {
    let found = match std::env::var_os("PERFWARDEN_PG_BIN") {
        Some(dir) => Some(PathBuf::from(dir)).filter(|d| d.join("initdb").is_file()),
        None => {
            let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = entry.path().join("bin");
                    bin.join("initdb").is_file().then_some((version, bin))
                })
                .collect();
            versions.sort();
            versions.pop().map(|(_, bin)| bin)
        }
    };
    match found {
        Some(bin) => bin,
        None => panic!(
            "PostgreSQL is not installed: the store tests run against a real PostgreSQL server and found no /usr/lib/postgresql/*/bin/initdb. Install Debian's `postgresql` package (`apt-get update && apt-get install -y postgresql`; .ci/run does this when it is missing), or set PERFWARDEN_PG_BIN to a directory holding initdb and postgres"
        ),
    }
}

/// The unprivileged user to run the server as, when this process is root.
fn run_as() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    for name in [c"postgres", c"nobody"] {
        let entry = unsafe { libc::getpwnam(name.as_ptr()) };
        if !entry.is_null() {
            let entry = unsafe { &*entry };
            return Some((entry.pw_uid, entry.pw_gid));
        }
    }
    panic!(
        "the tests run as root and there is neither a `postgres` nor a `nobody` user to run PostgreSQL as"
    );
}

fn as_user(command: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// The server of this test binary, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> Server {
    let bin = bin_dir();
    let user = run_as();
    let dir = tempfile::Builder::new()
        .prefix("perfwarden-pg-")
        .tempdir()
        .expect("a temporary directory")
        .keep();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the server's directory");
    }
    let data = dir.join("data");
    let initdb = as_user(&mut Command::new(bin.join("initdb")), user)
        .current_dir(&dir)
        .args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .expect("run initdb");
    assert!(
        initdb.status.success(),
        "initdb failed:\n{}{}",
        String::from_utf8_lossy(&initdb.stdout),
        String::from_utf8_lossy(&initdb.stderr)
    );
    let port = free_port();
    let log = dir.join("server.log");
    let mut shell = as_user(&mut Command::new("sh"), user)
        .current_dir(&dir)
        .arg("-c")
        .arg(
            r#""$1/postgres" -D "$2" -p "$3" -k "$4" -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off 2>"$4/server.log" &
pid=$!
cat >/dev/null
kill -INT "$pid"
wait "$pid"
rm -rf "$4""#,
        )
        .arg("sh")
        .arg(&bin)
        .arg(&data)
        .arg(port.to_string())
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start postgres");
    let stdin = shell.stdin.take().expect("the shell's stdin");
    let server = Server {
        port,
        dir,
        _stdin: std::sync::Mutex::new(stdin),
    };
    wait_until_ready(&server, &log, &mut shell);
    server
}

/// Waits until the server answers a query, or until it has given up: its
/// log says it shut down (the server's own last words when it cannot start,
/// e.g. "could not create any TCP/IP sockets"), or the shell holding it has
/// exited. No time limit: a slow host only makes the wait longer.
fn wait_until_ready(server: &Server, log: &Path, shell: &mut std::process::Child) {
    let runtime = runtime();
    loop {
        let url = server.url("postgres");
        let ready = runtime.block_on(async {
            let mut connection = sqlx::PgConnection::connect(&url).await?;
            sqlx::query("SELECT 1").execute(&mut connection).await?;
            connection.close().await
        });
        match ready {
            Ok(()) => return,
            Err(error) => {
                let exited = shell.try_wait().ok().flatten();
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let gave_up =
                    text.contains("database system is shut down") || text.contains("PANIC:");
                if exited.is_some() || gave_up {
                    panic!(
                        "PostgreSQL did not start ({error}):\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Server {
    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database; its URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        runtime().block_on(async {
            let mut connection = sqlx::PgConnection::connect(&self.url("postgres"))
                .await
                .expect("connect to the test server");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut connection)
                .await
                .expect("create a test database");
            connection.close().await.ok();
        });
        self.url(&name)
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}
