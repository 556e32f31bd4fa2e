//! Plugin libraries: discovery in the plugins directory, loading with
//! abi_stable's version and layout checks, registration of their checks beside
//! the built-ins, and the adapter that makes an FFI check object a host
//! [`Check`](crate::checks::Check).
//!
//! | file | owns |
//! |---|---|
//! | `discover.rs` | scanning a directory, loading each library, the per-library report |
//! | `adapter.rs` | calling plugin hooks (inline or on the blocking pool), verdict conversion |
//! | `install.rs` | `signet plugins install`: copying a library into the plugins directory |
//!
//! Libraries are never unloaded (abi_stable leaks them on purpose): a new
//! version of a plugin needs a restart of the gate.
mod adapter;
mod discover;
mod install;

pub use discover::{load_dir, CheckReport, LibraryReport, Status};
pub use install::{install, InstallError};

/// File suffix of loadable libraries on this platform (`so`, `dylib`, `dll`).
pub fn library_suffix() -> &'static str {
    std::env::consts::DLL_EXTENSION
}

/// Lower-case hex of a digest.
pub fn hex_digest(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}
