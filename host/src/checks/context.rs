//! The typed per-request context checks see. Parsed once; shared by `Arc` so
//! hooks that run off the reactor (plugins, heavy scans) need no copies.
use std::sync::Arc;

/// Who is accountable for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnerType {
    /// `X-Commit-Owner: human:<id>`.
    Human,
    /// `X-Agent-Id: agent:<id>`.
    Agent,
    /// `X-Policy-Name`, or a trust rule such as loopback.
    Policy,
    /// Nobody could be resolved.
    Unresolved,
}

impl OwnerType {
    /// Lower-case name as in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::Human => "human",
            OwnerType::Agent => "agent",
            OwnerType::Policy => "policy",
            OwnerType::Unresolved => "unresolved",
        }
    }
}

/// The resolved owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Kind of principal.
    pub kind: OwnerType,
    /// Principal id without the prefix (empty when unresolved).
    pub id: String,
}

impl Owner {
    /// No owner.
    pub fn unresolved() -> Self {
        Owner {
            kind: OwnerType::Unresolved,
            id: String::new(),
        }
    }
    /// `type:id`, or `""` when unresolved.
    pub fn qualified(&self) -> String {
        match self.kind {
            OwnerType::Unresolved => String::new(),
            k => format!("{}:{}", k.as_str(), self.id),
        }
    }
}

/// One request, as the checks see it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Audit entry id of the request (the `correlation_id` returned to clients).
    pub correlation_id: String,
    /// Request path.
    pub path: String,
    /// Client IP (after trusted-proxy resolution).
    pub client_ip: String,
    /// Headers with UTF-8 values, names lower-cased, in arrival order.
    pub headers: Arc<Vec<(String, String)>>,
    /// Resolved owner (set by owner resolution / trust checks).
    pub owner: Owner,
    /// Declared classification (`X-Classification`), or empty.
    pub classification: String,
    /// The parsed body.
    pub body: Arc<serde_json::Value>,
    /// The body as JSON text (the raw bytes, or the re-serialised body after a redaction).
    pub body_json: Arc<str>,
    /// `sha256:<hex>` of the raw body as received.
    pub fingerprint: String,
}

impl Request {
    /// First header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A copy with the body replaced (used to apply an admission redaction).
    pub fn with_body(&self, body: serde_json::Value) -> Request {
        let json = body.to_string();
        Request {
            body: Arc::new(body),
            body_json: Arc::from(json),
            ..self.clone()
        }
    }
}

/// Token usage reported by the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// The response so far, at one INSPECTION step.
#[derive(Debug, Clone, Default)]
pub struct ResponseSoFar {
    /// All semantic text so far, this chunk included (shared: cheap to clone).
    pub accumulated: Arc<String>,
    /// Byte offset in `accumulated` where this chunk starts.
    pub chunk_start: usize,
    /// 1-based chunk index (a unary response is chunk 1).
    pub chunk_index: u64,
    /// Finish reason once known.
    pub finish_reason: Option<String>,
    /// Usage once known.
    pub usage: Option<Usage>,
    /// True for a streamed response.
    pub streaming: bool,
}

impl ResponseSoFar {
    /// This chunk's text.
    pub fn chunk(&self) -> &str {
        self.accumulated.get(self.chunk_start..).unwrap_or("")
    }
}

/// One complete tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// Call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments JSON text.
    pub arguments: String,
    /// Position in the response.
    pub index: u32,
}

/// How a request ended.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// `completed`, `refused`, `escalated`, `aborted`, `upstream_error`, `client_disconnect`.
    pub outcome: String,
    /// HTTP status sent to the client.
    pub status: u16,
    /// Final finish reason, if any.
    pub finish_reason: Option<String>,
    /// Usage, if reported.
    pub usage: Option<Usage>,
    /// Semantic text delivered to the client.
    pub response_text: Arc<String>,
}
