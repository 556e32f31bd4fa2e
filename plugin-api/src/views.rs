//! Borrowed, FFI-safe views handed to plugin hooks.
//!
//! Every view borrows from the host for the duration of one hook call: nothing
//! is copied per call (the request body is the raw JSON text the gate already
//! holds). Copy out what you need to keep; use the per-request [`Scratch`] map
//! to carry state from one hook to the next.
use abi_stable::std_types::{RHashMap, ROption, RSlice, RStr, RString};
use abi_stable::StableAbi;

/// Per-request, per-check scratch space shared by all hooks of one check for
/// one request (e.g. a reservation id written in `pre_request` and read back in
/// `post_complete`). Starts empty for every request; dropped when it ends.
pub type Scratch = RHashMap<RString, RString>;

/// One HTTP request header, name lower-cased by the host.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Header<'a> {
    /// Lower-case header name.
    pub name: RStr<'a>,
    /// Header value (only headers whose value is valid UTF-8 are passed).
    pub value: RStr<'a>,
}

/// The request as the gate sees it after earlier checks ran (redactions applied).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct RequestView<'a> {
    /// The audit entry id of this request; returned to the client as `correlation_id`.
    pub correlation_id: RStr<'a>,
    /// Resolved owner as `type:id` (`human:alice`, `agent:bot-7`, `policy:name`), or `""`.
    pub owner: RStr<'a>,
    /// Declared classification of the request (the `X-Classification` header), or `""`.
    pub classification: RStr<'a>,
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: RStr<'a>,
    /// Client IP address as text (after trusted-proxy resolution).
    pub client_ip: RStr<'a>,
    /// All request headers with UTF-8 values.
    pub headers: RSlice<'a, Header<'a>>,
    /// The raw JSON body (re-serialised if an earlier check redacted it).
    pub body_json: RStr<'a>,
}

impl<'a> RequestView<'a> {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .as_slice()
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Parse the body. Costs a parse: call it once per hook at most.
    pub fn body(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(self.body_json.as_str())
            .map_err(|e| format!("request body is not JSON: {e}"))
    }
}

/// Token usage reported by the upstream.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens.
    pub completion_tokens: u64,
}

/// The response so far, at one INSPECTION step (one stream event, or the whole
/// unary response as a single chunk).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct ResponseView<'a> {
    /// Semantic text of the response so far, this chunk included.
    pub accumulated_text: RStr<'a>,
    /// Semantic text of this chunk alone.
    pub chunk: RStr<'a>,
    /// 1-based index of this chunk (a unary response is chunk 1).
    pub chunk_index: u64,
    /// `finish_reason` / `stop_reason` once known, else `""`.
    pub finish_reason: RStr<'a>,
    /// Usage, when the upstream has reported it.
    pub usage: ROption<Usage>,
    /// True for a streamed response.
    pub streaming: bool,
}

/// One complete tool call proposed by the model (streamed fragments reassembled).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct ToolCallView<'a> {
    /// The call id chosen by the model (`call_…` / `toolu_…`).
    pub id: RStr<'a>,
    /// Tool (function) name.
    pub name: RStr<'a>,
    /// Arguments as JSON text, exactly as the model produced them.
    pub arguments_json: RStr<'a>,
    /// Position of the call in the response.
    pub index: u32,
}

/// How the request ended, for RECORD (`post_complete`).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct CompletionView<'a> {
    /// `completed`, `refused`, `escalated`, `aborted`, `upstream_error` or `client_disconnect`.
    pub outcome: RStr<'a>,
    /// HTTP status returned to the client.
    pub status: u16,
    /// Final finish reason, or `""`.
    pub finish_reason: RStr<'a>,
    /// Usage as reported by the upstream, when it was.
    pub usage: ROption<Usage>,
    /// Semantic text delivered to the client.
    pub response_text: RStr<'a>,
}
