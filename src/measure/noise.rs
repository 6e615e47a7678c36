//! What the host did while perfwarden measured: the hypervisor's steal and
//! other processes' use of the CPUs perfwarden may run on, from `/proc`. A
//! verdict on a host measured as too noisy cannot be a FAIL (the report says
//! INCONCLUSIVE, with this measurement as the reason), and the figures are
//! stored with the run.

use std::time::Instant;

/// Other processes kept the measured CPUs busy for at least this share of
/// their time...
pub const FOREIGN_CPU_MAX: f64 = 0.25;
/// ...or the hypervisor stole at least this share of it: too noisy to
/// decide.
pub const STEAL_MAX: f64 = 0.05;

/// Clock ticks of some CPUs, summed, from `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// user + nice + system + irq + softirq (guest time is already in user
    /// and nice).
    pub busy: u64,
    pub steal: u64,
    /// Every column but guest: busy, idle, iowait and steal.
    pub total: u64,
}

/// The ticks of `cpus` in `/proc/stat` text.
pub fn parse_proc_stat(stat: &str, cpus: &[usize]) -> CpuTicks {
    let mut ticks = CpuTicks::default();
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields
            .next()
            .and_then(|name| name.strip_prefix("cpu"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.contains(&cpu) {
            continue;
        }
        // user nice system idle iowait irq softirq steal
        let columns: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
        if columns.len() < 8 {
            continue;
        }
        ticks.busy += columns[0] + columns[1] + columns[2] + columns[5] + columns[6];
        ticks.steal += columns[7];
        ticks.total += columns.iter().sum::<u64>();
    }
    ticks
}

/// The parent and the CPU time (utime + stime + cutime + cstime, in ticks)
/// of a process, from its `/proc/<pid>/stat` text.
pub fn parse_process_stat(stat: &str) -> Option<(u32, u64)> {
    // The name, in parentheses, may hold spaces: fields resume after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 4 and 14-17 of proc(5), counted from the state (field 3).
    let parent = fields.get(1)?.parse().ok()?;
    let ticks = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    Some((parent, ticks))
}

/// CPU time of this process and all its descendants, in clock ticks: each
/// live process's own time plus what it reaped from its children (a reaped
/// process lives on in its parent's `cutime`/`cstime`).
pub fn own_tree_ticks() -> u64 {
    let me = std::process::id();
    let mut processes = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if let Some((parent, ticks)) = parse_process_stat(&stat) {
                processes.push((pid, parent, ticks));
            }
        }
    }
    let mut tree = vec![me];
    let mut grew = true;
    while grew {
        grew = false;
        for &(pid, parent, _) in &processes {
            if tree.contains(&parent) && !tree.contains(&pid) {
                tree.push(pid);
                grew = true;
            }
        }
    }
    processes
        .iter()
        .filter(|(pid, _, _)| tree.contains(pid))
        .map(|&(_, _, ticks)| ticks)
        .sum()
}

fn involuntary_switches() -> u64 {
    let mut total = 0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage fills the struct on this frame.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            if libc::getrusage(who, &mut usage) == 0 {
                total += usage.ru_nivcsw as u64;
            }
        }
    }
    total
}

/// The host's counters at one moment.
pub struct Snapshot {
    at: Instant,
    cpus: usize,
    ticks: CpuTicks,
    /// CPU time of this process's tree, in clock ticks.
    own: u64,
    involuntary_switches: u64,
}

impl Snapshot {
    pub fn take() -> Self {
        let cpus = crate::affinity::allowed_cpus();
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        Self {
            at: Instant::now(),
            ticks: parse_proc_stat(&stat, &cpus),
            cpus: cpus.len(),
            own: own_tree_ticks(),
            involuntary_switches: involuntary_switches(),
        }
    }
}

/// What was measured between two snapshots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostNoise {
    pub seconds: f64,
    /// Other processes' busy share of the CPUs' time.
    pub foreign: f64,
    /// The hypervisor's share.
    pub steal: f64,
    /// The 1-minute load average per CPU at the end (it counts our threads).
    pub load_per_cpu: f64,
    pub involuntary_switches_per_second: f64,
}

impl HostNoise {
    /// `None` when `/proc/stat` said nothing.
    pub fn between(before: &Snapshot, after: &Snapshot) -> Option<Self> {
        let total = after.ticks.total.saturating_sub(before.ticks.total);
        if total == 0 {
            return None;
        }
        let busy = after.ticks.busy.saturating_sub(before.ticks.busy);
        let own = after.own.saturating_sub(before.own);
        let share = |ticks: u64| ticks as f64 / total as f64;
        let seconds = after.at.duration_since(before.at).as_secs_f64();
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        Some(Self {
            seconds,
            foreign: share(busy.saturating_sub(own)),
            steal: share(after.ticks.steal.saturating_sub(before.ticks.steal)),
            load_per_cpu: load / after.cpus.max(1) as f64,
            involuntary_switches_per_second: after
                .involuntary_switches
                .saturating_sub(before.involuntary_switches)
                as f64
                / seconds.max(1e-9),
        })
    }

    /// Measures the host from now until `work` returns.
    pub fn over<T>(work: impl FnOnce() -> T) -> (T, Option<Self>) {
        let before = Snapshot::take();
        let out = work();
        (out, Self::between(&before, &Snapshot::take()))
    }

    /// Over this window and a `later` one: shares and rates weighted by
    /// each window's length, the load average at the later one's end.
    pub fn then(&self, later: &Self) -> Self {
        let seconds = self.seconds + later.seconds;
        let weighted = |a: f64, b: f64| {
            if seconds > 0.0 {
                (a * self.seconds + b * later.seconds) / seconds
            } else {
                b
            }
        };
        Self {
            seconds,
            foreign: weighted(self.foreign, later.foreign),
            steal: weighted(self.steal, later.steal),
            load_per_cpu: later.load_per_cpu,
            involuntary_switches_per_second: weighted(
                self.involuntary_switches_per_second,
                later.involuntary_switches_per_second,
            ),
        }
    }

