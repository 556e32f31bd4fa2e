//! Drop-in: the official `openai` and `anthropic` Python SDKs (in the venv made
//! by `.ci/setup-venv.sh`) work through the gate with only the base URL and
//! one header changed: unary, streaming, refusal → PermissionDeniedError,
//! mid-stream abort → APIError, tool calls. The cases are in tests/sdk/dropin.py.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
use std::path::PathBuf;
use std::process::Command;

use signet_e2e::proc::{demo_upstream, Gate};
use signet_e2e::{plugins_dir, workspace_root};

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("SIGNET_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run .ci/setup-venv.sh (as .ci/run does)",
        py.display()
    );
    py
}

#[test]
fn official_sdks_work_through_the_gate() {
    let python = venv_python();
    let plugins = plugins_dir(&["fx_good"]);
    let demo = demo_upstream(plugins.path());
    let config = format!(
        "[plugins]\ndir = {:?}\n[[checks]]\nkind = \"owner_resolution\"\n[[checks]]\nkind = \"fx_marker\"\n[[checks]]\nkind = \"fx_tool_guard\"\n",
        plugins.path().to_str().unwrap()
    );
    let gate = Gate::start(&config, &demo.url, &[]);
    let script = workspace_root().join("tests/sdk/dropin.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&demo.url)
        .arg(gate.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK drop-in cases failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("10 passed, 0 failed"), "{stdout}");
    let (code, report) = gate.verify();
    assert_eq!(code, Some(0), "{report}");
}
