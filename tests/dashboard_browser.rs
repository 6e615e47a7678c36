//! A real browser looks at the dashboard: headless Chromium opens it from
//! disk, every chart is there, the page logs no errors, and a screenshot is
//! saved. Tier 2 (slow, and needs a browser): Chromium comes from Debian's
//! `chromium` package, which `.ci/run` installs; without it the test fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::synthetic;
use perfwarden::store::{Access, Store};

/// Chromium on PATH. Tier 2 expects a browser: none is a failure, never a
/// skip. Installing it is the machine's business (`.ci/run` installs
/// Debian's `chromium`), not the test's.
fn chromium() -> PathBuf {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find_map(|name| {
            let output = Command::new("which").arg(name).output().ok()?;
            output
                .status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        })
        .expect(
            "no chromium on PATH: this tier-2 test needs a browser. Install Debian's chromium \
             (`apt-get install -y chromium`; .ci/run does) or run tier 1 alone",
        )
}

fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut command = Command::new(chromium);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

#[test]
#[ignore = "tier 2, slow: needs Chromium (installed by .ci/run)"]
fn chromium_renders_the_dashboard_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("history.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(database.to_str().unwrap(), Access::Create)
            .await
            .unwrap();
        for i in 0..40 {
            store
                .insert_run(&synthetic::run(i, Some(30)))
                .await
                .unwrap();
        }
    });
    let out = dir.path().join("reports");
    let status = Command::new(env!("CARGO_BIN_EXE_perfwarden"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["report", "--no-measure", "--quiet", "--contract"])
        .arg("harness/contracts/performance-001.toml")
        .arg("--out")
        .arg(&out)
        .env("DATABASE_URL", &database)
        .status()
        .unwrap();
    assert!(matches!(status.code(), Some(0 | 1 | 3)));
    let page = out.join("dashboard/index.html");
    assert!(page.is_file());

    let chromium = chromium();
    let url = format!("file://{}", page.display());
    let dom = headless(&chromium, &dir.path().join("profile-dom"))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let html = String::from_utf8_lossy(&dom.stdout);
    for payload in ["small", "medium", "large"] {
        for tool in ["criterion", "callgrind"] {
            let chart = format!("data-chart=\"trend-{payload}-{tool}\"");
            assert!(html.contains(&chart), "the browser's DOM lacks {chart}");
        }
    }
    assert_eq!(
        html.matches("<svg").count(),
        7,
        "six benchmark trends and the contract's"
    );
    let runs_table = html
        .split("<table id=\"runs\">")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("the runs table");
    assert_eq!(
        runs_table.matches("<tr>").count(),
        41,
        "a header and a row per run"
    );
    // The async step from the 31st run: marked on the trends and listed.
    assert!(
        html.contains("<g class=\"change-point\">"),
        "no change point marked"
    );
    assert!(
        html.contains("<tr class=\"change-point\"><td>criterion large/async mean</td>"),
        "the change point is not listed"
    );
    let log = String::from_utf8_lossy(&dom.stderr);
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("ERR_FILE_NOT_FOUND")
        })
        .collect();
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");

    let screenshot = std::env::var_os("PERFWARDEN_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png"));
    let shot = headless(&chromium, &dir.path().join("profile-shot"))
        .arg(format!("--screenshot={}", screenshot.display()))
        .args(["--window-size=1280,2400", &url])
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "the screenshot is empty"
    );
    // The picture, not just the file: the data series' colours are drawn
    // (sync blue, async orange), counted pixel by pixel.
    let counted = Command::new("python3")
        .args(["-c", COUNT_COLOURS])
        .arg(&screenshot)
        .output()
        .unwrap();
    assert!(
        counted.status.success(),
        "{}",
        String::from_utf8_lossy(&counted.stderr)
    );
    let counts: Vec<u64> = String::from_utf8_lossy(&counted.stdout)
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        counts.iter().all(|&n| n > 500),
        "the data series are missing from the screenshot: sync and async pixels {counts:?}"
    );
    eprintln!("dashboard screenshot: {}", screenshot.display());
}

/// Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)
/// with the standard library and prints how many pixels are near the sync
/// and the async series' colours.
const COUNT_COLOURS: &str = r#"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
pos, chunks = 8, []
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    chunks.append((kind, data[pos + 8:pos + 8 + length]))
    pos += 12 + length
width, height, depth, colour = struct.unpack(">IIBB", dict(chunks)[b"IHDR"][:10])
assert depth == 8 and colour in (2, 6), (depth, colour)
channels = 3 if colour == 2 else 4
raw = zlib.decompress(b"".join(c for k, c in chunks if k == b"IDAT"))
stride = width * channels
previous = bytearray(stride)
targets = [(31, 119, 180), (255, 127, 14)]
counts = [0, 0]
for row in range(height):
    start = row * (stride + 1)
    kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
    for i in range(stride):
        left = line[i - channels] if i >= channels else 0
        up = previous[i]
        corner = previous[i - channels] if i >= channels else 0
        if kind == 1:
            line[i] = (line[i] + left) & 255
        elif kind == 2:
            line[i] = (line[i] + up) & 255
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 255
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
    for x in range(0, stride, channels):
        r, g, b = line[x], line[x + 1], line[x + 2]
        for n, (tr, tg, tb) in enumerate(targets):
            if abs(r - tr) < 24 and abs(g - tg) < 24 and abs(b - tb) < 24:
                counts[n] += 1
    previous = line
print(*counts)
"#;
