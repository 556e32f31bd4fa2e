//! The plain-Rust side a plugin author writes against, and the adapter that
//! turns it into an FFI check object with every call guarded against panics.
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString, RVec};

use crate::ffi::{FfiCheck, FfiCheckBox, FfiCheck_TO};
use crate::module::{CheckDescriptor, Hooks, Stage};
use crate::verdict::Verdict;
use crate::views::{CompletionView, RequestView, ResponseView, Scratch, ToolCallView};

/// What a hook returns: a verdict, or an error text (handled by the host per the
/// check's `on_error` policy; fail closed by default).
pub type HookResult = Result<Verdict, String>;

/// A signet check, written as plain Rust. Implement the hooks you need (each
/// defaults to allow), list them in [`Check::HOOKS`], and export the type with
/// [`crate::export_plugin!`].
pub trait Check: Send + Sync + Sized + 'static {
    /// The check kind used in `signet.toml` (`kind = "…"`). Must be unique
    /// across every loaded library and the built-in checks.
    const NAME: &'static str;
    /// Primary stage, used for ordering.
    const STAGE: Stage;
    /// Default priority within the stage (lower runs first).
    const PRIORITY: i32 = 500;
    /// The hooks this check implements; the host calls no others.
    const HOOKS: Hooks;
    /// Hooks that are cheap and never block (no I/O), to be called inline on the
    /// gate's reactor. Default: none — every hook runs on the blocking pool.
    const INLINE_HOOKS: Hooks = Hooks::NONE;
    /// One line for `signet plugins list`.
    const DESCRIPTION: &'static str = "";

    /// Build the check from its `[checks.config]` table (as JSON; `{}` when the
    /// table is absent). Called once at startup. Return an error that names the
    /// offending key and how to fix it.
    fn new(config: &serde_json::Value) -> Result<Self, String>;

    /// ADMISSION, once per request before it is forwarded. Default: allow.
    fn pre_request(&self, _req: &RequestView<'_>, _scratch: &mut Scratch) -> HookResult {
        Ok(Verdict::allow())
    }

    /// INSPECTION, per response chunk before the caller sees it. Default: allow.
    fn inspect_response_chunk(
        &self,
        _req: &RequestView<'_>,
        _resp: &ResponseView<'_>,
        _scratch: &mut Scratch,
    ) -> HookResult {
        Ok(Verdict::allow())
    }

    /// COMMITMENT, per complete tool call before the caller sees it. Default: allow.
    fn inspect_tool_call(
        &self,
        _req: &RequestView<'_>,
        _call: &ToolCallView<'_>,
        _scratch: &mut Scratch,
    ) -> HookResult {
        Ok(Verdict::allow())
    }

    /// RECORD, once when the request ends, on every path. A non-allow verdict is
    /// recorded as a finding; it cannot change the response. Default: allow.
    fn post_complete(
        &self,
        _req: &RequestView<'_>,
        _done: &CompletionView<'_>,
        _scratch: &mut Scratch,
    ) -> HookResult {
        Ok(Verdict::allow())
    }
}

/// The text of a caught panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn guard(name: &str, f: impl FnOnce() -> HookResult) -> RResult<Verdict, RString> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(p) => {
            RResult::RErr(format!("check {name} panicked: {}", panic_message(p.as_ref())).into())
        }
    }
}

/// Wraps an author's check; every hook call is run under `catch_unwind`.
struct Guarded<C>(C);

impl<C: Check> FfiCheck for Guarded<C> {
    fn pre_request(
        &self,
        req: &RequestView<'_>,
        scratch: &mut Scratch,
    ) -> RResult<Verdict, RString> {
        guard(C::NAME, || self.0.pre_request(req, scratch))
    }
    fn inspect_response_chunk(
        &self,
        req: &RequestView<'_>,
        resp: &ResponseView<'_>,
        scratch: &mut Scratch,
    ) -> RResult<Verdict, RString> {
        guard(C::NAME, || {
            self.0.inspect_response_chunk(req, resp, scratch)
        })
    }
    fn inspect_tool_call(
        &self,
        req: &RequestView<'_>,
        call: &ToolCallView<'_>,
        scratch: &mut Scratch,
    ) -> RResult<Verdict, RString> {
        guard(C::NAME, || self.0.inspect_tool_call(req, call, scratch))
    }
    fn post_complete(
        &self,
        req: &RequestView<'_>,
        done: &CompletionView<'_>,
        scratch: &mut Scratch,
    ) -> RResult<Verdict, RString> {
        guard(C::NAME, || self.0.post_complete(req, done, scratch))
    }
}

/// One exported check: how to describe it and how to build it. Made by
/// [`CheckEntry::of`]; used by [`crate::export_plugin!`].
#[derive(Clone, Copy)]
pub struct CheckEntry {
    describe: fn() -> CheckDescriptor,
    build: fn(&serde_json::Value) -> Result<FfiCheckBox, String>,
    name: &'static str,
}

impl CheckEntry {
    /// The entry for check type `C`.
    pub const fn of<C: Check>() -> Self {
        CheckEntry {
            describe: describe::<C>,
            build: build::<C>,
            name: C::NAME,
        }
    }
}

fn describe<C: Check>() -> CheckDescriptor {
    CheckDescriptor {
        name: C::NAME.into(),
        description: C::DESCRIPTION.into(),
        stage: C::STAGE,
        priority: C::PRIORITY,
        hooks: C::HOOKS,
        inline_hooks: Hooks(C::INLINE_HOOKS.0 & C::HOOKS.0),
    }
}

fn build<C: Check>(config: &serde_json::Value) -> Result<FfiCheckBox, String> {
    let check = C::new(config)?;
    Ok(FfiCheck_TO::from_value(Guarded(check), TD_Opaque))
}

#[doc(hidden)]
/// Implementation of the root module's `checks` entry (panic-guarded).
pub fn __describe(entries: &[CheckEntry]) -> RResult<RVec<CheckDescriptor>, RString> {
    match catch_unwind(AssertUnwindSafe(|| {
        entries.iter().map(|e| (e.describe)()).collect::<RVec<_>>()
    })) {
        Ok(v) => RResult::ROk(v),
        Err(p) => RResult::RErr(
            format!("describing checks panicked: {}", panic_message(p.as_ref())).into(),
        ),
    }
}

#[doc(hidden)]
/// Implementation of the root module's `new_check` entry (panic-guarded).
pub fn __new_check(
    entries: &[CheckEntry],
    name: RStr<'_>,
    config_json: RStr<'_>,
) -> RResult<FfiCheckBox, RString> {
    let name = name.as_str();
    let Some(entry) = entries.iter().find(|e| e.name == name) else {
        let known: Vec<&str> = entries.iter().map(|e| e.name).collect();
        return RResult::RErr(
            format!(
                "this library exports no check named {name:?} (it exports: {})",
                known.join(", ")
            )
            .into(),
        );
    };
    let config: serde_json::Value = match serde_json::from_str(config_json.as_str()) {
        Ok(v) => v,
        Err(e) => {
            return RResult::RErr(format!("config for check {name} is not valid JSON: {e}").into())
        }
    };
    match catch_unwind(AssertUnwindSafe(|| (entry.build)(&config))) {
        Ok(Ok(check)) => RResult::ROk(check),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(p) => RResult::RErr(
            format!(
                "constructor of check {name} panicked: {}",
                panic_message(p.as_ref())
            )
            .into(),
        ),
    }
}
