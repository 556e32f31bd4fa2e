//! Operator experience end to end: `signet init` (then `serve --dev` in the
//! scaffolded directory and its OpenAI SDK client), `signet doctor` against
//! healthy, open and broken set-ups, every `signet serve` flag set through its
//! `SIGNET_<FLAG>` env var with flag > env > file precedence, and
//! `signet audit report` (JSON, Markdown, SVG) on a log the gate wrote.
//!
//! The client example runs with the venv made by `.ci/setup-venv.sh`
//! (`SIGNET_TEST_VENV` overrides its path).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use signet::config::DEFAULT_CONFIG_TOML;
use signet_e2e::proc::{demo_upstream, Gate, Service, SECRET_HEX};
use signet_e2e::{
    get, json_out, plugins_dir, post, post_raw, signet, signet_bin, stderr, stdout, workspace_root,
    Resp,
};

const OTHER_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("SIGNET_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run .ci/setup-venv.sh (as .ci/run does) to create the venv with the official openai SDK, or point SIGNET_TEST_VENV at one",
        py.display()
    );
    py
}

/// `signet ARGS` in `cwd` with extra env vars.
fn signet_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(signet_bin());
    cmd.args(args).current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("signet runs")
}

fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chat(text: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": text}]})
}

fn completions(url: &str) -> String {
    format!("{url}/v1/chat/completions")
}

