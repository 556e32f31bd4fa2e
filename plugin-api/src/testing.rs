//! A small fake host for plugin unit tests: builds a check through the same
//! guarded constructor and hook adapter the real host uses (so panics and
//! config errors behave as they will in the gate), and calls its hooks with
//! owned request/response data.
use abi_stable::std_types::{RNone, ROption, RSome, RStr};

use crate::author::{__new_check, CheckEntry};
use crate::ffi::FfiCheckBox;
use crate::verdict::Verdict;
use crate::views::{
    CompletionView, Header, RequestView, ResponseView, Scratch, ToolCallView, Usage,
};
use crate::Check;

/// An owned request to feed a check's hooks.
#[derive(Debug, Clone, Default)]
pub struct FakeRequest {
    /// Owner as `type:id`.
    pub owner: String,
    /// Declared classification.
    pub classification: String,
    /// Request path.
    pub path: String,
    /// Client IP.
    pub client_ip: String,
    /// Headers (name, value); names are lower-cased when viewed.
    pub headers: Vec<(String, String)>,
    /// Raw JSON body.
    pub body_json: String,
}

impl FakeRequest {
    /// A chat-completions request with this JSON body, owned by `human:test`.
    pub fn chat(body: serde_json::Value) -> Self {
        FakeRequest {
            owner: "human:test".into(),
            path: "/v1/chat/completions".into(),
            client_ip: "127.0.0.1".into(),
            body_json: body.to_string(),
            ..Default::default()
        }
    }

    fn with_view<T>(&self, f: impl FnOnce(&RequestView<'_>) -> T) -> T {
        let lowered: Vec<(String, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str()))
            .collect();
        let headers: Vec<Header<'_>> = lowered
            .iter()
            .map(|(n, v)| Header {
                name: RStr::from_str(n),
                value: RStr::from_str(v),
            })
            .collect();
        let view = RequestView {
            correlation_id: RStr::from_str("00000000-0000-4000-8000-000000000000"),
            owner: RStr::from_str(&self.owner),
            classification: RStr::from_str(&self.classification),
            path: RStr::from_str(&self.path),
            client_ip: RStr::from_str(&self.client_ip),
            headers: headers.as_slice().into(),
            body_json: RStr::from_str(&self.body_json),
        };
        f(&view)
    }
}

/// A check built through the guarded constructor, with its own scratch map.
pub struct FakeHost {
    check: FfiCheckBox,
    /// The scratch map shared by this check's hooks (one fake request at a time).
    pub scratch: Scratch,
}

impl FakeHost {
    /// Build check `C` from a JSON config, exactly as the gate would.
    pub fn build<C: Check>(config: serde_json::Value) -> Result<Self, String> {
        let entries = [CheckEntry::of::<C>()];
        let cfg = config.to_string();
        __new_check(&entries, RStr::from_str(C::NAME), RStr::from_str(&cfg))
            .into_result()
            .map(|check| FakeHost {
                check,
                scratch: Scratch::new(),
            })
            .map_err(|e| e.into_string())
    }

    /// Call `pre_request`.
    pub fn pre_request(&mut self, req: &FakeRequest) -> Result<Verdict, String> {
        let (check, scratch) = (&self.check, &mut self.scratch);
        req.with_view(|v| check.pre_request(v, scratch))
            .into_result()
            .map_err(|e| e.into_string())
    }

    /// Call `inspect_response_chunk` with a chunk, the text so far, and its index.
    pub fn inspect_chunk(
        &mut self,
        req: &FakeRequest,
        accumulated: &str,
        chunk: &str,
        index: u64,
    ) -> Result<Verdict, String> {
        let resp = ResponseView {
            accumulated_text: RStr::from_str(accumulated),
            chunk: RStr::from_str(chunk),
            chunk_index: index,
            finish_reason: RStr::from_str(""),
            usage: RNone,
            streaming: true,
        };
        let (check, scratch) = (&self.check, &mut self.scratch);
        req.with_view(|v| check.inspect_response_chunk(v, &resp, scratch))
            .into_result()
            .map_err(|e| e.into_string())
    }

