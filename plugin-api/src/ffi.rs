//! The check object as the host sees it across the library boundary.
//!
//! Plugin authors do not implement this trait: they implement
//! [`crate::Check`], and [`crate::export_plugin!`] wraps it in an adapter that
//! implements this one and catches panics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // inside sabi_trait's generated code
use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, RResult, RString};

use crate::verdict::Verdict;
use crate::views::{CompletionView, RequestView, ResponseView, Scratch, ToolCallView};

/// A check instance. Every method returns `ROk(verdict)` or `RErr(reason)`;
/// an error (including a caught panic) is handled by the host according to
/// the check's `on_error` policy (`fail` = fail closed by default).
#[sabi_trait]
pub trait FfiCheck: Send + Sync {
    /// ADMISSION: called once per request before it is forwarded.
    fn pre_request(
        &self,
        req: &RequestView<'_>,
        scratch: &mut Scratch,
    ) -> RResult<Verdict, RString>;

    /// INSPECTION: called per response chunk before the caller sees it.
    fn inspect_response_chunk(
        &self,
        req: &RequestView<'_>,
        resp: &ResponseView<'_>,
        scratch: &mut Scratch,
    ) -> RResult<Verdict, RString>;

    /// COMMITMENT: called per complete tool call before the caller sees any of it.
    fn inspect_tool_call(
        &self,
        req: &RequestView<'_>,
        call: &ToolCallView<'_>,
        scratch: &mut Scratch,
    ) -> RResult<Verdict, RString>;

    /// RECORD: called once when the request ends, on every path.
    ///
    /// New hooks go after this one, each with a default body, so that old
    /// plugins keep loading (see the crate docs on growth points).
    #[sabi(last_prefix_field)]
    fn post_complete(
        &self,
        req: &RequestView<'_>,
        done: &CompletionView<'_>,
        scratch: &mut Scratch,
    ) -> RResult<Verdict, RString>;
}

/// An owned, type-erased check object.
pub type FfiCheckBox = FfiCheck_TO<'static, RBox<()>>;
