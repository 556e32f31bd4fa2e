//! `signet plugins list` and `signet plugins install`.
use std::path::PathBuf;

use clap::Subcommand;

use super::assemble::{load_config, load_registry, show_dir};
use super::ConfigArg;
use crate::plugins::{self, Status};

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginsCmd {
    /// One row per discovered library and check: name, version, stage, hooks,
    /// path, sha256 (short), api level, status (loaded / incompatible /
    /// load_error / duplicate) and the error text.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check that a built library loads as a signet plugin, then copy it into
    /// the plugins directory. A running gate picks it up on restart.
    Install {
        /// The library (`lib<name>.so` / `.dylib` / `.dll`) from `cargo build`.
        path: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(serde::Serialize)]
struct Row<'a> {
    check: Option<&'a str>,
    library: Option<&'a str>,
    version: Option<&'a str>,
    stage: Option<&'a str>,
    priority: Option<i32>,
    hooks: Vec<&'static str>,
    path: String,
    sha256: &'a str,
    api_level: Option<u32>,
    status: Status,
    error: Option<&'a str>,
    detail: Option<&'a str>,
}

pub(super) fn run(cmd: PluginsCmd) -> anyhow::Result<u8> {
    match cmd {
        PluginsCmd::List { config, json } => list(&config, json),
        PluginsCmd::Install { path, config } => {
            let cfg = load_config(&config)?;
            let dest = plugins::install(&path, &cfg.plugins_dir)?;
            println!("installed {} -> {}", path.display(), dest.display());
            println!("restart the gate to load it; `signet plugins list` shows it now");
            Ok(0)
        }
    }
}

fn list(config: &ConfigArg, json: bool) -> anyhow::Result<u8> {
    let cfg = load_config(config)?;
    let (registry, libraries) = load_registry(&cfg.plugins_dir)?;
    let mut rows = Vec::new();
    for lib in &libraries {
        if lib.checks.is_empty() {
            rows.push(Row {
                check: None,
                library: lib.library.as_deref(),
                version: lib.version.as_deref(),
                stage: None,
                priority: None,
                hooks: Vec::new(),
                path: lib.path.display().to_string(),
                sha256: &lib.sha256,
                api_level: lib.api_level,
                status: lib.status,
                error: lib.error.as_deref(),
                detail: lib.detail.as_deref(),
            });
        }
        for c in &lib.checks {
            rows.push(Row {
                check: Some(&c.name),
                library: lib.library.as_deref(),
                version: lib.version.as_deref(),
                stage: Some(c.stage),
                priority: Some(c.priority),
                hooks: c.hooks.clone(),
                path: lib.path.display().to_string(),
                sha256: &lib.sha256,
                api_level: lib.api_level,
                status: c.status,
                error: c.error.as_deref(),
                detail: None,
            });
        }
    }
    if json {
        let builtins: Vec<&str> = registry
            .all()
            .filter(|f| f.source == crate::checks::Source::Builtin)
            .map(|f| f.kind.as_str())
            .collect();
        let out = serde_json::json!({
            "plugins_dir": show_dir(&cfg.plugins_dir).display().to_string(),
            "host_api_level": signet_plugin_api::PLUGIN_API_LEVEL,
            "builtins": builtins,
            "plugins": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!(
        "plugins directory: {}",
        show_dir(&cfg.plugins_dir).display()
    );
    if rows.is_empty() {
        println!(
            "no plugin libraries (*.{}) found",
            plugins::library_suffix()
        );
        return Ok(0);
    }
    println!(
        "{:<22} {:<10} {:<11} {:<40} {:<13} {:>3}  {:<12} path / error",
        "check", "version", "stage", "hooks", "sha256", "api", "status"
    );
    for r in &rows {
        let status = serde_json::to_value(r.status)?
            .as_str()
            .unwrap_or("?")
            .to_string();
        println!(
            "{:<22} {:<10} {:<11} {:<40} {:<13} {:>3}  {:<12} {}",
            r.check.unwrap_or("-"),
            r.version.unwrap_or("-"),
            r.stage.unwrap_or("-"),
            if r.hooks.is_empty() {
                "-".to_string()
            } else {
                r.hooks.join(",")
            },
            r.sha256.get(..12).unwrap_or(r.sha256),
            r.api_level
                .map(|l| l.to_string())
                .unwrap_or_else(|| "-".into()),
            status,
            r.path,
        );
        if let Some(e) = r.error {
            println!("{:>24}error: {e}", "");
        }
    }
    Ok(0)
}
