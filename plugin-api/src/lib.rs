//! `signet-plugin-api`: the stable-ABI contract between the signet gate and the
//! check plugins it loads from its `plugins/` directory at startup.
//!
//! A plugin author writes a plain Rust type implementing [`Check`] and exports
//! it with [`export_plugin!`]; the crate is built as a `cdylib` and the library
//! dropped into the gate's plugins directory. Nothing here needs `unsafe` from
//! the author.
//!
//! | module | what it holds |
//! |---|---|
//! | [`views`] | borrowed, FFI-safe views of the request, the response so far, a tool call, the finished request |
//! | [`verdict`] | the decision a hook returns: allow / block (policy or quota) / redact / escalate |
//! | [`module`] | the root module a library exports, check descriptors, stages, hook sets |
//! | [`ffi`] | the `#[sabi_trait]` check object the host calls across the boundary |
//! | [`author`] | the plain-Rust [`Check`] trait and the panic-catching adapter |
//! | [`testing`] | a small fake host for plugin unit tests |
//!
//! # Growth points (how the API evolves without breaking old plugins)
//! * **New hooks** are appended to [`ffi::FfiCheck`] after its
//!   `#[sabi(last_prefix_field)]` method, with a default body: a host calling
//!   the new hook on an old plugin gets the default (allow) instead of a crash.
//! * **New root-module entries** are appended to [`module::PluginMod`] after its
//!   `last_prefix_field`; the host reads them as `Option`s (`missing_field(option)`),
//!   so an old library simply lacks them.
//! * **New verdict kinds** extend [`verdict::VerdictKind`], a non-exhaustive enum
//!   stored inline with room to spare; a host that meets a kind it does not know
//!   treats it as an error of the check (fail closed).
//! * **Layout changes** to a view are caught by abi_stable's layout check when the
//!   library is loaded: the host reports the library as `incompatible` instead of
//!   calling it. They come with a minor-version bump of this crate (0.x), which
//!   abi_stable also checks.
//! * **Meaning changes** that a layout check cannot see bump [`PLUGIN_API_LEVEL`];
//!   the host refuses libraries built for a level it does not speak.
#![allow(non_local_definitions)] // emitted by abi_stable's derive macros

pub mod author;
mod export;
pub mod ffi;
pub mod module;
pub mod testing;
pub mod verdict;
pub mod views;

pub use abi_stable;
pub use serde_json;

pub use author::{Check, CheckEntry, HookResult};
pub use ffi::{FfiCheck, FfiCheckBox, FfiCheck_TO};
pub use module::{CheckDescriptor, Hooks, PluginMod, PluginModRef, Stage};
pub use verdict::{BlockClass, Verdict, VerdictKind, VerdictKind_NE};
pub use views::{CompletionView, Header, RequestView, ResponseView, Scratch, ToolCallView, Usage};

/// The meaning-level of this API. Bumped when the semantics of an existing hook,
/// view field or verdict change in a way abi_stable's layout check cannot see.
/// The host refuses a library whose level differs from its own.
pub const PLUGIN_API_LEVEL: u32 = 1;
