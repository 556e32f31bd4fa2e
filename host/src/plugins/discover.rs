//! Scanning the plugins directory and loading every library in it. One bad
//! file never stops the others: each failure is reported with its path and
//! reason, and the gate goes on.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::{RResult, RStr};
use sha2::{Digest, Sha256};
use signet_plugin_api::{PluginModRef, PLUGIN_API_LEVEL};

use super::adapter::{host_hooks, host_stage, PluginCheck};
use crate::checks::{Check, Factory, Registry, Source};

/// Load status of a library or a check (CONTRACT §1 `plugins list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Loaded and registered.
    Loaded,
    /// A signet plugin built against an incompatible plugin-api (version, layout or api level).
    Incompatible,
    /// Not loadable as a signet plugin at all.
    LoadError,
    /// Its check name is already taken (by a built-in or an earlier library).
    Duplicate,
}

/// One check exported by a library.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    /// Check kind.
    pub name: String,
    /// Primary stage.
    pub stage: &'static str,
    /// Default priority.
    pub priority: i32,
    /// Implemented hooks.
    pub hooks: Vec<&'static str>,
    /// Hooks called inline (declared cheap by the plugin).
    pub inline_hooks: Vec<&'static str>,
    /// One line of description.
    pub description: String,
    /// Registration status.
    pub status: Status,
    /// Why not loaded.
    pub error: Option<String>,
}

/// One library file found in the plugins directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LibraryReport {
    /// The file.
    pub path: PathBuf,
    /// sha256 of the file, hex.
    pub sha256: String,
    /// Crate name the library declares.
    pub library: Option<String>,
    /// Crate version the library declares.
    pub version: Option<String>,
    /// Plugin API level it was built for.
    pub api_level: Option<u32>,
    /// Library status (`loaded` when at least the library itself loaded).
    pub status: Status,
    /// Why not loaded (one line).
    pub error: Option<String>,
    /// The loader's full explanation, when longer than the one line (e.g.
    /// abi_stable's layout comparison).
    pub detail: Option<String>,
    /// Its checks.
    pub checks: Vec<CheckReport>,
}

/// Scan `dir` (sorted, platform suffix only), load every library, and register
/// the checks of those that load into `registry`. A missing directory yields
/// an empty list; an unreadable one is an error.
pub fn load_dir(dir: &Path, registry: &mut Registry) -> std::io::Result<Vec<LibraryReport>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && p.extension().and_then(|e| e.to_str()) == Some(super::library_suffix())
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|p| load_one(p, registry)).collect())
}

