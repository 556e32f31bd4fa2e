//! The gate under test: `signet serve` as a child process in a scratch
//! directory, with the `signet init` pipeline (its rate limit raised so the
//! load is not refused as abuse) and the audit log on with `fsync = "batch"`;
//! CPU pinning (the child is spawned from a thread pinned to the gate's CPU,
//! so every thread it creates inherits that CPU); and its RSS and CPU time
//! from `/proc`.
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

/// The rate-limit lines of the `signet init` config, and their bench values.
const RATE_DEFAULT: &str = "capacity = 60\nrefill_per_second = 1.0";
const RATE_BENCH: &str = "capacity = 1000000000\nrefill_per_second = 1000000000.0";

/// The prompt-injection lines of the `signet init` config.
const INJECTION_ON: &str = "kind = \"prompt_injection\"\nmode = \"enforce\"";
const INJECTION_OFF: &str = "kind = \"prompt_injection\"\nmode = \"disabled\"";

/// The `signet init` config with the rate limit raised and the audit log on
/// with `fsync` (`"batch"` in the target setup); prompt injection on unless
/// `injection` is false.
pub fn bench_config(fsync: &str, injection: bool) -> anyhow::Result<String> {
    let base = crate::config::DEFAULT_CONFIG_TOML;
    if !base.contains(RATE_DEFAULT) || !base.contains(INJECTION_ON) {
        bail!("the default config's rate_limit or prompt_injection lines changed; update cli/bench/gate.rs");
    }
    let mut text = base.replace(RATE_DEFAULT, RATE_BENCH);
    if !injection {
        text = text.replace(INJECTION_ON, INJECTION_OFF);
    }
    Ok(format!(
        "{text}\n# signet bench: the audit log on.\n[audit]\npath = \"audit.jsonl\"\nfsync = \"{fsync}\"\n"
    ))
}

/// Pin the calling thread (and every thread or process it later creates) to `cpu`.
pub fn pin_current_thread(cpu: usize) -> anyhow::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).with_context(|| format!("pinning to CPU {cpu}"))
}

fn cpus() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..1024).filter(|&c| set.is_set(c)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Pin this process's load side (the calling thread and every thread it
/// later creates) to a usable CPU other than `gate_cpu`; returns the CPU
/// pinned to, or `None` (with a note) when there is no second CPU.
pub fn pin_load_side(gate_cpu: usize) -> anyhow::Result<Option<usize>> {
    let all = cpus();
    if all.len() < 2 || !all.contains(&gate_cpu) {
        eprintln!("note: fewer than 2 usable CPUs (or --gate-cpu not among them): not pinning");
        return Ok(None);
    }
    let load_cpu = all.iter().copied().find(|&c| c != gate_cpu).unwrap_or(0);
    pin_current_thread(load_cpu)?;
    Ok(Some(load_cpu))
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory under the system temp dir.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("signet-bench-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("plugins"))
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running gate child.
pub struct Gate {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its process id.
    pub pid: u32,
    _dir: Option<Scratch>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `signet serve` with `config` (TOML text) against `upstream`, on `cpu`
/// when given; returns once it prints its address.
pub fn spawn(config: &str, upstream: &str, cpu: Option<usize>) -> anyhow::Result<Gate> {
    let dir = Scratch::new("gate")?;
    std::fs::write(dir.0.join("signet.toml"), config)?;
    let mut cmd = this_binary(&[
        "serve",
        "--config",
        "signet.toml",
        "--upstream",
        upstream,
        "--port",
        "0",
        "--allow-ephemeral-key",
    ])?;
    cmd.current_dir(&dir.0);
    let mut g = spawn_on(cmd, cpu)?;
    g._dir = Some(dir);
    Ok(g)
}

/// Start `signet bench proxy` (the floor's bare forwarder) to `upstream` on
/// `cpu` when given; returns once it prints its address.
pub fn spawn_forwarder(upstream: &str, cpu: Option<usize>) -> anyhow::Result<Gate> {
    spawn_on(
        this_binary(&["bench", "proxy", "--upstream", upstream])?,
        cpu,
    )
}

/// This `signet` binary with `args`, its stdout piped (for the address).
pub fn this_binary(args: &[&str]) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("locating the signet binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    Ok(cmd)
}

/// Spawn `cmd` (a gate that prints `listening on URL`) on `cpu`.
pub fn spawn_on(mut cmd: Command, cpu: Option<usize>) -> anyhow::Result<Gate> {
    let mut child = std::thread::spawn(move || {
        if let Some(c) = cpu {
            pin_current_thread(c)?;
        }
        cmd.spawn().context("starting the gate")
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the spawning thread panicked"))??;
    let stdout = child.stdout.take().context("gate stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(i) = l.find("listening on ") {
                    break l[i + "listening on ".len()..].trim().to_string();
                }
            }
            _ => {
                let _ = child.kill();
                bail!("the gate exited before listening")
            }
        }
    };
    // Keep draining its stdout (request logs) so it never blocks.
    std::thread::spawn(move || for _ in lines {});
    let pid = child.id();
    Ok(Gate {
        child,
        url,
        pid,
        _dir: None,
    })
}

/// Memory and CPU of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size, KiB.
    pub hwm_kib: u64,
    /// User + system CPU time, seconds (all threads, including exited ones).
    pub cpu_s: f64,
}

/// Read `/proc/PID/status` and `/proc/PID/stat`.
pub fn proc_stats(pid: u32) -> anyhow::Result<ProcStats> {
    let base = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(base.join("status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(base.join("stat"))?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Linux reports these in USER_HZ, which is 100 on every mainstream build.
    let cpu_s = (ticks(11) + ticks(12)) as f64 / 100.0;
    Ok(ProcStats {
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        cpu_s,
    })
}

/// The CPUs a running process may use, as `/proc/PID/status` lists them
/// (`Cpus_allowed_list`, e.g. `0` or `0-1`); `None` where there is no such file.
pub fn cpus_allowed(pid: u32) -> Option<String> {
    let status =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_config_is_a_valid_default_pipeline() {
        let text = bench_config("batch", true).unwrap_or_default();
        assert!(text.contains(RATE_BENCH));
        assert!(text.contains("fsync = \"batch\""));
        let v: toml::Value = toml::from_str(&text).unwrap_or(toml::Value::Boolean(false));
        assert!(v.get("audit").is_some());
    }

    #[test]
    fn reads_own_stats() {
        let s = proc_stats(std::process::id()).unwrap_or_default();
        assert!(s.rss_kib > 0);
    }
}
