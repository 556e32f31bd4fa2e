//! The plugin host end to end: the real `signet` binary, real cdylibs (the
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! out-of-tree example and a deliberately broken set), real config files.
use std::path::Path;

use serde_json::{json, Value};
use signet_e2e::{json_out, plugins_dir, signet, stderr, stdout};

const ALL: &[&str] = &[
    "cool_check",
    "fx_good",
    "fx_hook_panic",
    "fx_ctor_panic",
    "zz_duplicate",
    "fx_level_mismatch",
    "fx_layout_mismatch",
    "fx_not_plugin",
];

fn rows_for<'a>(list: &'a Value, file: &str) -> Vec<&'a Value> {
    list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with(file))
        .collect()
}

fn lib(name: &str) -> String {
    format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

#[test]
fn plugins_list_json_reports_every_library_with_its_reason() {
    let dir = plugins_dir(ALL);
    std::fs::write(
        dir.path().join(lib("garbage")),
        b"this is not a shared library",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored: wrong suffix").unwrap();
    let out = signet(
        &[
            "plugins",
            "list",
            "--plugins-dir",
            dir.path().to_str().unwrap(),
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let list = json_out(&out);
    assert_eq!(list["host_api_level"], 1);
    assert!(list["builtins"]
        .as_array()
        .unwrap()
        .contains(&json!("owner_resolution")));

    let cool = rows_for(&list, &lib("cool_check"));
    assert_eq!(cool.len(), 1);
    assert_eq!(cool[0]["check"], "cool_check");
    assert_eq!(cool[0]["status"], "loaded");
    assert_eq!(cool[0]["version"], "0.1.0");
    assert_eq!(cool[0]["stage"], "admission");
    assert_eq!(cool[0]["hooks"], json!(["pre_request"]));
    assert_eq!(cool[0]["api_level"], 1);
    assert_eq!(cool[0]["sha256"].as_str().unwrap().len(), 64);

    let good = rows_for(&list, &lib("fx_good"));
    let names: Vec<&str> = good.iter().map(|r| r["check"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["fx_redact", "fx_tool_guard", "fx_slow", "fx_marker"]
    );
    assert!(good.iter().all(|r| r["status"] == "loaded"));
    assert_eq!(good[0]["hooks"], json!(["pre_request", "post_complete"]));

    let dup = rows_for(&list, &lib("zz_duplicate"));
    assert_eq!(dup.len(), 2);
    assert!(dup.iter().all(|r| r["status"] == "duplicate"));
    assert!(
        dup[0]["error"].as_str().unwrap().contains("fx_good"),
        "{}",
        dup[0]["error"]
    );
    assert!(
        dup[1]["error"].as_str().unwrap().contains("built-in"),
        "{}",
        dup[1]["error"]
    );

    let level = rows_for(&list, &lib("fx_level_mismatch"));
    assert_eq!(level[0]["status"], "incompatible");
    assert_eq!(level[0]["api_level"], 99);
    assert!(level[0]["error"].as_str().unwrap().contains("level 99"));

    let layout = rows_for(&list, &lib("fx_layout_mismatch"));
    assert_eq!(layout[0]["status"], "incompatible");
    assert!(
        layout[0]["error"]
            .as_str()
            .unwrap()
            .contains("layout does not match"),
        "{}",
        layout[0]["error"]
    );
    assert!(layout[0]["detail"]
        .as_str()
        .unwrap()
        .contains("fx_layout_mismatch"));

    let not_plugin = rows_for(&list, &lib("fx_not_plugin"));
    assert_eq!(not_plugin[0]["status"], "load_error");
    assert!(not_plugin[0]["error"]
        .as_str()
        .unwrap()
        .contains("not a signet plugin"));

    let garbage = rows_for(&list, &lib("garbage"));
    assert_eq!(garbage[0]["status"], "load_error");
    assert!(garbage[0]["error"]
        .as_str()
        .unwrap()
        .contains("cannot be opened as a shared library"));

    assert!(rows_for(&list, "notes.txt").is_empty());
}

fn write_config(dir: &Path, plugins: &Path, checks: &str) -> String {
    let text = format!(
        "[plugins]\ndir = {:?}\n\n{checks}",
        plugins.to_str().unwrap()
    );
    let p = dir.join("signet.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn dry_run(config: &str, cwd: &Path, body: Value, extra: &[&str]) -> Value {
    let req = cwd.join("req.json");
    std::fs::write(&req, body.to_string()).unwrap();
    let mut args = vec![
        "dry-run",
        req.to_str().unwrap(),
        "--config",
        config,
        "-H",
        "X-Commit-Owner: human:alice",
    ];
    args.extend_from_slice(extra);
    let out = signet(&args, cwd);
    assert!(out.status.success(), "dry-run failed: {}", stderr(&out));
    json_out(&out)
}

const GOOD_PIPELINE: &str = r#"
[[checks]]
kind = "owner_resolution"

[[checks]]
kind = "fx_redact"

[[checks]]
kind = "cool_check"
[checks.config]
threshold = 1

[[checks]]
kind = "fx_tool_guard"
"#;

#[test]
fn good_plugins_load_and_decide_through_the_host() {
    let plugins = plugins_dir(ALL);
    let work = tempfile::tempdir().unwrap();
    let cfg = write_config(work.path(), plugins.path(), GOOD_PIPELINE);

    // One message containing the word: fx_redact rewrites it, cool_check (which
    // runs after it) still runs and passes, the tool guard blocks drop_table.
    let body = json!({"messages": [{"role": "user", "content": "my secret plan"}]});
    let out = dry_run(
        &cfg,
        work.path(),
        body,
        &[
            "--tool-call",
            r#"drop_table={"table":"users"}"#,
            "--tool-call",
            "lookup={}",
        ],
    );
    assert_eq!(out["owner"], "human:alice");
    assert_eq!(out["admission"]["result"], "pass");
    assert_eq!(
        out["request_body"]["messages"][0]["content"],
        "my [gone] plan"
    );
    let commitment = out["commitment"].as_array().unwrap();
    assert_eq!(commitment[0]["result"], "refused");
    assert_eq!(commitment[0]["refusal"]["check"], "fx_tool_guard");
    assert!(commitment[0]["refusal"]["reason"]
        .as_str()
        .unwrap()
        .contains("\"users\""));
    assert_eq!(commitment[1]["result"], "pass");
    let decisions = out["decisions"].as_array().unwrap();
    let redact = decisions
        .iter()
        .find(|d| d["decision"] == "redact")
        .unwrap();
    assert_eq!(
        (
            redact["check"].as_str(),
            redact["metadata"]["word_len"].as_u64()
        ),
        (Some("fx_redact"), Some(6))
    );
    // The RECORD hook saw what pre_request left in the per-request scratch map,
    // and the owner resolved by the built-in before it.
    let record = decisions.iter().find(|d| d["stage"] == "record").unwrap();
    assert_eq!(
        record["reason"],
        "record saw owner \"human:alice\" outcome completed"
    );

    // Two messages: the example plugin refuses, with its reason.
    let body =
        json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]});
    let out = dry_run(&cfg, work.path(), body, &[]);
    assert_eq!(out["admission"]["result"], "refused");
    assert_eq!(out["admission"]["refusal"]["check"], "cool_check");
    assert_eq!(out["http_status"], 403);
    assert!(out["admission"]["refusal"]["reason"]
        .as_str()
        .unwrap()
        .contains("2 messages"));
}

#[test]
fn a_panicking_hook_fails_closed_and_the_process_survives() {
    let plugins = plugins_dir(ALL);
    let work = tempfile::tempdir().unwrap();
    let cfg = write_config(
        work.path(),
        plugins.path(),
        "[[checks]]\nkind = \"fx_hook_panic\"\n",
    );
    let out = dry_run(&cfg, work.path(), json!({"messages": []}), &[]);
    assert_eq!(out["admission"]["result"], "refused");
    let reason = out["admission"]["refusal"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("check fx_hook_panic failed") && reason.contains("blew up in pre_request"),
        "{reason}"
    );

    // With on_error = "ignore" the same panic is recorded and the request goes on.
    let cfg = write_config(
        work.path(),
        plugins.path(),
        "[[checks]]\nkind = \"fx_hook_panic\"\non_error = \"ignore\"\n",
    );
    let out = dry_run(&cfg, work.path(), json!({"messages": []}), &[]);
    assert_eq!(out["admission"]["result"], "pass");
    assert!(out["decisions"][0]["error"]
        .as_str()
        .unwrap()
        .contains("panicked"));
}

#[test]
fn a_plugin_hook_past_its_timeout_fails_closed() {
    let plugins = plugins_dir(&["fx_good"]);
    let work = tempfile::tempdir().unwrap();
    let checks =
        "[[checks]]\nkind = \"fx_slow\"\ntimeout_ms = 100\n[checks.config]\nsleep_ms = 20000\n";
    let cfg = write_config(work.path(), plugins.path(), checks);
    let started = std::time::Instant::now();
    let out = dry_run(&cfg, work.path(), json!({"messages": []}), &[]);
    assert_eq!(out["admission"]["result"], "refused");
    assert!(out["admission"]["refusal"]["reason"]
        .as_str()
        .unwrap()
        .contains("timed out after 100 ms"));
    // The refusal does not wait for the hook (the blocking thread is abandoned);
    // the bound is generous for a shared machine.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "waited for the slow hook"
    );
}

#[test]
fn check_config_reports_constructor_panics_and_every_problem() {
    let plugins = plugins_dir(ALL);
    let work = tempfile::tempdir().unwrap();
    let checks = "[[checks]]\nkind = \"fx_ctor_panic\"\n\n[[checks]]\nkind = \"no_such_check\"\n\n[[checks]]\nkind = \"fx_slow\"\n\n[[checks]]\nkind = \"cool_check\"\n";
    let cfg = write_config(work.path(), plugins.path(), checks);
    let out = signet(&["check-config", &cfg], work.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "must exit 1, not crash: {out:?}"
    );
    let err = stderr(&out);
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(
        err.contains("fx_ctor_panic")
            && err.contains("panicked")
            && err.contains(&lib("fx_ctor_panic")),
        "{err}"
    );
    assert!(
        err.contains("unknown check kind \"no_such_check\"")
            && err.contains("available:")
            && err.contains("cool_check"),
        "{err}"
    );
    assert!(
        err.contains("fx_level_mismatch"),
        "failed libraries are named in the unknown-kind message: {err}"
    );
    assert!(err.contains("fx_slow: sleep_ms is required"), "{err}");
}

#[test]
fn check_config_prints_the_pipeline_in_execution_order() {
    let plugins = plugins_dir(&["cool_check", "fx_good"]);
    let work = tempfile::tempdir().unwrap();
    let checks = r#"
[[checks]]
kind = "fx_tool_guard"
[[checks]]
kind = "cool_check"
name = "late"
priority = 900
[[checks]]
kind = "cool_check"
name = "early"
priority = 5
mode = "audit"
[[checks]]
kind = "owner_resolution"
[[checks]]
kind = "fx_redact"
mode = "disabled"
"#;
    let cfg = write_config(work.path(), plugins.path(), checks);
    let out = signet(&["check-config", &cfg], work.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let order: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .get(3)
                .copied()
                .filter(|_| l.trim_start().starts_with(char::is_numeric))
        })
        .collect();
    assert_eq!(
        order,
        ["owner_resolution", "early", "late", "fx_tool_guard"],
        "{text}"
    );
    assert!(text.contains("audit"), "{text}");
    assert!(
        !text.contains("fx_redact "),
        "disabled checks are not loaded: {text}"
    );
}

#[test]
fn config_unknown_keys_are_startup_errors() {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("signet.toml");
    std::fs::write(&cfg, "[server]\nprot = 1\n").unwrap();
    let out = signet(&["check-config", cfg.to_str().unwrap()], work.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("prot"), "{}", stderr(&out));
}

#[test]
fn plugins_install_checks_then_copies() {
    let src = plugins_dir(&["cool_check", "fx_not_plugin"]);
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("plugins");
    let d = dest.to_str().unwrap();
    let good = src.path().join(lib("cool_check"));
    let out = signet(
        &[
            "plugins",
            "install",
            good.to_str().unwrap(),
            "--plugins-dir",
            d,
        ],
        work.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dest.join(lib("cool_check")).exists());
    let again = signet(
        &[
            "plugins",
            "install",
            good.to_str().unwrap(),
            "--plugins-dir",
            d,
        ],
        work.path(),
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));
    let bad = src.path().join(lib("fx_not_plugin"));
    let out = signet(
        &[
            "plugins",
            "install",
            bad.to_str().unwrap(),
            "--plugins-dir",
            d,
        ],
        work.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a signet plugin"),
        "{}",
        stderr(&out)
    );
    assert!(!dest.join(lib("fx_not_plugin")).exists());
    let list = json_out(&signet(
        &["plugins", "list", "--plugins-dir", d, "--json"],
        work.path(),
    ));
    assert_eq!(list["plugins"].as_array().unwrap().len(), 1);
}