/// A chat request with no owner header.
fn no_owner(url: &str) -> Resp {
    post_raw(&completions(url), &[], chat("hi").to_string().as_bytes())
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Rows of `path` once `n` request rows (`pipeline.complete`) are there (≤ 10 s).
fn wait_requests(path: &Path, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = rows(path);
        let done = r
            .iter()
            .filter(|r| r["check_name"] == "pipeline.complete")
            .count();
        if done >= n || std::time::Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

fn lines(v: &std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> String {
    v.lock().unwrap().join("\n")
}

// ------------------------------------------------------------------ init --

const SCAFFOLD: [&str; 6] = [
    "signet.toml",
    ".env.example",
    ".gitignore",
    "plugins/README.txt",
    "client_example.py",
    "README.md",
];

#[test]
fn init_scaffolds_a_gate_that_serves_the_sdk_client_and_never_overwrites() {
    let python = venv_python();
    let tmp = tempfile::tempdir().unwrap();
    let out = signet(&["init", "gate"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let dir = tmp.path().join("gate");
    for f in SCAFFOLD {
        assert!(dir.join(f).is_file(), "{f} missing; {}", stdout(&out));
        assert!(
            stdout(&out).contains(&format!("created gate/{f}")),
            "{}",
            stdout(&out)
        );
    }
    assert!(dir.join("plugins").is_dir());
    assert_eq!(
        std::fs::read_to_string(dir.join("signet.toml")).unwrap(),
        DEFAULT_CONFIG_TOML,
        "init writes the secure default pipeline itself"
    );
    let env_example = std::fs::read_to_string(dir.join(".env.example")).unwrap();
    assert!(
        env_example.contains("SIGNET_HMAC_SECRET=") && env_example.contains("openssl rand -hex 32")
    );
    let gitignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    for pat in ["*.jsonl", ".env", "plugins/*.so"] {
        assert!(gitignore.lines().any(|l| l == pat), "{pat} in {gitignore}");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for cmd in [
        "signet serve --dev",
        "python client_example.py",
        "signet audit verify",
        "mode = \"enforce\"",
    ] {
        assert!(readme.contains(cmd), "README lacks {cmd}");
    }

    // A second run overwrites nothing: an edited file survives, a deleted one comes back.
    let before: Vec<String> = SCAFFOLD
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect();
    let edited = format!("{}\n## Our notes\nkeep me\n", before[5]);
    std::fs::write(dir.join("README.md"), &edited).unwrap();
    std::fs::remove_file(dir.join(".gitignore")).unwrap();
    let again = signet(&["init", "gate"], tmp.path());
    assert_eq!(again.status.code(), Some(0), "{}", both(&again));
    let text = stdout(&again);
    assert!(text.contains("kept existing gate/README.md"), "{text}");
    assert!(text.contains("kept existing gate/signet.toml"), "{text}");
    assert!(text.contains("created gate/.gitignore"), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        edited
    );
    for (f, content) in SCAFFOLD
        .iter()
        .zip(&before)
        .filter(|(f, _)| **f != "README.md")
    {
        assert_eq!(
            &std::fs::read_to_string(dir.join(f)).unwrap(),
            content,
            "{f}"
        );
    }

    // `cd DIR && signet serve --dev` needs no other step.
    let gate = Service::spawn(&["serve", "--dev", "--port", "0"], &dir, &[]);
    let banner = lines(&gate.stdout);
    assert!(banner.contains("config:   signet.toml"), "{banner}");
    assert!(banner.contains("demo"), "{banner}");
    let client = Command::new(&python)
        .arg("client_example.py")
        .current_dir(&dir)
        .env("SIGNET_BASE_URL", format!("{}/v1", gate.url))
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap();
    let said = stdout(&client);
    assert_eq!(
        client.status.code(),
        Some(0),
        "client_example.py failed:\n{said}\n{}",
        stderr(&client)
    );
    assert!(
        said.contains("caught openai.PermissionDeniedError (HTTP 403)"),
        "{said}"
    );
    assert!(said.contains("no commit owner could be resolved"), "{said}");
    assert!(said.contains("receipt on the final event: yes"), "{said}");
    assert!(said.contains("all 3 steps behaved as expected"), "{said}");

    // The third README command: the log verifies with the key serve printed.
    let err = lines(&gate.stderr);
    let secret = err
        .lines()
        .find(|l| l.contains("printed once"))
        .and_then(|l| l.split("secret ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no ephemeral secret printed: {err}"))
        .to_string();
    gate.terminate();
    let audit = dir.join("audit.jsonl");
    let r = rows(&audit);
    assert!(
        r.iter()
            .any(|r| r["check_name"] == "owner_resolution" && r["decision"] == "block"),
        "{r:#?}"
    );
    let v = signet(
        &["audit", "verify", "audit.jsonl", "--hmac-secret", &secret],
        &dir,
    );
    assert_eq!(v.status.code(), Some(0), "{}", both(&v));
}

#[cfg(unix)]
#[test]
fn init_keeps_a_symlink_and_never_writes_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside.toml");
    std::fs::write(&outside, "# not yours\n").unwrap();
    let dir = tmp.path().join("gate");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("signet.toml")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("dangling"), dir.join("README.md")).unwrap();
    let out = signet(&["init", "gate"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("kept existing gate/signet.toml"));
    assert!(stdout(&out).contains("kept existing gate/README.md"));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "# not yours\n");
    assert!(!tmp.path().join("dangling").exists());
}

// ---------------------------------------------------------------- doctor --

/// `signet doctor ARGS` in `cwd` (with the audit secret set, as in production).
fn doctor(args: &[&str], cwd: &Path) -> Output {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    signet_env(&all, cwd, &[("SIGNET_HMAC_SECRET", SECRET_HEX)])
}

/// The doctor's text for check `name`: its line and the indented lines under
/// it (detail continued, `fix:`).
fn doctor_line(out: &str, name: &str) -> String {
    let mut it = out
        .lines()
        .skip_while(|l| l.get(8..8 + name.len()) != Some(name));
    let first = it
        .next()
        .unwrap_or_else(|| panic!("no {name} line in:\n{out}"));
    let rest: Vec<&str> = it.take_while(|l| l.starts_with("        ")).collect();
    format!("{first}\n{}", rest.join("\n"))
}

#[test]
fn doctor_passes_against_a_healthy_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    let gate = Gate::start(DEFAULT_CONFIG_TOML, &demo.url, &[]);
    let args = [
        "--config",
        "signet.toml",
        "--upstream",
        demo.url.as_str(),
        "--self",
        gate.url(),
    ];
    let out = doctor(&args, gate.dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let text = stdout(&out);
    assert!(text.contains("no problems found"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    let line = doctor_line(&text, "gate enforces");
    assert!(
        line.starts_with("  ok ") && line.contains("403 at admission by owner_resolution"),
        "{line}"
    );

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = doctor(&json_args, gate.dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let report = json_out(&out);
    assert_eq!(report["ok"], true, "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for want in [
        "version",
        "config",
        "plugins",
        "checks",
        "audit key",
        "upstream",
        "gate /healthz",
        "gate /version",
        "gate /readyz",
        "gate enforces",
    ] {
        assert!(names.contains(&want), "{want} not checked: {names:?}");
    }
    for c in checks {
        let expected = if c["name"] == "injection probes" {
            "skip" // not asked for
        } else {
            "ok"
        };
        assert_eq!(c["status"], expected, "{c:#}");
    }
}

#[test]
fn doctor_fails_when_the_gate_does_not_enforce() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    // Open: the owner check is there but does not require an owner.
    let open = Gate::start(
        "[[checks]]\nkind = \"owner_resolution\"\n[checks.config]\nrequire_owner = false\n",
        &demo.url,
        &[],
    );
    // Shadow: the secure default pipeline, nothing enforced.
    let shadow = Gate::start(DEFAULT_CONFIG_TOML, &demo.url, &["--shadow"]);
    for (gate, says) in [(&open, "the gate is OPEN"), (&shadow, "SHADOW MODE")] {
        let out = doctor(
            &["--upstream", &demo.url, "--self", gate.url()],
            gate.dir.path(),
        );
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        let line = doctor_line(&text, "gate enforces");
        assert!(line.starts_with("  FAIL"), "{line}");
        assert!(line.contains(says), "{line}");
        assert!(
            line.contains("fix:")
                && line.contains("require_owner = true")
                && line.contains("--shadow"),
            "{line}"
        );
        assert!(text.contains("problem(s) found"), "{text}");
    }
}

#[test]
fn doctor_probes_prompt_injection() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    // No injection check: every probe goes through, doctor says which and how to fix it.
    let bare = Gate::start("[[checks]]\nkind = \"owner_resolution\"\n", &demo.url, &[]);
    let out = doctor(
        &["--self", bare.url(), "--probe-injection"],
        bare.dir.path(),
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = doctor_line(&text, "injection probes");
    assert!(line.starts_with("  FAIL"), "{line}");
    assert!(line.contains("10 of 10 payloads NOT refused"), "{line}");
    assert!(line.contains("override (HTTP 200)"), "{line}");
    assert!(line.contains("dan-persona (HTTP 200)"), "{line}");
    assert!(line.contains("enable the prompt_injection check"), "{line}");
    // The gate still enforces owners: only the probe check fails.
    assert!(
        doctor_line(&text, "gate enforces").starts_with("  ok"),
        "{text}"
    );

    // With the check (plus an operator rule, as the fix hint for a miss says): all refused.
    let guarded = Gate::start(
        r#"
[[checks]]
kind = "owner_resolution"

[[checks]]
kind = "prompt_injection"
[checks.config]
extra_rules = [{ name = "ops_test_developer_mode", pattern = '(?i)developer mode', severity = "high" }]
"#,
        &demo.url,
        &[],
    );
    let out = doctor(
        &["--self", guarded.url(), "--probe-injection"],
        guarded.dir.path(),
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = doctor_line(&text, "injection probes");
    assert!(
        line.starts_with("  ok")
            && line.contains("all 10 payloads refused with 403 by prompt_injection"),
        "{line}"
    );
}

#[test]
fn doctor_fails_on_an_unreachable_upstream_an_invalid_config_and_a_bad_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = doctor(&["--upstream", &dead], tmp.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = doctor_line(&text, "upstream");
    assert!(
        line.starts_with("  FAIL") && line.contains("unreachable"),
        "{line}"
    );
    assert!(
        line.contains("fix:") && line.contains("--upstream"),
        "{line}"
    );
    assert!(
        text.contains("skip  gate"),
        "self checks are skipped and say so: {text}"
    );

    // A config with an unknown key: FAIL naming the key.
    std::fs::write(tmp.path().join("bad.toml"), "[server]\nprot = 1\n").unwrap();
    let out = doctor(&["--config", "bad.toml"], tmp.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = doctor_line(&text, "config");
    assert!(
        line.starts_with("  FAIL") && line.contains("prot"),
        "{line}"
    );
    assert!(line.contains("signet check-config"), "{line}");

    // A config whose check does not build.
    std::fs::write(
        tmp.path().join("kinds.toml"),
        "[[checks]]\nkind = \"no_such_check\"\n[[checks]]\nkind = \"rate_limit\"\n[checks.config]\ncapacity = \"lots\"\n",
    )
    .unwrap();
    let out = doctor(&["--config", "kinds.toml"], tmp.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = doctor_line(&text, "checks");
    assert!(
        line.starts_with("  FAIL") && line.contains("no_such_check") && line.contains("capacity"),
        "{line}"
    );

    // A library in the plugins directory that is not a signet plugin.
    let plugins = plugins_dir(&["fx_good", "fx_not_plugin"]);
    let out = doctor(
        &["--plugins-dir", plugins.path().to_str().unwrap(), "--json"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let report = json_out(&out);
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert_eq!(failed[0]["name"], "plugins");
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("libfx_not_plugin"),
        "{report:#}"
    );
    assert!(failed[0]["hint"].as_str().unwrap().contains("remove it"));
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "plugins" && c["status"] == "ok"),
        "the good library is reported loaded: {report:#}"
    );
}

// ------------------------------------------------- serve: env and flags --

/// `signet serve` in `cwd` with exactly these args and env.
fn serve(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Service {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    Service::spawn(&all, cwd, env)
}

fn port_of(svc: &Service) -> u16 {
    svc.url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn every_serve_setting_comes_from_its_env_var() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    let port = free_port();
    let port_s = port.to_string();
    let gate = serve(
        tmp.path(),
        &[],
        &[
            ("SIGNET_PORT", &port_s),
            ("SIGNET_HOST", "127.0.0.1"),
            ("SIGNET_UPSTREAM", &demo.url),
            ("SIGNET_AUDIT_LOG", "env-audit.jsonl"),
            ("SIGNET_HMAC_SECRET", SECRET_HEX),
            ("SIGNET_KEY_ID", "k-env"),
            ("SIGNET_LOG_FORMAT", "json"),
        ],
    );
    assert_eq!(gate.url, format!("http://127.0.0.1:{port}"));
    let r = post(&completions(&gate.url), &chat("hello env"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-signet-upstream"), Some(demo.url.as_str()));
    let log = tmp.path().join("env-audit.jsonl");
    let rs = wait_requests(&log, 1);
    assert!(!rs.is_empty());
    for row in &rs {
        assert_eq!(row["metadata"]["_signing_key_id"], "k-env", "{row}");
    }
    assert!(
        !lines(&gate.stderr).contains("EPHEMERAL"),
        "the env secret is used"
    );
    // SIGNET_LOG_FORMAT=json: the request log line is JSON.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let out = lines(&gate.stdout);
        if out.lines().any(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["msg"] == "request" && v["status"] == 200)
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no JSON log line: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    gate.terminate();
    let v = signet(
        &[
            "audit",
            "verify",
            "env-audit.jsonl",
            "--hmac-secret",
            SECRET_HEX,
            "--key-id",
            "k-env",
        ],
        tmp.path(),
    );
    assert_eq!(v.status.code(), Some(0), "{}", both(&v));
}

#[test]
fn port_flag_beats_env_beats_file() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    std::fs::write(
        tmp.path().join("signet.toml"),
        format!(
            "[server]\nport = {file_port}\n[upstream]\nurl = {:?}\n[audit]\npath = \"audit.jsonl\"\n[[checks]]\nkind = \"owner_resolution\"\n",
            demo.url
        ),
    )
    .unwrap();
    let secret = ("SIGNET_HMAC_SECRET", SECRET_HEX);
    let env_port_s = env_port.to_string();
    let flag_port_s = flag_port.to_string();

    let g = serve(tmp.path(), &[], &[secret]);
    assert_eq!(port_of(&g), file_port, "the file's [server] port");
    g.terminate();
    let g = serve(tmp.path(), &[], &[secret, ("SIGNET_PORT", &env_port_s)]);
    assert_eq!(port_of(&g), env_port, "SIGNET_PORT beats the file");
    g.terminate();
    let g = serve(
        tmp.path(),
        &["--port", &flag_port_s],
        &[secret, ("SIGNET_PORT", &env_port_s)],
    );
    assert_eq!(port_of(&g), flag_port, "--port beats SIGNET_PORT");
    assert_eq!(get(&format!("{}/healthz", g.url)).status, 200);
    g.terminate();
}

#[test]
fn upstream_audit_log_key_id_and_secret_flag_beats_env_beats_file() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    let dead = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        tmp.path().join("signet.toml"),
        format!(
            "[upstream]\nurl = {dead:?}\n[audit]\npath = \"file.jsonl\"\nkey_id = \"k-file\"\n[[checks]]\nkind = \"owner_resolution\"\n"
        ),
    )
    .unwrap();
    let verify = |log: &str, secret: &str, key_id: &str| {
        signet(
            &[
                "audit",
                "verify",
                log,
                "--hmac-secret",
                secret,
                "--key-id",
                key_id,
            ],
            tmp.path(),
        )
        .status
        .code()
    };

    // File only: the file's (dead) upstream, log and key id.
    let g = serve(
        tmp.path(),
        &["--port", "0"],
        &[("SIGNET_HMAC_SECRET", SECRET_HEX)],
    );
    assert_eq!(post(&completions(&g.url), &chat("x")).status, 502);
    g.terminate();
    assert!(rows(&tmp.path().join("file.jsonl"))
        .iter()
        .all(|r| r["metadata"]["_signing_key_id"] == "k-file"));

    // Env beats the file.
    let env = [
        ("SIGNET_HMAC_SECRET", SECRET_HEX),
        ("SIGNET_UPSTREAM", demo.url.as_str()),
        ("SIGNET_AUDIT_LOG", "env.jsonl"),
        ("SIGNET_KEY_ID", "k-env"),
    ];
    let g = serve(tmp.path(), &["--port", "0"], &env);
    let r = post(&completions(&g.url), &chat("x"));
    assert_eq!(
        r.status, 200,
        "SIGNET_UPSTREAM beats [upstream] url: {}",
        r.body
    );
    g.terminate();
    let env_rows = rows(&tmp.path().join("env.jsonl"));
    assert!(!env_rows.is_empty(), "SIGNET_AUDIT_LOG beats [audit] path");
    assert!(env_rows
        .iter()
        .all(|r| r["metadata"]["_signing_key_id"] == "k-env"));
    assert_eq!(verify("env.jsonl", SECRET_HEX, "k-env"), Some(0));

    // Flags beat the env.
    let env = [
        ("SIGNET_HMAC_SECRET", SECRET_HEX),
        ("SIGNET_UPSTREAM", dead.as_str()),
        ("SIGNET_AUDIT_LOG", "env2.jsonl"),
        ("SIGNET_KEY_ID", "k-env"),
    ];
    let g = serve(
        tmp.path(),
        &[
            "--port",
            "0",
            "--upstream",
            &demo.url,
            "--audit-log",
            "flag.jsonl",
            "--key-id",
            "k-flag",
            "--hmac-secret",
            OTHER_SECRET,
        ],
        &env,
    );
    let r = post(&completions(&g.url), &chat("x"));
    assert_eq!(
        r.status, 200,
        "--upstream beats SIGNET_UPSTREAM: {}",
        r.body
    );
    g.terminate();
    assert!(!tmp.path().join("env2.jsonl").exists());
    let flag_rows = rows(&tmp.path().join("flag.jsonl"));
    assert!(!flag_rows.is_empty(), "--audit-log beats SIGNET_AUDIT_LOG");
    assert!(flag_rows
        .iter()
        .all(|r| r["metadata"]["_signing_key_id"] == "k-flag"));
    assert_eq!(
        verify("flag.jsonl", OTHER_SECRET, "k-flag"),
        Some(0),
        "--hmac-secret beats SIGNET_HMAC_SECRET"
    );
    assert_eq!(verify("flag.jsonl", SECRET_HEX, "k-flag"), Some(2));
}

#[test]
fn shadow_and_strict_errors_from_env() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    let base = [
        ("SIGNET_UPSTREAM", demo.url.as_str()),
        ("SIGNET_AUDIT_LOG", "audit.jsonl"),
        ("SIGNET_HMAC_SECRET", SECRET_HEX),
        ("SIGNET_PORT", "0"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut env = base.to_vec();
        env.push(extra);
        serve(tmp.path(), &[], &env)
    };

    let g = with(("SIGNET_SHADOW", "true"));
    let r = no_owner(&g.url);
    assert_eq!(r.status, 200, "shadow mode refuses nothing: {}", r.body);
    assert_eq!(r.header("x-signet-shadow-decision"), Some("block"));
    assert_eq!(r.header("x-signet-shadow-check"), Some("owner_resolution"));
    g.terminate();

    let g = with(("SIGNET_SHADOW", "false"));
    assert_eq!(no_owner(&g.url).status, 403, "SIGNET_SHADOW=false is off");
    g.terminate();

    let g = with(("SIGNET_STRICT_ERRORS", "true"));
    let r = no_owner(&g.url);
    assert_eq!(r.status, 403);
    let b = r.json();
    assert_eq!(b["reason"], "refused", "{b}");
    assert!(b.get("check").is_none(), "{b}");
    g.terminate();
}

#[test]
fn plugins_dir_dev_config_and_ephemeral_key_from_env() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    let plugins = plugins_dir(&["fx_good"]);
    let empty = tempfile::tempdir().unwrap();
    // A config using a plugin check, in a subdirectory, found through SIGNET_CONFIG.
    std::fs::create_dir(tmp.path().join("conf")).unwrap();
    std::fs::write(
        tmp.path().join("conf/custom.toml"),
        "[[checks]]\nkind = \"owner_resolution\"\n[[checks]]\nkind = \"fx_tool_guard\"\n",
    )
    .unwrap();
    let base = [
        ("SIGNET_CONFIG", "conf/custom.toml"),
        ("SIGNET_UPSTREAM", demo.url.as_str()),
        ("SIGNET_AUDIT_LOG", "audit.jsonl"),
        ("SIGNET_HMAC_SECRET", SECRET_HEX),
        ("SIGNET_PORT", "0"),
    ];

    // Without the plugin library the check kind is unknown: serve refuses to start.
    let out = signet_env(&["serve"], tmp.path(), &base);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(both(&out).contains("fx_tool_guard"), "{}", both(&out));

    // SIGNET_PLUGINS_DIR supplies it.
    let mut env = base.to_vec();
    env.push(("SIGNET_PLUGINS_DIR", plugins.path().to_str().unwrap()));
    let g = serve(tmp.path(), &[], &env);
    let banner = lines(&g.stdout);
    assert!(banner.contains("config:   conf/custom.toml"), "{banner}");
    assert!(banner.contains("fx_good"), "{banner}");
    assert!(banner.contains("fx_tool_guard"), "{banner}");
    g.terminate();

    // --plugins-dir beats SIGNET_PLUGINS_DIR (an empty dir: the kind is unknown again).
    let out = signet_env(
        &["serve", "--plugins-dir", empty.path().to_str().unwrap()],
        tmp.path(),
        &env,
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));

    // SIGNET_ALLOW_EPHEMERAL_KEY: no secret anywhere, the gate still starts.
    let g = serve(
        tmp.path(),
        &["--config", "conf/custom.toml"],
        &[
            ("SIGNET_PLUGINS_DIR", plugins.path().to_str().unwrap()),
            ("SIGNET_UPSTREAM", demo.url.as_str()),
            ("SIGNET_AUDIT_LOG", "eph.jsonl"),
            ("SIGNET_PORT", "0"),
            ("SIGNET_ALLOW_EPHEMERAL_KEY", "true"),
        ],
    );
    assert!(
        lines(&g.stderr).contains("EPHEMERAL"),
        "{}",
        lines(&g.stderr)
    );
    g.terminate();
    let out = signet_env(
        &["serve", "--config", "conf/custom.toml", "--port", "0"],
        tmp.path(),
        &[
            ("SIGNET_PLUGINS_DIR", plugins.path().to_str().unwrap()),
            ("SIGNET_UPSTREAM", demo.url.as_str()),
            ("SIGNET_AUDIT_LOG", "eph.jsonl"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "without it (or a secret) serve refuses: {}",
        both(&out)
    );

    // SIGNET_DEV in an empty directory: demo upstream, audit.jsonl, ephemeral key.
    let dev_dir = tempfile::tempdir().unwrap();
    let g = serve(
        dev_dir.path(),
        &[],
        &[("SIGNET_DEV", "true"), ("SIGNET_PORT", "0")],
    );
    let r = post(&completions(&g.url), &chat("dev"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("x-signet-upstream").unwrap().contains("demo"));
    assert!(lines(&g.stderr).contains("EPHEMERAL"));
    assert_eq!(no_owner(&g.url).status, 403, "--dev still enforces");
    g.terminate();
    assert!(!rows(&dev_dir.path().join("audit.jsonl")).is_empty());
}

/// CONTRACT §1: env overrides the file — also for the boolean settings. Today
/// `serve` only ever turns `[server] shadow` / `strict_errors` on from a flag or
/// env var, so `SIGNET_SHADOW=false` cannot switch off a file's `shadow = true`.
#[test]
fn boolean_env_vars_override_the_file_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    std::fs::write(
        tmp.path().join("signet.toml"),
        format!("[server]\nshadow = true\nstrict_errors = true\n[upstream]\nurl = {:?}\n[audit]\npath = \"audit.jsonl\"\n[[checks]]\nkind = \"owner_resolution\"\n", demo.url),
    )
    .unwrap();
    let g = serve(
        tmp.path(),
        &["--port", "0"],
        &[
            ("SIGNET_HMAC_SECRET", SECRET_HEX),
            ("SIGNET_SHADOW", "false"),
            ("SIGNET_STRICT_ERRORS", "false"),
        ],
    );
    let r = no_owner(&g.url);
    assert_eq!(r.status, 403, "SIGNET_SHADOW=false beats shadow = true");
    assert_eq!(
        r.json()["check"],
        "owner_resolution",
        "SIGNET_STRICT_ERRORS=false beats the file"
    );
    g.terminate();
}

// ---------------------------------------------------------- audit report --

/// Minimal XML well-formedness: balanced tags, quoted attributes, escaped text.
fn assert_well_formed_xml(s: &str) {
    let s = s.trim_start();
    assert!(s.starts_with("<?xml"), "no XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s;
    let mut roots = 0;
    let check_text = |t: &str| {
        let mut t = t;
        while let Some(i) = t.find('&') {
            let end = t[i..].find(';').expect("unterminated entity") + i;
            let ent = &t[i + 1..end];
            assert!(
                matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos") || ent.starts_with('#'),
                "bad entity &{ent};"
            );
            t = &t[end + 1..];
        }
    };
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        assert!(
            !stack.is_empty() || text.trim().is_empty(),
            "text outside the root: {text:?}"
        );
        check_text(text);
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        if let Some(decl) = tag.strip_prefix('?') {
            assert!(decl.ends_with('?'), "bad declaration {tag}");
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
        let name = &body[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == ':'),
            "bad tag name in <{tag}>"
        );
        // attributes: name="value" ...
        let mut attrs = body[name_end..].trim();
        while !attrs.is_empty() {
            let eq = attrs
                .find('=')
                .unwrap_or_else(|| panic!("attribute without value in <{tag}>"));
            let an = attrs[..eq].trim();
            assert!(
                !an.is_empty() && !an.contains(char::is_whitespace),
                "bad attribute in <{tag}>"
            );
            let after = &attrs[eq + 1..];
            assert!(after.starts_with('"'), "unquoted attribute {an} in <{tag}>");
            let close = after[1..].find('"').expect("unterminated attribute") + 1;
            let value = &after[1..close];
            assert!(!value.contains('<'), "< in attribute {an}");
            check_text(value);
            attrs = after[close + 1..].trim_start();
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    assert!(rest.trim().is_empty(), "trailing text {rest:?}");
    assert_eq!(roots, 1, "exactly one root element");
}

#[test]
fn audit_report_counts_what_the_gate_decided() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_upstream(tmp.path());
    let gate = Gate::start(DEFAULT_CONFIG_TOML, &demo.url, &[]);
    let url = completions(gate.url());
    for i in 0..3 {
        assert_eq!(post(&url, &chat(&format!("hello {i}"))).status, 200);
    }
    assert_eq!(no_owner(gate.url()).status, 403);
    assert_eq!(no_owner(gate.url()).status, 403);
    let r = post_raw(
        &url,
        &[
            ("x-commit-owner", "human:bob"),
            ("x-classification", "SECRET"),
        ],
        chat("classified").to_string().as_bytes(),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["check"], "classification_gate");
    let log = gate.audit_path();
    assert_eq!(
        wait_requests(&log, 6)
            .iter()
            .filter(|r| r["check_name"] == "pipeline.complete")
            .count(),
        6
    );
    let dir = gate.dir.path();

    let out = signet(&["audit", "report", "audit.jsonl", "--format", "json"], dir);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let j = json_out(&out);
    assert_eq!(j["requests"]["total"], 6, "{j:#}");
    assert_eq!(j["requests"]["allowed"], 3);
    assert_eq!(j["requests"]["refused"], 3);
    assert_eq!(j["basis"], "requests");
    assert_eq!(j["by_check"]["owner_resolution"]["block"], 2, "{j:#}");
    assert_eq!(j["by_check"]["classification_gate"]["block"], 1);
    assert_eq!(j["by_owner"]["human:alice"]["allow"], 3);
    assert_eq!(j["by_owner"]["human:alice"]["refused"], 0);
    assert_eq!(j["by_owner"]["unresolved"]["refused"], 2);
    assert_eq!(
        j["top_refused_owners"],
        json!([{"owner": "unresolved", "refused": 2}, {"owner": "human:bob", "refused": 1}])
    );
    assert_eq!(j["by_day"].as_array().unwrap().len(), 1);
    assert_eq!(j["by_day"][0]["total"], 6);
    assert_eq!(j["by_day"][0]["block"], 3);
    assert!(j["time_range"]["first"].as_str().unwrap().starts_with("20"));
    assert_eq!(j["entries"], 9, "6 request rows + 3 check rows: {j:#}");

    // --since: the whole log is younger than an hour.
    let out = signet(
        &[
            "audit",
            "report",
            "audit.jsonl",
            "--format",
            "json",
            "--since",
            "1h",
        ],
        dir,
    );
    assert_eq!(json_out(&out)["requests"]["total"], 6);

    // Markdown with the tables, and the SVG chart.
    let out = signet(
        &["audit", "report", "audit.jsonl", "--plot", "chart.svg"],
        dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let md = stdout(&out);
    assert!(md.starts_with("# signet audit report"), "{md}");
    assert!(md.contains("- requests: 6 (3 allowed, 3 refused"), "{md}");
    assert!(
        md.contains(
            "| check | block | escalate | redact | allow | other | of which shadow | total |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| owner_resolution | 2 | 0 | 0 | 0 | 0 | 0 | 2 |"),
        "{md}"
    );
    assert!(md.contains("| 1 | unresolved | 2 |"), "{md}");
    assert!(md.contains("| human:alice | 3 | 3 | 0 | 0 | 0 |"), "{md}");
    let svg = std::fs::read_to_string(dir.join("chart.svg")).unwrap();
    assert_well_formed_xml(&svg);
    assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(svg.matches("<g class=\"day\"").count(), 1, "{svg}");
}

#[test]
fn audit_report_plots_one_bar_group_per_day_and_honours_since() {
    let tmp = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let day = 86_400 * 1_000_000_000u64;
    // Four calendar days back from today with entries on three of them (one left empty).
    let today0 = now / day * day;
    let row = |ts: u64, decision: &str, owner: &str| {
        json!({"approval_chain": [], "check_name": "pipeline.complete", "decision": decision,
            "entry_id": format!("e-{ts}"), "hmac": "", "metadata": {"outcome": "x"},
            "owner_id": owner, "owner_type": "human", "prev_hmac": "", "reason": "",
            "request_fingerprint": "sha256:00", "ts_ns": ts})
        .to_string()
    };
    let stamps = [
        today0 - 3 * day + 5,
        today0 - 3 * day + 6,
        today0 - 2 * day + 5,
        now - 60 * 1_000_000_000,
        now - 30 * 1_000_000_000,
    ];
    let decisions = ["allow", "block", "allow", "allow", "escalate"];
    let text = stamps
        .iter()
        .zip(decisions)
        .map(|(ts, d)| row(*ts, d, if d == "block" { "b|`x`" } else { "a" }))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(tmp.path().join("log.jsonl"), format!("{text}\n")).unwrap();

    let out = signet(
        &[
            "audit",
            "report",
            "log.jsonl",
            "--format",
            "json",
            "--plot",
            "days.svg",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let j = json_out(&out);
    let days = j["by_day"].as_array().unwrap();
    let first_day = stamps[0] / day;
    let mut want = vec![0u64; usize::try_from(stamps[4] / day - first_day + 1).unwrap()];
    for ts in stamps {
        want[usize::try_from(ts / day - first_day).unwrap()] += 1;
    }
    assert!(want.len() >= 3 && want.contains(&0), "{want:?}");
    let totals: Vec<u64> = days.iter().map(|d| d["total"].as_u64().unwrap()).collect();
    assert_eq!(
        totals, want,
        "one row per calendar day, the empty one kept: {j:#}"
    );
    let svg = std::fs::read_to_string(tmp.path().join("days.svg")).unwrap();
    assert_well_formed_xml(&svg);
    assert_eq!(svg.matches("<g class=\"day\"").count(), want.len(), "{svg}");
    for d in days {
        let label = d["day"].as_str().unwrap();
        assert!(svg.contains(&format!("data-day=\"{label}\"")), "{label}");
    }
    assert_eq!(svg.matches("class=\"block\"").count(), 1);
    assert_eq!(svg.matches("class=\"escalate\"").count(), 1);

    let out = signet(&["audit", "report", "log.jsonl"], tmp.path());
    assert!(
        stdout(&out).contains("| 1 | human:b\\|\\`x\\` | 1 |"),
        "owner text cannot break the table: {}",
        stdout(&out)
    );

    let out = signet(
        &[
            "audit",
            "report",
            "log.jsonl",
            "--format",
            "json",
            "--since",
            "30m",
        ],
        tmp.path(),
    );
    let j = json_out(&out);
    assert_eq!(j["requests"]["total"], 2, "{j:#}");
    assert_eq!(j["since"], "30m");

    let out = signet(
        &["audit", "report", "log.jsonl", "--since", "yesterday"],
        tmp.path(),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("30m, 24h, 7d"), "{}", stderr(&out));
}

/// `SIGNET_DEV=1`, `SIGNET_SHADOW=0`: the usual spellings of a boolean env var.
/// Today clap's default bool parser for these flags accepts only `true` /
/// `false` and `serve` exits with "invalid value '1' for '--dev'".
#[test]
fn boolean_env_vars_accept_1_and_0() {
    let tmp = tempfile::tempdir().unwrap();
    let g = serve(
        tmp.path(),
        &[],
        &[
            ("SIGNET_DEV", "1"),
            ("SIGNET_SHADOW", "0"),
            ("SIGNET_PORT", "0"),
        ],
    );
    assert_eq!(no_owner(&g.url).status, 403);
    g.terminate();
}

#[test]
fn serve_dev_restarts_in_the_same_directory_moving_the_old_throwaway_log_aside() {
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let svc =
            signet_e2e::proc::Service::spawn(&["serve", "--dev", "--port", "0"], tmp.path(), &[]);
        let r = signet_e2e::post(
            &format!("{}/v1/chat/completions", svc.url),
            &serde_json::json!({"messages": []}),
        );
        assert_eq!(r.status, 200, "round {round}: {}", r.body);
        assert_eq!(svc.terminate(), Some(0), "round {round}");
    }
    let moved: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("audit.jsonl.prev-"))
        .collect();
    assert_eq!(
        moved.len(),
        1,
        "the first run's log was moved aside, not deleted: {moved:?}"
    );
    assert!(tmp.path().join("audit.jsonl").exists());
}

/// `signet bench --scenarios SCENARIOS --json`, one short round pair each,
/// unpinned; it must succeed.
fn short_bench(scenarios: &str) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "--scenarios",
        scenarios,
        "--rounds",
        "1",
        "--duration",
        "0.3",
        "--requests",
        "40",
        "--no-pin",
        "--json",
    ];
    let out = signet(&args, tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    json_out(&out)
}

/// The scenario names of a bench report, in order.
fn scenario_names(v: &Value) -> Vec<&str> {
    let all = v["scenarios"].as_array().unwrap();
    all.iter().filter_map(|s| s["name"].as_str()).collect()
}

/// Response bytes per request on one side of a bench scenario, which had
/// requests and no errors.
fn bytes_per_request(s: &Value, side: &str) -> u64 {
    let r = &s[side];
    assert_eq!(r["errors"], 0, "{s}");
    let n = r["requests"].as_u64().unwrap();
    assert!(n > 0, "{s}");
    r["response_bytes"].as_u64().unwrap() / n
}

/// `signet bench` end to end (a short run): the mock, the gate child with the
/// `signet init` pipeline, and the per-chunk measurement on both wire formats.
/// Each 210-chunk stream through the gate delivered all of its text (so the
/// Anthropic per-chunk figure measures deltas the gate inspected and passed,
/// not an early abort or an error page), and both per-chunk figures come out.
#[test]
fn bench_measures_per_chunk_cost_on_openai_and_anthropic_streams() {
    let v = short_bench("chunk-cost,chunk-cost-anthropic");
    let scenarios = v["scenarios"].as_array().unwrap();
    let names = scenario_names(&v);
    assert_eq!(
        names,
        [
            "stream-10ch",
            "stream-210ch",
            "stream-10ch-anthropic",
            "stream-210ch-anthropic"
        ]
    );
    for s in scenarios {
        let per_stream = |side: &str| bytes_per_request(s, side);
        // The gate passes every event on (re-encoded at most) and adds its
        // receipt: never fewer bytes than the mock sent, unless it cut the
        // stream short.
        let (direct, gate) = (per_stream("direct"), per_stream("gate"));
        assert!(
            gate >= direct,
            "{}: gate {gate} < direct {direct} bytes a stream",
            s["name"]
        );
    }
    for key in ["per_chunk", "per_chunk_anthropic"] {
        assert_eq!(v[key]["chunk_bytes"], 50, "{v}");
        assert!(v[key]["gate_cpu_us"].is_f64(), "{key}: {v}");
    }
}

/// `signet bench --scenarios floor`: the c=1 rounds go through a bare
/// forwarder (`signet bench proxy`) that passes the mock's answers on byte
/// for byte — no receipt, no checks — so the machine's floor under the gate's
/// added latency is measured in the same run.
#[test]
fn bench_floor_runs_the_c1_rounds_through_a_bare_forwarder() {
    let v = short_bench("floor");
    let scenarios = v["scenarios"].as_array().unwrap();
    let names = scenario_names(&v);
    assert_eq!(
        names,
        ["floor-unary-c1", "floor-stream-c1", "floor-unary-c32"]
    );
    for s in scenarios {
        let per_request = |side: &str| bytes_per_request(s, side);
        // Exactly the mock's bytes: the forwarder adds nothing (the gate
        // would add its receipt) and cuts nothing.
        assert_eq!(per_request("gate"), per_request("direct"), "{s}");
        assert!(s["gate_cpu_us_per_request"].is_f64(), "{s}");
    }
    let setup = v["setup"].as_array().unwrap();
    assert!(
        setup
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.starts_with("floor-*"))),
        "{v}"
    );
}

/// `signet bench injection` end to end (a short run): both sides' rounds
/// through a real gate child, and the gate pinned to a CPU of its own, away from the
/// clients and the demo upstream, as in `signet bench` (with 2+ CPUs).
/// `gate_cpus_allowed` is read from the running child's `/proc` entry, so it
/// shows where the gate really ran, not where the bench meant it to.
#[test]
fn bench_injection_runs_both_rounds_with_the_gate_on_its_own_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "injection",
        "--requests",
        "100",
        "--bombs",
        "1",
        "--json",
    ];
    let out = signet(&args, tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_out(&out);
    let o = &v["ordinary"];
    assert_eq!(o["requests"], 100, "{v}");
    // The default four round pairs, 25 requests a round on each side.
    assert_eq!(o["rounds"], 4, "{v}");
    for round in ["without_bombs", "with_bombs"] {
        assert!(o[round]["p99_ms"].as_f64().unwrap() > 0.0, "{v}");
    }
    assert!(
        o["with_bombs"]["bomb_requests_completed"].as_u64().unwrap() >= 1,
        "{v}"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus >= 2 {
        assert_eq!(o["gate_cpu"], 0, "{v}");
        assert_eq!(o["gate_cpus_allowed"], "0", "{v}");
        assert!(o["load_cpu"].as_u64().is_some_and(|c| c != 0), "{v}");
    }
}
