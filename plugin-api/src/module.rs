//! The root module a plugin library exports, and what it says about its checks.
use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use abi_stable::{package_version_strings, StableAbi};

use crate::ffi::FfiCheckBox;

/// The four stages of a request, in execution order. A check's stage is its
/// primary hook, used for ordering; it may implement other hooks too.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Before the model sees the request (`pre_request`).
    Admission,
    /// On every response chunk before the caller sees it (`inspect_response_chunk`).
    Inspection,
    /// On every tool call before the caller can execute it (`inspect_tool_call`).
    Commitment,
    /// When the request ends, on every path (`post_complete`).
    Record,
}

impl Stage {
    /// Lower-case name as used in config, audit rows and HTTP bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Admission => "admission",
            Stage::Inspection => "inspection",
            Stage::Commitment => "commitment",
            Stage::Record => "record",
        }
    }
}

/// A set of hooks, as bit flags.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hooks(pub u32);

impl Hooks {
    /// No hook.
    pub const NONE: Hooks = Hooks(0);
    /// `pre_request` (ADMISSION).
    pub const PRE_REQUEST: Hooks = Hooks(1);
    /// `inspect_response_chunk` (INSPECTION).
    pub const INSPECT_RESPONSE_CHUNK: Hooks = Hooks(2);
    /// `inspect_tool_call` (COMMITMENT).
    pub const INSPECT_TOOL_CALL: Hooks = Hooks(4);
    /// `post_complete` (RECORD).
    pub const POST_COMPLETE: Hooks = Hooks(8);
    /// Every hook this API level knows.
    pub const ALL: Hooks = Hooks(15);

    /// Union of two sets (usable in consts).
    pub const fn with(self, other: Hooks) -> Hooks {
        Hooks(self.0 | other.0)
    }

    /// True when every hook of `other` is in `self`.
    pub const fn contains(self, other: Hooks) -> bool {
        self.0 & other.0 == other.0
    }

    /// The hook that belongs to a stage.
    pub const fn of_stage(stage: Stage) -> Hooks {
        match stage {
            Stage::Admission => Hooks::PRE_REQUEST,
            Stage::Inspection => Hooks::INSPECT_RESPONSE_CHUNK,
            Stage::Commitment => Hooks::INSPECT_TOOL_CALL,
            Stage::Record => Hooks::POST_COMPLETE,
        }
    }

    /// Hook names, for listings.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Hooks::PRE_REQUEST, "pre_request"),
            (Hooks::INSPECT_RESPONSE_CHUNK, "inspect_response_chunk"),
            (Hooks::INSPECT_TOOL_CALL, "inspect_tool_call"),
            (Hooks::POST_COMPLETE, "post_complete"),
        ]
        .into_iter()
        .filter(|(h, _)| self.contains(*h))
        .map(|(_, n)| n)
        .collect()
    }
}

/// What a library says about one check it exports.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct CheckDescriptor {
    /// The check kind, as written in `kind = "…"` in `signet.toml`.
    pub name: RString,
    /// One line for listings.
    pub description: RString,
    /// Primary stage, used for ordering.
    pub stage: Stage,
    /// Default priority within the stage (lower runs first); config may override.
    pub priority: i32,
    /// Hooks the check implements; the host calls no others.
    pub hooks: Hooks,
    /// Hooks declared cheap and non-blocking: called inline on the gate's async
    /// reactor instead of on the blocking pool. Declare only hooks that do no
    /// I/O and bounded CPU work.
    pub inline_hooks: Hooks,
}

/// The root module every signet plugin library exports (via [`crate::export_plugin!`]).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(option))]
pub struct PluginMod {
    /// [`crate::PLUGIN_API_LEVEL`] the library was built against.
    pub api_level: u32,
    /// The library's crate name.
    pub library_name: RStr<'static>,
    /// The library's crate version.
    pub library_version: RStr<'static>,
    /// Describe every check the library exports.
    pub checks: extern "C" fn() -> RResult<RVec<CheckDescriptor>, RString>,
    /// Build check `name` from its `[checks.config]` table given as JSON text.
    /// An error (or a caught panic) comes back as `RErr` with the reason.
    #[sabi(last_prefix_field)]
    pub new_check:
        extern "C" fn(name: RStr<'_>, config_json: RStr<'_>) -> RResult<FfiCheckBox, RString>,
}

impl RootModule for PluginModRef {
    abi_stable::declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "signet_plugin";
    const NAME: &'static str = "signet_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
