//! `signet plugins install PATH`: copy a built library into the plugins
//! directory, after checking that it loads as a signet plugin.
use std::path::{Path, PathBuf};

use crate::checks::Registry;

/// Installing a library failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The file is not a library for this platform.
    #[error(
        "{path}: not a .{suffix} library; build the plugin crate with crate-type = [\"cdylib\"]"
    )]
    WrongSuffix {
        /// The file.
        path: PathBuf,
        /// The platform suffix.
        suffix: &'static str,
    },
    /// The library does not load as a signet plugin.
    #[error("{path}: {reason}")]
    NotLoadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A library with that file name is already installed.
    #[error("{0} already exists; remove it first (a running gate keeps using the loaded copy until restart)")]
    Exists(PathBuf),
    /// Copying failed.
    #[error("copying to {path}: {source}")]
    Io {
        /// Destination.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Check `lib` loads as a signet plugin, then copy it into `dir` (created if
/// missing). Returns the destination path.
pub fn install(lib: &Path, dir: &Path) -> Result<PathBuf, InstallError> {
    if lib.extension().and_then(|e| e.to_str()) != Some(super::library_suffix()) {
        return Err(InstallError::WrongSuffix {
            path: lib.to_path_buf(),
            suffix: super::library_suffix(),
        });
    }
    let staging = tempfile_dir(lib)?;
    let mut probe = Registry::default();
    let reports = super::load_dir(&staging.0, &mut probe).map_err(|e| InstallError::Io {
        path: staging.0.clone(),
        source: e,
    })?;
    let report = reports.first().ok_or_else(|| InstallError::NotLoadable {
        path: lib.to_path_buf(),
        reason: "could not be read".into(),
    })?;
    if report.status != super::Status::Loaded {
        return Err(InstallError::NotLoadable {
            path: lib.to_path_buf(),
            reason: report
                .error
                .clone()
                .unwrap_or_else(|| "does not load".into()),
        });
    }
    let name = lib.file_name().unwrap_or_default();
    let dest = dir.join(name);
    if dest.exists() {
        return Err(InstallError::Exists(dest));
    }
    std::fs::create_dir_all(dir).map_err(|e| InstallError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let tmp = dir.join(format!(".{}.installing", name.to_string_lossy()));
    std::fs::copy(lib, &tmp).map_err(|e| InstallError::Io {
        path: tmp.clone(),
        source: e,
    })?;
    std::fs::rename(&tmp, &dest).map_err(|e| InstallError::Io {
        path: dest.clone(),
        source: e,
    })?;
    Ok(dest)
}

/// A private copy of the library in its own directory, so the probe load does
/// not pin the user's file (loaded libraries stay mapped for the process).
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir(lib: &Path) -> Result<Staging, InstallError> {
    let dir = std::env::temp_dir().join(format!("signet-install-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| InstallError::Io {
        path: dir.clone(),
        source: e,
    })?;
    let staging = Staging(dir);
    let dest = staging.0.join(lib.file_name().unwrap_or_default());
    std::fs::copy(lib, &dest).map_err(|e| InstallError::Io {
        path: dest,
        source: e,
    })?;
    Ok(staging)
}
