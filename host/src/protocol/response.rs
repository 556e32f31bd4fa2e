//! What the gate needs from an upstream response, for both wire formats:
//! the semantic text segments (inspected; addressable by JSON pointer so a
//! redaction can rewrite them in place), the tool calls (gated; removable),
//! and usage. Ids and model names are never treated as text.
use super::At;
use serde_json::Value;

/// Which API a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/embeddings` (admission only).
    Embeddings,
    /// `POST /v1/messages` (Anthropic).
    Messages,
}

impl Api {
    /// The gated path for an API.
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
            Api::Embeddings => "/v1/embeddings",
            Api::Messages => "/v1/messages",
        }
    }
}

/// One piece of semantic text inside a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSeg {
    /// RFC 6901 pointer to the string.
    pub pointer: String,
    /// The text.
    pub text: String,
}

/// One tool call inside a unary response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallAt {
    /// Pointer to the array holding the call.
    pub array: String,
    /// Index in that array.
    pub index: usize,
    /// Call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text.
    pub arguments: String,
}

/// Token usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    /// Prompt / input tokens.
    pub prompt: u64,
    /// Completion / output tokens.
    pub completion: u64,
}

fn push_str(out: &mut Vec<TextSeg>, v: &Value, pointer: String) {
    if let Some(s) = v.at(&pointer).and_then(Value::as_str) {
        if !s.is_empty() {
            out.push(TextSeg {
                pointer,
                text: s.to_string(),
            });
        }
    }
}

/// Semantic text of a unary response, in document order.
pub fn unary_texts(api: Api, body: &Value) -> Vec<TextSeg> {
    let mut out = Vec::new();
    match api {
        Api::Chat | Api::Completions => {
            let n = body
                .get("choices")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for i in 0..n {
                for field in [
                    "message/content",
                    "message/refusal",
                    "message/reasoning_content",
                    "text",
                ] {
                    push_str(&mut out, body, format!("/choices/{i}/{field}"));
                }
                let parts = body
                    .at(&format!("/choices/{i}/message/content"))
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                for j in 0..parts {
                    push_str(
                        &mut out,
                        body,
                        format!("/choices/{i}/message/content/{j}/text"),
                    );
                }
            }
        }
        Api::Messages => {
            let n = body
                .get("content")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for i in 0..n {
                push_str(&mut out, body, format!("/content/{i}/text"));
                push_str(&mut out, body, format!("/content/{i}/thinking"));
            }
        }
        Api::Embeddings => {}
    }
    out
}

/// Tool calls of a unary response.
pub fn unary_tool_calls(api: Api, body: &Value) -> Vec<ToolCallAt> {
    let mut out = Vec::new();
    match api {
        Api::Chat => {
            let n = body
                .get("choices")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for i in 0..n {
                let array = format!("/choices/{i}/message/tool_calls");
                let calls = body
                    .at(&array)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for (j, c) in calls.iter().enumerate() {
                    out.push(ToolCallAt {
                        array: array.clone(),
                        index: j,
                        id: str_at(c, "/id"),
                        name: str_at(c, "/function/name"),
                        arguments: str_at(c, "/function/arguments"),
                    });
                }
            }
        }
        Api::Messages => {
            let blocks = body
                .get("content")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, b) in blocks.iter().enumerate() {
                if b.get("type").and_then(Value::as_str) == Some("tool_use") {
                    out.push(ToolCallAt {
                        array: "/content".into(),
                        index: i,
                        id: str_at(b, "/id"),
                        name: str_at(b, "/name"),
                        arguments: b
                            .get("input")
                            .map_or_else(|| "{}".to_string(), Value::to_string),
                    });
                }
            }
        }
        Api::Completions | Api::Embeddings => {}
    }
    out
}

fn str_at(v: &Value, p: &str) -> String {
    v.at(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Replace the arguments of a unary tool call (after a redaction).
pub fn set_tool_arguments(api: Api, body: &mut Value, at: &ToolCallAt, arguments: &str) {
    let Some(call) = body.pointer_mut(&format!("{}/{}", at.array, at.index)) else {
        return;
    };
    match api {
        Api::Messages => {
            if let Ok(v) = serde_json::from_str::<Value>(arguments) {
                call["input"] = v;
            }
        }
        _ => {
            if let Some(f) = call.get_mut("function") {
                f["arguments"] = Value::String(arguments.to_string());
            }
        }
    }
}

/// Remove these tool calls (by position) from a unary response.
pub fn remove_tool_calls(body: &mut Value, refused: &[ToolCallAt]) {
    let mut by_array: Vec<(&str, Vec<usize>)> = Vec::new();
    for r in refused {
        match by_array.iter_mut().find(|(a, _)| *a == r.array) {
            Some((_, v)) => v.push(r.index),
            None => by_array.push((&r.array, vec![r.index])),
        }
    }
    for (array, mut idx) in by_array {
        idx.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(Value::Array(items)) = body.pointer_mut(array) {
            for i in idx {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
    }
}

/// Usage of a unary response, or of a stream event that carries it.
pub fn usage(body: &Value) -> Option<TokenUsage> {
    let u = body.get("usage").or_else(|| body.at("/message/usage"))?;
    let get = |k: &str| u.get(k).and_then(Value::as_u64);
    let prompt = get("prompt_tokens")
        .or_else(|| get("input_tokens"))
        .unwrap_or(0);
    let completion = get("completion_tokens").or_else(|| get("output_tokens"));
    completion.map(|completion| TokenUsage { prompt, completion })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_unary_text_and_tool_calls() {
        let mut body = json!({"id": "chatcmpl-SECRET", "model": "gpt-x", "choices": [{"index": 0, "message": {
            "role": "assistant", "content": "hello", "refusal": null,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "refund", "arguments": "{\"amount\":5}"}},
                {"id": "call_2", "type": "function", "function": {"name": "drop", "arguments": "{}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 3, "completion_tokens": 7}});
        let texts = unary_texts(Api::Chat, &body);
        assert_eq!(
            texts,
            vec![TextSeg {
                pointer: "/choices/0/message/content".into(),
                text: "hello".into()
            }]
        );
        let calls = unary_tool_calls(Api::Chat, &body);
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].name.as_str(), calls[0].arguments.as_str()),
            ("refund", "{\"amount\":5}")
        );
        set_tool_arguments(Api::Chat, &mut body, &calls[0], "{\"amount\":1}");
        remove_tool_calls(&mut body, &calls[1..]);
        assert_eq!(
            body["choices"][0]["message"]["tool_calls"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"amount\":1}"
        );
        assert_eq!(
            usage(&body),
            Some(TokenUsage {
                prompt: 3,
                completion: 7
            })
        );
    }

    #[test]
    fn anthropic_unary_text_and_tool_use() {
        let body = json!({"id": "msg_1", "type": "message", "content": [
            {"type": "text", "text": "Let me refund"},
            {"type": "tool_use", "id": "toolu_1", "name": "refund", "input": {"amount": 50}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 4, "output_tokens": 9}});
        assert_eq!(unary_texts(Api::Messages, &body)[0].text, "Let me refund");
        let calls = unary_tool_calls(Api::Messages, &body);
        assert_eq!(
            (calls[0].index, calls[0].arguments.as_str()),
            (1, "{\"amount\":50}")
        );
        assert_eq!(usage(&body).unwrap().completion, 9);
    }
}
