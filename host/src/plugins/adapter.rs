//! A plugin's FFI check object as a host [`Check`]. Hooks the plugin declared
//! cheap run inline; every other hook runs on tokio's blocking pool (a plugin
//! has its own copy of tokio's thread-locals and may block on I/O), under the
//! check's timeout, which the pipeline applies to the returned future.
use std::sync::Arc;

use abi_stable::std_types::{RResult, RSlice, RStr, RString};
use signet_plugin_api as api;

use crate::checks::{
    take_scratch, Check, CheckError, Completion, Decision, Hook, HookResult, Hooks, Replacement,
    Request, ResponseSoFar, Scratch, Stage, ToolCall, Verdict,
};

/// Map the API's stage to the host's.
pub(super) fn host_stage(s: api::Stage) -> Stage {
    match s {
        api::Stage::Admission => Stage::Admission,
        api::Stage::Inspection => Stage::Inspection,
        api::Stage::Commitment => Stage::Commitment,
        api::Stage::Record => Stage::Record,
    }
}

/// Map the API's hook bits to the host's (unknown future bits are dropped).
pub(super) fn host_hooks(h: api::Hooks) -> Hooks {
    Hooks((h.0 & api::Hooks::ALL.0) as u8)
}

/// A loaded plugin check.
pub(super) struct PluginCheck {
    ffi: Arc<api::FfiCheckBox>,
    hooks: Hooks,
    inline: Hooks,
}

impl PluginCheck {
    pub(super) fn new(ffi: api::FfiCheckBox, hooks: Hooks, inline: Hooks) -> Self {
        PluginCheck {
            ffi: Arc::new(ffi),
            hooks,
            inline,
        }
    }

    /// Call a hook inline or on the blocking pool, carrying the plugin's scratch
    /// map in and out.
    fn call<'a, F>(&self, hook: Hooks, stage: Stage, scratch: &'a mut Scratch, f: F) -> Hook<'a>
    where
        F: FnOnce(&api::FfiCheckBox, &mut api::Scratch) -> RResult<api::Verdict, RString>
            + Send
            + 'static,
    {
        let mut map: api::Scratch = take_scratch::<api::Scratch>(scratch).unwrap_or_default();
        if self.inline.contains(hook) {
            let r = f(&self.ffi, &mut map);
            *scratch = Some(Box::new(map));
            return Hook::Ready(convert(r, stage));
        }
        let ffi = Arc::clone(&self.ffi);
        Hook::Pending(Box::pin(async move {
            let joined = tokio::task::spawn_blocking(move || {
                let r = f(&ffi, &mut map);
                (r, map)
            })
            .await;
            match joined {
                Ok((r, map)) => {
                    *scratch = Some(Box::new(map));
                    convert(r, stage)
                }
                Err(e) => Err(CheckError(format!("plugin hook did not complete: {e}"))),
            }
        }))
    }
}

/// Borrowed view of a host request for the duration of `f`.
fn with_request_view<T>(req: &Request, f: impl FnOnce(&api::RequestView<'_>) -> T) -> T {
    let headers: Vec<api::Header<'_>> = req
        .headers
        .iter()
        .map(|(n, v)| api::Header {
            name: RStr::from_str(n),
            value: RStr::from_str(v),
        })
        .collect();
    let owner = req.owner.qualified();
    let view = api::RequestView {
        correlation_id: RStr::from_str(&req.correlation_id),
        owner: RStr::from_str(&owner),
        classification: RStr::from_str(&req.classification),
        path: RStr::from_str(&req.path),
        client_ip: RStr::from_str(&req.client_ip),
        headers: RSlice::from_slice(&headers),
        body_json: RStr::from_str(&req.body_json),
    };
    f(&view)
}

fn usage(u: Option<crate::checks::Usage>) -> abi_stable::std_types::ROption<api::Usage> {
    u.map(|u| api::Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
    })
    .into()
}

