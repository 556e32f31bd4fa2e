//! Running `signet serve` and `signet demo-upstream` as real processes on
//! 127.0.0.1 with a free port, reading the address they print.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The fixed audit secret the tests run the gate with.
pub const SECRET_HEX: &str = "8f2a6c1e9b3d47f05a1c2e3d4b5a69788f2a6c1e9b3d47f05a1c2e3d4b5a6978";

/// A child process that printed `... listening on http://ADDR`.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Everything it printed on stdout so far.
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// Everything it printed on stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

fn pump(
    r: impl std::io::Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
    tx: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &tx {
                let _ = tx.send(line.clone());
            }
            sink.lock().unwrap().push(line);
        }
    });
}

impl Service {
    /// Spawn `signet ARGS` in `cwd` with `env`, wait (≤ 60 s) for its address.
    pub fn spawn(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Service {
        let mut cmd = Command::new(crate::signet_bin());
        cmd.args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("signet starts");
        let (stdout, stderr) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(Mutex::new(Vec::new())),
        );
        let (tx, rx) = mpsc::channel();
        pump(child.stdout.take().unwrap(), stdout.clone(), Some(tx));
        pump(child.stderr.take().unwrap(), stderr.clone(), None);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(i) = line.find("listening on http://") {
                        let url = line[i + "listening on ".len()..].trim().to_string();
                        return Service {
                            child,
                            url,
                            stdout,
                            stderr,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "signet {args:?} did not start:\nstdout: {:?}\nstderr: {:?}",
                        stdout.lock().unwrap(),
                        stderr.lock().unwrap()
                    );
                }
            }
        }
    }

    /// Send SIGTERM and wait for the exit (≤ 30 s); returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The built-in demo upstream as its own process.
pub fn demo_upstream(cwd: &Path) -> Service {
    Service::spawn(&["demo-upstream", "--port", "0"], cwd, &[])
}

/// One replica: `signet serve` with `DIR/signet.toml`, logging to
/// `DIR/audit-{instance}.jsonl` as `--instance INSTANCE`, with the test audit
/// secret and `env`. Several replicas share `dir`.
pub fn replica(dir: &Path, upstream: &str, instance: &str, env: &[(&str, &str)]) -> Service {
    let mut all_env = vec![("SIGNET_HMAC_SECRET", SECRET_HEX)];
    all_env.extend_from_slice(env);
    Service::spawn(
        &[
            "serve",
            "--config",
            "signet.toml",
            "--upstream",
            upstream,
            "--port",
            "0",
            "--audit-log",
            "audit-{instance}.jsonl",
            "--instance",
            instance,
        ],
        dir,
        &all_env,
    )
}

/// A gate running `config` (TOML text) against `upstream`, in its own temp dir.
pub struct Gate {
    /// The process.
    pub svc: Service,
    /// Its directory (config, audit log).
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Gate {
    /// Start a gate; `extra` flags are appended to `signet serve`.
    pub fn start(config: &str, upstream: &str, extra: &[&str]) -> Gate {
        Self::start_env(config, upstream, extra, &[])
    }

    /// Start a gate with extra environment variables (besides the audit secret).
    pub fn start_env(config: &str, upstream: &str, extra: &[&str], env: &[(&str, &str)]) -> Gate {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("signet.toml"), config).unwrap();
        let mut args = vec![
            "serve",
            "--config",
            "signet.toml",
            "--upstream",
            upstream,
            "--port",
            "0",
        ];
        args.extend_from_slice(&["--audit-log", "audit.jsonl"]);
        args.extend_from_slice(extra);
        let mut all_env = vec![("SIGNET_HMAC_SECRET", SECRET_HEX)];
        all_env.extend_from_slice(env);
        let svc = Service::spawn(&args, dir.path(), &all_env);
        let args = args.iter().map(|a| a.to_string()).collect();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Gate {
            svc,
            dir,
            args,
            env,
        }
    }

    /// Kill the process with SIGKILL (no shutdown, no flush) and wait for it.
    pub fn kill9(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(self.svc.pid().to_string())
            .status();
        let _ = self.svc.child.wait();
    }

    /// Start a new gate process with the same arguments in the same directory
    /// (same config and audit log); the old process must be gone.
    pub fn restart(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut env = vec![("SIGNET_HMAC_SECRET", SECRET_HEX)];
        env.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.svc = Service::spawn(&args, self.dir.path(), &env);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.svc.url
    }

    /// The audit log path.
    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    /// Every audit row so far (waits briefly for rows written after a response).
    pub fn audit_rows(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.audit_path()).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Rows until `pred` holds for one of them (≤ 10 s).
    pub fn wait_for_row(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rows = self.audit_rows();
            if rows.iter().any(&pred) || std::time::Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `signet audit verify` on this gate's log: (exit code, JSON report).
    pub fn verify(&self) -> (Option<i32>, Value) {
        let p = self.audit_path();
        let out = crate::signet(
            &[
                "audit",
                "verify",
                p.to_str().unwrap(),
                "--hmac-secret",
                SECRET_HEX,
                "--json",
            ],
            self.dir.path(),
        );
        (
            out.status.code(),
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        )
    }
}