/// The last `marker` section of a long loader message, whitespace collapsed.
fn summary(text: &str, marker: &str) -> String {
    let tail = text.rsplit(marker).next().unwrap_or(text);
    let words: Vec<&str> = tail.split_whitespace().collect();
    let mut s = words.join(" ");
    if s.len() > 240 {
        let cut = (0..=240)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn classify(e: &LibraryError) -> (Status, String) {
    match e {
        LibraryError::OpenError { .. } => {
            (Status::LoadError, format!("cannot be opened as a shared library: {}", summary(&e.to_string(), "because:")))
        }
        LibraryError::GetSymbolError { .. } => (
            Status::LoadError,
            "not a signet plugin: it exports no abi_stable root module (build it with signet_plugin_api::export_plugin!)"
                .to_string(),
        ),
        LibraryError::AbiInstability(_) => (
            Status::Incompatible,
            format!(
                "its root module layout does not match this gate's signet-plugin-api {} (built against an incompatible version; rebuild it): {}",
                env!("CARGO_PKG_VERSION"),
                summary(&e.to_string(), "Error:")
            ),
        ),
        LibraryError::IncompatibleVersionNumber { .. }
        | LibraryError::InvalidAbiHeader(_)
        | LibraryError::InvalidCAbi { .. } => (
            Status::Incompatible,
            format!("built against an incompatible signet-plugin-api or abi_stable; rebuild it against signet-plugin-api {}: {e}", env!("CARGO_PKG_VERSION")),
        ),
        other => (Status::LoadError, other.to_string()),
    }
}

fn sha256_file(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => super::hex_digest(&Sha256::digest(&bytes)),
        Err(e) => format!("unreadable: {e}"),
    }
}

fn load_one(path: PathBuf, registry: &mut Registry) -> LibraryReport {
    let mut report = LibraryReport {
        sha256: sha256_file(&path),
        path,
        library: None,
        version: None,
        api_level: None,
        status: Status::LoadError,
        error: None,
        detail: None,
        checks: Vec::new(),
    };
    let module = match lib_header_from_path(&report.path)
        .and_then(|h| h.init_root_module::<PluginModRef>())
    {
        Ok(m) => m,
        Err(e) => {
            let (status, msg) = classify(&e);
            report.status = status;
            report.error = Some(msg);
            let full = e.to_string();
            if full.len() > 240 {
                report.detail = Some(full);
            }
            return report;
        }
    };
    report.library = Some(module.library_name().to_string());
    report.version = Some(module.library_version().to_string());
    report.api_level = Some(module.api_level());
    if module.api_level() != PLUGIN_API_LEVEL {
        report.status = Status::Incompatible;
        report.error = Some(format!(
            "built for plugin API level {}, this gate speaks level {PLUGIN_API_LEVEL}; rebuild it against signet-plugin-api {}",
            module.api_level(),
            env!("CARGO_PKG_VERSION")
        ));
        return report;
    }
    let descriptors = match (module.checks())() {
        RResult::ROk(d) => d,
        RResult::RErr(e) => {
            report.error = Some(format!("listing its checks failed: {e}"));
            return report;
        }
    };
    report.status = Status::Loaded;
    let library = format!("{} {}", module.library_name(), module.library_version());
    for d in descriptors {
        let (stage, hooks, inline) = (
            host_stage(d.stage),
            host_hooks(d.hooks),
            host_hooks(d.inline_hooks),
        );
        let mut row = CheckReport {
            name: d.name.to_string(),
            stage: stage.as_str(),
            priority: d.priority,
            hooks: hooks.names(),
            inline_hooks: inline.names(),
            description: d.description.to_string(),
            status: Status::Loaded,
            error: None,
        };
        let factory = plugin_factory(
            module,
            &d.name,
            &report.path,
            &library,
            stage,
            d.priority,
            hooks,
            inline,
        );
        let factory = Factory {
            description: row.description.clone(),
            ..factory
        };
        if let Err(e) = registry.register(factory) {
            row.status = Status::Duplicate;
            row.error = Some(e.to_string());
        }
        report.checks.push(row);
    }
    if !report.checks.is_empty() && report.checks.iter().all(|c| c.status == Status::Duplicate) {
        report.status = Status::Duplicate;
        report.error = Some("every check it exports is already provided elsewhere".into());
    }
    report
}

#[allow(clippy::too_many_arguments)]
fn plugin_factory(
    module: PluginModRef,
    name: &str,
    path: &Path,
    library: &str,
    stage: crate::checks::Stage,
    priority: i32,
    hooks: crate::checks::Hooks,
    inline: crate::checks::Hooks,
) -> Factory {
    let kind = name.to_string();
    let (kind2, path2) = (kind.clone(), path.to_path_buf());
    Factory {
        kind,
        source: Source::Plugin {
            path: path.to_path_buf(),
            library: library.to_string(),
        },
        stage,
        priority,
        hooks,
        description: String::new(),
        build: Arc::new(move |cfg: &serde_json::Value| {
            let json = cfg.to_string();
            match (module.new_check())(RStr::from_str(&kind2), RStr::from_str(&json)) {
                RResult::ROk(obj) => {
                    Ok(Arc::new(PluginCheck::new(obj, hooks, inline)) as Arc<dyn Check>)
                }
                RResult::RErr(e) => Err(format!("{} ({}): {e}", kind2, path2.display())),
            }
        }),
    }
}