    /// The measured reason the host was too noisy to decide, if it was.
    pub fn too_noisy(&self) -> Option<String> {
        let mut reasons = Vec::new();
        if self.foreign >= FOREIGN_CPU_MAX {
            reasons.push(format!(
                "other processes used {:.0}% of the measured CPUs",
                self.foreign * 100.0
            ));
        }
        if self.steal >= STEAL_MAX {
            reasons.push(format!(
                "the hypervisor stole {:.1}% of the CPU time",
                self.steal * 100.0
            ));
        }
        (!reasons.is_empty()).then(|| reasons.join(" and "))
    }
}

/// The stored figures of a run's noise: `paired` measurements of the
/// benchmark `host`.
pub const HOST_BENCHMARK: &str = "host";

impl HostNoise {
    /// As stored with a run: (metric, value, unit).
    pub fn figures(&self) -> [(&'static str, f64, &'static str); 5] {
        [
            ("seconds", self.seconds, "s"),
            ("foreign_share", self.foreign, "fraction"),
            ("steal_share", self.steal, "fraction"),
            ("load_per_cpu", self.load_per_cpu, "count"),
            (
                "involuntary_switches_per_second",
                self.involuntary_switches_per_second,
                "count",
            ),
        ]
    }

    /// Back from a run's measurements; `None` for a run stored without them.
    pub fn from_measurements(measurements: &[crate::store::Measurement]) -> Option<Self> {
        let value = |metric: &str| {
            measurements
                .iter()
                .find(|m| {
                    m.tool == crate::store::Tool::Paired
                        && m.benchmark == HOST_BENCHMARK
                        && m.metric == metric
                })
                .and_then(|m| m.value)
        };
        Some(Self {
            seconds: value("seconds")?,
            foreign: value("foreign_share")?,
            steal: value("steal_share")?,
            load_per_cpu: value("load_per_cpu")?,
            involuntary_switches_per_second: value("involuntary_switches_per_second")?,
        })
    }
}

impl std::fmt::Display for HostNoise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "over {:.1} s: other processes {:.1}% of the CPUs, steal {:.1}%, load average {:.2} per CPU, {:.0} involuntary context switches/s",
            self.seconds,
            self.foreign * 100.0,
            self.steal * 100.0,
            self.load_per_cpu,
            self.involuntary_switches_per_second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on this project's 2-core VM, with a third CPU line added.
    const STAT: &str = "cpu  120035 21 40087 1813447 2210 0 1721 913 0 0
cpu0 60012 10 20040 906700 1100 0 900 450 0 0
cpu1 60023 11 20047 906747 1110 0 821 463 0 0
cpu2 1 1 1 1 1 1 1 1 0 0
intr 9130473 0 9 0 0 0 0
ctxt 18442196
btime 1795990931
";

    #[test]
    fn proc_stat_is_summed_over_the_cpus_asked_for() {
        let ticks = parse_proc_stat(STAT, &[0, 1]);
        assert_eq!(
            ticks.busy,
            60012 + 10 + 20040 + 900 + 60023 + 11 + 20047 + 821
        );
        assert_eq!(ticks.steal, 450 + 463);
        assert_eq!(
            ticks.total,
            60012
                + 10
                + 20040
                + 906700
                + 1100
                + 900
                + 450
                + 60023
                + 11
                + 20047
                + 906747
                + 1110
                + 821
                + 463
        );
        assert_eq!(parse_proc_stat(STAT, &[2]).total, 8);
        assert_eq!(parse_proc_stat(STAT, &[7]), CpuTicks::default());
    }

    #[test]
    fn a_process_name_with_spaces_and_parentheses_is_skipped() {
        let stat = "4242 (perf (warden) x) S 4100 4242 4100 0 -1 4194304 1000 0 0 0 150 30 7 3 20 0 5 0 1000 0 0";
        assert_eq!(parse_process_stat(stat), Some((4100, 150 + 30 + 7 + 3)));
        assert_eq!(parse_process_stat("garbage"), None);
    }

    #[test]
    fn two_windows_weigh_by_their_length() {
        let first = HostNoise {
            seconds: 30.0,
            foreign: 0.1,
            steal: 0.0,
            load_per_cpu: 1.0,
            involuntary_switches_per_second: 10.0,
        };
        let later = HostNoise {
            seconds: 10.0,
            foreign: 0.5,
            steal: 0.08,
            load_per_cpu: 3.0,
            involuntary_switches_per_second: 50.0,
        };
        let both = first.then(&later);
        assert_eq!(both.seconds, 40.0);
        assert!((both.foreign - 0.2).abs() < 1e-12, "{both:?}");
        assert!((both.steal - 0.02).abs() < 1e-12, "{both:?}");
        assert_eq!(both.load_per_cpu, 3.0);
        assert!((both.involuntary_switches_per_second - 20.0).abs() < 1e-12);
    }

    #[test]
    fn noise_over_a_threshold_is_named() {
        let quiet = HostNoise {
            seconds: 10.0,
            foreign: 0.02,
            steal: 0.001,
            load_per_cpu: 1.0,
            involuntary_switches_per_second: 5.0,
        };
        assert_eq!(quiet.too_noisy(), None);
        let busy = HostNoise {
            foreign: 0.4,
            steal: 0.09,
            ..quiet
        };
        assert_eq!(
            busy.too_noisy().as_deref(),
            Some(
                "other processes used 40% of the measured CPUs and the hypervisor stole 9.0% of the CPU time"
            )
        );
    }
}
