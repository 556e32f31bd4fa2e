//! What an approval covers, and the context an approver sees.
//!
//! A tool call is identified by its name and the SHA-256 of the canonical
//! JSON of its arguments (sorted keys, no whitespace — the audit log's
//! canonical form), so the same call re-proposed with its keys in another
//! order or other spacing is the same subject, and any change of value is
//! not. Arguments that are not JSON are digested as sent.
use serde_json::{json, Value};

use crate::checks::{Request, ToolCall};
use crate::state::ApprovalSubject;

/// Longest argument / message preview shown to an approver, in characters.
const PREVIEW_CHARS: usize = 2000;

/// The subject for one tool call.
pub fn tool_call_subject(name: &str, arguments: &str) -> ApprovalSubject {
    let canonical = serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| crate::audit::canonical::to_canonical_string(&v).ok());
    let bytes = canonical.as_deref().unwrap_or(arguments).as_bytes();
    ApprovalSubject::ToolCall {
        name: name.to_string(),
        args_sha256: format!("sha256:{}", crate::audit::entry::sha256_hex(bytes)),
    }
}

fn preview(s: &str) -> Value {
    let mut out: String = s.chars().take(PREVIEW_CHARS).collect();
    if out.len() < s.len() {
        out.push_str(" …[truncated]");
    }
    Value::String(out)
}

/// What an approver sees about a held tool call.
pub fn tool_call_context(req: &Request, call: &ToolCall) -> Value {
    json!({
        "tool": call.name,
        "tool_call_id": call.id,
        "arguments": preview(&call.arguments),
        "model": req.body.get("model").cloned().unwrap_or(Value::Null),
    })
}

/// What an approver sees about a request held at admission: the model and
/// the last user message (OpenAI `messages`, Anthropic `messages`, or `prompt`).
pub fn request_context(req: &Request) -> Value {
    let last_user = req
        .body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .or_else(|| req.body.get("prompt"));
    let text = match last_user {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Array(_)) => v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    json!({
        "model": req.body.get("model").cloned().unwrap_or(Value::Null),
        "last_user_message": preview(&text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_spacing_do_not_matter_values_do() {
        let a = tool_call_subject("refund", r#"{"order":"A1","amount":5}"#);
        let b = tool_call_subject("refund", "{ \"amount\": 5, \"order\": \"A1\" }");
        let c = tool_call_subject("refund", r#"{"order":"A1","amount":6}"#);
        let d = tool_call_subject("refund_all", r#"{"order":"A1","amount":5}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        // Not JSON: digested as sent, still stable.
        assert_eq!(
            tool_call_subject("x", "not json"),
            tool_call_subject("x", "not json")
        );
        assert_ne!(
            tool_call_subject("x", "not json"),
            tool_call_subject("x", "not json ")
        );
    }

    #[test]
    fn previews_are_bounded() {
        let long = "é".repeat(5000);
        let Value::String(p) = preview(&long) else {
            panic!("string")
        };
        assert!(p.chars().count() < 2100);
        assert!(p.ends_with("[truncated]"));
    }
}