/// Convert an FFI verdict; anything this host cannot interpret is an error of
/// the check (and so fails closed under `on_error = "fail"`).
fn convert(r: RResult<api::Verdict, RString>, stage: Stage) -> HookResult {
    let v = match r {
        RResult::ROk(v) => v,
        RResult::RErr(e) => return Err(CheckError(e.into_string())),
    };
    let metadata = match v.metadata_json.as_str() {
        "" => serde_json::Map::new(),
        text => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                return Err(CheckError(
                    "plugin verdict metadata is not a JSON object".into(),
                ))
            }
        },
    };
    let decision = match v.kind() {
        Some(api::VerdictKind::Allow) => Decision::Allow,
        Some(api::VerdictKind::Block {
            class,
            retry_after_ms,
        }) => Decision::Block {
            class: match class {
                api::BlockClass::Quota => crate::checks::BlockClass::Quota,
                api::BlockClass::Policy => crate::checks::BlockClass::Policy,
            },
            retry_after_ms: *retry_after_ms,
        },
        Some(api::VerdictKind::Escalate) => Decision::Escalate,
        Some(api::VerdictKind::Redact { replacement }) => Decision::Redact(match stage {
            Stage::Admission => match serde_json::from_str(replacement.as_str()) {
                Ok(body @ serde_json::Value::Object(_)) => Replacement::Body(body),
                _ => {
                    return Err(CheckError(
                        "plugin redaction of the request is not a JSON object body".into(),
                    ))
                }
            },
            Stage::Commitment => {
                if serde_json::from_str::<serde_json::Value>(replacement.as_str()).is_err() {
                    return Err(CheckError(
                        "plugin redaction of tool-call arguments is not JSON".into(),
                    ));
                }
                Replacement::Arguments(replacement.to_string())
            }
            Stage::Inspection | Stage::Record => Replacement::Text(replacement.to_string()),
        }),
        _ => {
            return Err(CheckError(
                "plugin returned a verdict kind this gate does not know".into(),
            ))
        }
    };
    Ok(Verdict {
        decision,
        reason: v.reason.into_string(),
        metadata,
        owner: None,
    })
}

impl Check for PluginCheck {
    fn hooks(&self) -> Hooks {
        self.hooks
    }

    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, scratch: &'a mut Scratch) -> Hook<'a> {
        let req = Arc::clone(req);
        self.call(
            Hooks::PRE_REQUEST,
            Stage::Admission,
            scratch,
            move |ffi, s| with_request_view(&req, |v| ffi.pre_request(v, s)),
        )
    }

    fn inspect_chunk<'a>(
        &'a self,
        req: &'a Arc<Request>,
        resp: &'a ResponseSoFar,
        scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        let (req, resp) = (Arc::clone(req), resp.clone());
        self.call(
            Hooks::INSPECT_CHUNK,
            Stage::Inspection,
            scratch,
            move |ffi, s| {
                let finish = resp.finish_reason.clone().unwrap_or_default();
                let view = api::ResponseView {
                    accumulated_text: RStr::from_str(&resp.accumulated),
                    chunk: RStr::from_str(resp.chunk()),
                    chunk_index: resp.chunk_index,
                    finish_reason: RStr::from_str(&finish),
                    usage: usage(resp.usage),
                    streaming: resp.streaming,
                };
                with_request_view(&req, |v| ffi.inspect_response_chunk(v, &view, s))
            },
        )
    }

    fn inspect_tool_call<'a>(
        &'a self,
        req: &'a Arc<Request>,
        call: &'a ToolCall,
        scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        let (req, call) = (Arc::clone(req), call.clone());
        self.call(
            Hooks::TOOL_CALL,
            Stage::Commitment,
            scratch,
            move |ffi, s| {
                let view = api::ToolCallView {
                    id: RStr::from_str(&call.id),
                    name: RStr::from_str(&call.name),
                    arguments_json: RStr::from_str(&call.arguments),
                    index: call.index,
                };
                with_request_view(&req, |v| ffi.inspect_tool_call(v, &view, s))
            },
        )
    }

    fn post_complete<'a>(
        &'a self,
        req: &'a Arc<Request>,
        done: &'a Completion,
        scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        let (req, done) = (Arc::clone(req), done.clone());
        self.call(
            Hooks::POST_COMPLETE,
            Stage::Record,
            scratch,
            move |ffi, s| {
                let finish = done.finish_reason.clone().unwrap_or_default();
                let view = api::CompletionView {
                    outcome: RStr::from_str(&done.outcome),
                    status: done.status,
                    finish_reason: RStr::from_str(&finish),
                    usage: usage(done.usage),
                    response_text: RStr::from_str(&done.response_text),
                };
                with_request_view(&req, |v| ffi.post_complete(v, &view, s))
            },
        )
    }
}