    /// Call `inspect_tool_call`.
    pub fn inspect_tool_call(
        &mut self,
        req: &FakeRequest,
        name: &str,
        arguments_json: &str,
    ) -> Result<Verdict, String> {
        let call = ToolCallView {
            id: RStr::from_str("call_test"),
            name: RStr::from_str(name),
            arguments_json: RStr::from_str(arguments_json),
            index: 0,
        };
        let (check, scratch) = (&self.check, &mut self.scratch);
        req.with_view(|v| check.inspect_tool_call(v, &call, scratch))
            .into_result()
            .map_err(|e| e.into_string())
    }

    /// Call `post_complete` for a completed request.
    pub fn post_complete(
        &mut self,
        req: &FakeRequest,
        outcome: &str,
        usage: Option<Usage>,
    ) -> Result<Verdict, String> {
        let done = CompletionView {
            outcome: RStr::from_str(outcome),
            status: 200,
            finish_reason: RStr::from_str("stop"),
            usage: match usage {
                Some(u) => RSome(u),
                None => ROption::RNone,
            },
            response_text: RStr::from_str(""),
        };
        let (check, scratch) = (&self.check, &mut self.scratch);
        req.with_view(|v| check.post_complete(v, &done, scratch))
            .into_result()
            .map_err(|e| e.into_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Hooks, Stage, VerdictKind};

    struct Panicky;
    impl Check for Panicky {
        const NAME: &'static str = "panicky";
        const STAGE: Stage = Stage::Admission;
        const HOOKS: Hooks = Hooks::PRE_REQUEST;
        fn new(config: &serde_json::Value) -> Result<Self, String> {
            if config.get("boom").is_some() {
                panic!("constructor exploded");
            }
            Ok(Panicky)
        }
        fn pre_request(&self, req: &RequestView<'_>, scratch: &mut Scratch) -> crate::HookResult {
            if req.body_json.as_str().contains("panic") {
                panic!("hook exploded");
            }
            scratch.insert("seen".into(), "yes".into());
            Ok(Verdict::block("no").with_metadata(serde_json::json!({"k": 1})))
        }
    }

    #[test]
    fn hooks_default_to_allow_and_panics_become_errors() {
        let mut host = FakeHost::build::<Panicky>(serde_json::json!({})).unwrap();
        let req = FakeRequest::chat(serde_json::json!({"messages": []}));
        let v = host.pre_request(&req).unwrap();
        assert!(matches!(v.kind(), Some(VerdictKind::Block { .. })));
        assert_eq!(v.metadata_json.as_str(), r#"{"k":1}"#);
        assert_eq!(host.scratch.get("seen").map(|s| s.as_str()), Some("yes"));
        assert!(host.inspect_chunk(&req, "a", "a", 1).unwrap().is_allow());
        assert!(host.inspect_tool_call(&req, "t", "{}").unwrap().is_allow());
        assert!(host
            .post_complete(&req, "completed", None)
            .unwrap()
            .is_allow());
        let err = host
            .pre_request(&FakeRequest::chat(serde_json::json!({"x": "panic"})))
            .unwrap_err();
        assert!(err.contains("panicky panicked: hook exploded"), "{err}");
        let err = FakeHost::build::<Panicky>(serde_json::json!({"boom": true}))
            .err()
            .unwrap();
        assert!(
            err.contains("constructor of check panicky panicked"),
            "{err}"
        );
    }

    #[test]
    fn verdict_constructors() {
        assert!(matches!(
            Verdict::quota("slow down", 1500).kind(),
            Some(VerdictKind::Block {
                class: crate::BlockClass::Quota,
                retry_after_ms: 1500
            })
        ));
        assert!(
            matches!(Verdict::redact("x", "pii").kind(), Some(VerdictKind::Redact { replacement }) if replacement.as_str() == "x")
        );
        assert!(matches!(
            Verdict::escalate("ask").kind(),
            Some(VerdictKind::Escalate)
        ));
        assert_eq!(Hooks::ALL.names().len(), 4);
        assert_eq!(Hooks::of_stage(Stage::Record), Hooks::POST_COMPLETE);
    }
}
