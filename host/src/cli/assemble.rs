//! Wiring: config file → registry (built-ins + plugin libraries) → pipeline.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

use super::ConfigArg;
use crate::checks::{Registry, Request};
use crate::config::{self, CheckMode, Config, ErrorPolicy};
use crate::pipeline::{CheckInstance, Decided, DecisionSink, Mode, OnError, Pipeline};
use crate::plugins::{self, LibraryReport};
use crate::state::{RedisSettings, RedisState};

/// Load the config named by `arg` (or `./signet.toml`, or the default), with
/// the plugins-dir override applied.
pub fn load_config(arg: &ConfigArg) -> anyhow::Result<Config> {
    let mut cfg = match &arg.config {
        Some(p) => config::load(p)?,
        None if Path::new("signet.toml").exists() => config::load(Path::new("signet.toml"))?,
        None => config::default_config()?,
    };
    if let Some(dir) = &arg.plugins_dir {
        cfg.plugins_dir = dir.clone();
    }
    Ok(cfg)
}

/// The built-ins plus every check of every loadable library in `dir`.
pub fn load_registry(dir: &Path) -> anyhow::Result<(Registry, Vec<LibraryReport>)> {
    let mut registry = Registry::with_builtins();
    let reports = plugins::load_dir(dir, &mut registry)
        .with_context(|| format!("cannot read plugins directory {}", dir.display()))?;
    Ok((registry, reports))
}

fn mode(m: CheckMode, shadow: bool) -> Mode {
    match m {
        CheckMode::Disabled => Mode::Disabled,
        _ if shadow => Mode::Audit,
        CheckMode::Enforce => Mode::Enforce,
        CheckMode::Transform => Mode::Transform,
        CheckMode::Audit => Mode::Audit,
        CheckMode::FireAndForget => Mode::FireAndForget,
    }
}

fn on_error(p: ErrorPolicy) -> OnError {
    match p {
        ErrorPolicy::Fail => OnError::Fail,
        ErrorPolicy::Ignore => OnError::Ignore,
        ErrorPolicy::Disable => OnError::Disable,
    }
}

/// Build every configured check; `Err` lists every problem (unknown kinds with
/// what is available, constructor errors naming the check and library).
pub fn build_pipeline(
    cfg: &Config,
    registry: &Registry,
    libraries: &[LibraryReport],
    sink: Arc<dyn DecisionSink>,
) -> Result<Pipeline, Vec<String>> {
    let mut problems = Vec::new();
    let mut instances = Vec::new();
    for spec in &cfg.checks {
        if spec.mode == CheckMode::Disabled {
            continue;
        }
        let Some(factory) = registry.get(&spec.kind) else {
            let failed: Vec<String> = libraries
                .iter()
                .filter(|l| l.status != plugins::Status::Loaded)
                .map(|l| {
                    format!(
                        "{} ({})",
                        l.path.display(),
                        l.error.as_deref().unwrap_or("not loaded")
                    )
                })
                .collect();
            let mut msg = format!(
                "[[checks]] {}: unknown check kind {:?}; available: {}",
                spec.name,
                spec.kind,
                registry.kind_list()
            );
            if !failed.is_empty() {
                msg.push_str(&format!(
                    "; libraries that failed to load: {}",
                    failed.join(", ")
                ));
            }
            problems.push(msg);
            continue;
        };
        match (factory.build)(&spec.config) {
            Ok(check) => instances.push(CheckInstance::new(
                spec.name.clone(),
                spec.kind.clone(),
                factory.source.clone(),
                check,
                factory.stage,
                spec.priority.unwrap_or(factory.priority),
                spec.order,
                mode(spec.mode, cfg.server.shadow),
                on_error(spec.on_error),
                Duration::from_millis(spec.timeout_ms),
            )),
            Err(e) => problems.push(format!(
                "[[checks]] {} (kind {}, {}): {e}",
                spec.name, spec.kind, factory.source
            )),
        }
    }
    if problems.is_empty() {
        Ok(Pipeline::new(instances, sink))
    } else {
        Err(problems)
    }
}

/// The Redis state backend `[state]` asks for (`None`: the memory backend).
/// Never connects: the connection is made on first use.
pub(super) fn redis_backend(cfg: &Config) -> anyhow::Result<Option<Arc<RedisState>>> {
    if cfg.state.backend != config::StateBackend::Redis {
        return Ok(None);
    }
    let settings = RedisSettings {
        url: cfg.state.url.clone(),
        key_prefix: cfg.state.key_prefix.clone(),
        timeout: Duration::from_millis(cfg.state.timeout_ms),
    };
    let r = RedisState::new(&settings).map_err(|e| anyhow::anyhow!("[state] {e}"))?;
    Ok(Some(Arc::new(r)))
}

/// A sink that keeps background decisions in memory (dry runs, tests).
#[derive(Default)]
pub struct CollectingSink(pub Mutex<Vec<Decided>>);

impl DecisionSink for CollectingSink {
    fn record(&self, _req: &Request, decided: Decided) {
        if let Ok(mut v) = self.0.lock() {
            v.push(decided);
        }
    }
}

/// Display path of the config source.
pub(super) fn origin(cfg: &Config) -> String {
    cfg.source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<built-in secure default>".into())
}

/// Absolute-ish display of a directory.
pub(super) fn show_dir(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
