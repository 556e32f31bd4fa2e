//! Shared helpers for the end-to-end tests: where the built `signet` binary and
//! plugin libraries are, temporary plugin directories, running the binary.
//!
//! The tests use artifacts built beforehand by `.ci/run` (`cargo build
//! --workspace` and the out-of-tree example); a missing artifact fails the test
//! with the command that builds it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support code
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `target/debug` (honours `CARGO_TARGET_DIR`).
pub fn target_debug() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        workspace_root().join(target)
    };
    target.join("debug")
}

/// The built `signet` binary.
pub fn signet_bin() -> PathBuf {
    let p = target_debug().join(format!("signet{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` first (as .ci/run does)",
        p.display()
    );
    p
}

/// The built cdylib of crate `name`.
pub fn cdylib(name: &str) -> PathBuf {
    let file = format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let p = target_debug().join(file);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` and `CARGO_TARGET_DIR=target cargo build --manifest-path examples/cool_check/Cargo.toml` first (as .ci/run does)",
        p.display()
    );
    p
}

/// A temporary plugins directory holding copies of these crates' libraries.
pub fn plugins_dir(crates: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for c in crates {
        let src = cdylib(c);
        std::fs::copy(&src, dir.path().join(src.file_name().unwrap())).unwrap();
    }
    dir
}

/// Run `signet` with `args` in `cwd`.
pub fn signet(args: &[&str], cwd: &Path) -> Output {
    Command::new(signet_bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("signet runs")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parse stdout as JSON, with the outputs in the panic message when it is not.
pub fn json_out(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", stdout(o), stderr(o)))
}
