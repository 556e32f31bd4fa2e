//! Check kinds by name: the built-ins, plus every check a loaded plugin
//! library exports. A name can be registered once; a second claim is refused.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Check, Hooks, Stage};

/// Where a check kind comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Compiled into the gate.
    Builtin,
    /// Exported by a plugin library.
    Plugin {
        /// The library file.
        path: PathBuf,
        /// Its crate name and version.
        library: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Builtin => f.write_str("built-in"),
            Source::Plugin { path, library } => write!(f, "plugin {library} ({})", path.display()),
        }
    }
}

/// Builds a check from its `[checks.config]` (as JSON), or says what is wrong.
pub type BuildFn = Arc<dyn Fn(&serde_json::Value) -> Result<Arc<dyn Check>, String> + Send + Sync>;

/// A registered check kind.
#[derive(Clone)]
pub struct Factory {
    /// The kind name.
    pub kind: String,
    /// Where it comes from.
    pub source: Source,
    /// Primary stage.
    pub stage: Stage,
    /// Default priority.
    pub priority: i32,
    /// Hooks it implements.
    pub hooks: Hooks,
    /// One line for listings.
    pub description: String,
    /// Constructor.
    pub build: BuildFn,
}

/// Registration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is taken.
    #[error("check name {kind:?} is already provided by {existing}")]
    Duplicate {
        /// The contested name.
        kind: String,
        /// Who had it first.
        existing: String,
    },
}

/// Kind → factory.
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl Registry {
    /// A registry holding the built-in checks.
    pub fn with_builtins() -> Self {
        let mut r = Registry::default();
        for f in super::builtin_factories() {
            // Built-in names are distinct by construction.
            let _ = r.register(f);
        }
        r
    }

    /// Add a kind; refused if the name is taken.
    pub fn register(&mut self, f: Factory) -> Result<(), RegistryError> {
        if let Some(existing) = self.factories.get(&f.kind) {
            return Err(RegistryError::Duplicate {
                kind: f.kind,
                existing: existing.source.to_string(),
            });
        }
        self.factories.insert(f.kind.clone(), f);
        Ok(())
    }

    /// Look up a kind.
    pub fn get(&self, kind: &str) -> Option<&Factory> {
        self.factories.get(kind)
    }

    /// Every kind, sorted by name.
    pub fn all(&self) -> impl Iterator<Item = &Factory> {
        self.factories.values()
    }

    /// Comma-separated kind names, for error messages.
    pub fn kind_list(&self) -> String {
        self.factories
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}
