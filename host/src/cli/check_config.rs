//! `signet check-config [PATH]`.
use std::path::PathBuf;
use std::sync::Arc;

use super::assemble::{
    build_pipeline, load_config, load_registry, origin, show_dir, CollectingSink,
};
use super::ConfigArg;
use crate::checks::Hooks;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file to check (default: ./signet.toml if present, else the built-in default).
    path: Option<PathBuf>,
    /// Plugins directory (overrides `[plugins] dir`).
    #[arg(long, env = "SIGNET_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
}

pub(super) fn run(a: Args) -> anyhow::Result<u8> {
    let cfg = match load_config(&ConfigArg {
        config: a.path,
        plugins_dir: a.plugins_dir,
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("config is invalid:\n  {e:#}");
            return Ok(1);
        }
    };
    let (registry, libraries) = load_registry(&cfg.plugins_dir)?;
    let pipeline = match build_pipeline(
        &cfg,
        &registry,
        &libraries,
        Arc::new(CollectingSink::default()),
    ) {
        Ok(p) => p,
        Err(problems) => {
            eprintln!("config {} has {} problem(s):", origin(&cfg), problems.len());
            for p in problems {
                eprintln!("  - {p}");
            }
            return Ok(1);
        }
    };
    println!("config: {}", origin(&cfg));
    let loaded = libraries
        .iter()
        .filter(|l| l.status == crate::plugins::Status::Loaded)
        .count();
    println!(
        "plugins: {} ({} of {} libraries loaded)",
        show_dir(&cfg.plugins_dir).display(),
        loaded,
        libraries.len()
    );
    for l in libraries
        .iter()
        .filter(|l| l.status != crate::plugins::Status::Loaded)
    {
        println!(
            "  warning: {} not loaded: {}",
            l.path.display(),
            l.error.as_deref().unwrap_or("?")
        );
    }
    match cfg.state.backend {
        crate::config::StateBackend::Memory => println!("state: memory (this process only)"),
        crate::config::StateBackend::Redis => println!(
            "state: redis (prefix {:?}, timeout {} ms; not contacted by check-config, `signet doctor` does)",
            cfg.state.key_prefix, cfg.state.timeout_ms
        ),
    }
    if cfg.server.shadow {
        println!("shadow: on (every check runs in audit mode)");
    }
    println!("pipeline (execution order):");
    println!(
        "  {:<3} {:<11} {:>5}  {:<22} {:<22} {:<16} {:<8} {:>7}  hooks",
        "#", "stage", "prio", "name", "kind", "mode", "on_error", "timeout"
    );
    for (i, c) in pipeline.checks().iter().enumerate() {
        let hooks: Vec<&str> = c.hooks.names();
        println!(
            "  {:<3} {:<11} {:>5}  {:<22} {:<22} {:<16} {:<8} {:>5}ms  {}{}",
            i + 1,
            c.stage.as_str(),
            c.priority,
            c.name,
            c.kind,
            c.mode.as_str(),
            format!("{:?}", c.on_error).to_lowercase(),
            c.timeout.as_millis(),
            hooks.join(","),
            if matches!(c.source, crate::checks::Source::Builtin) {
                String::new()
            } else {
                format!("  [{}]", c.source)
            },
        );
    }
    if pipeline
        .checks()
        .iter()
        .all(|c| !c.hooks.contains(Hooks::PRE_REQUEST))
    {
        println!("  warning: no ADMISSION check: every request is forwarded unchecked");
    }
    Ok(0)
}
