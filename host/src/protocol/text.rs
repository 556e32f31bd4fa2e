//! Semantic text of a request body — what the model will read — for checks,
//! in both wire formats, each piece addressed by an RFC 6901 pointer so a
//! check can rewrite one message or part in place and keep the structure.
//!
//! Extracted (in this order): Anthropic's top-level `system` (string or text
//! blocks); tool definitions (`tools[]` in OpenAI and Anthropic shape, legacy
//! `functions[]`: name, description, every `description` inside the
//! parameter schema); `messages[]` content (string, or `text` parts / blocks,
//! Anthropic `tool_result` blocks and plain-text `document` sources);
//! `prompt` (`/v1/completions`) and `input` (`/v1/embeddings`) strings.
//! Ids, model names, image data, and tool-call arguments the model itself
//! produced in earlier turns are not text. Never panics on odd shapes: what
//! does not look like text is skipped.
use super::At;
use serde_json::Value;

/// What a piece of text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// A user or assistant message (or an unknown role).
    Message,
    /// A system prompt: a `system` / `developer` message or Anthropic's `system`.
    System,
    /// A tool result: OpenAI `role: "tool"` / `"function"` content, Anthropic `tool_result`.
    ToolResult,
    /// A tool definition's description, or a description inside its parameter schema.
    ToolDescription,
    /// A tool definition's name (an identifier: rewriting it breaks the tool).
    ToolName,
    /// `prompt` of `/v1/completions` or `input` of `/v1/embeddings`.
    Prompt,
}

/// One piece of semantic text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// RFC 6901 pointer to the JSON string holding the text.
    pub pointer: String,
    /// Role it is spoken in: the message's `role`; `"system"` for Anthropic's
    /// `system`; `"tool"` for Anthropic `tool_result` blocks; `"tools"` for
    /// tool definitions; `"user"` for `prompt` / `input`.
    pub role: &'a str,
    /// What it is.
    pub kind: SegmentKind,
    /// The text.
    pub text: &'a str,
}

/// Deepest parameter-schema nesting walked for descriptions.
const MAX_SCHEMA_DEPTH: usize = 32;

/// Escape one reference token for an RFC 6901 pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn push<'a>(
    out: &mut Vec<Segment<'a>>,
    v: Option<&'a Value>,
    pointer: String,
    role: &'a str,
    kind: SegmentKind,
) {
    if let Some(text) = v.and_then(Value::as_str) {
        out.push(Segment {
            pointer,
            role,
            kind,
            text,
        });
    }
}

fn kind_for_role(role: &str) -> SegmentKind {
    match role {
        "system" | "developer" => SegmentKind::System,
        "tool" | "function" => SegmentKind::ToolResult,
        _ => SegmentKind::Message,
    }
}

/// Text blocks / parts of an array: `{type: "text" | "input_text" | "output_text", text}`.
fn text_blocks<'a>(
    out: &mut Vec<Segment<'a>>,
    blocks: &'a [Value],
    base: &str,
    role: &'a str,
    kind: SegmentKind,
) {
    for (j, b) in blocks.iter().enumerate() {
        match b.get("type").and_then(Value::as_str) {
            Some("text" | "input_text" | "output_text") => {
                push(out, b.get("text"), format!("{base}/{j}/text"), role, kind)
            }
            Some("tool_result") => {
                let at = format!("{base}/{j}/content");
                match b.get("content") {
                    Some(Value::String(_)) => {
                        push(out, b.get("content"), at, "tool", SegmentKind::ToolResult)
                    }
                    Some(Value::Array(inner)) => {
                        text_blocks(out, inner, &at, "tool", SegmentKind::ToolResult)
                    }
                    _ => {}
                }
            }
            Some("document") if b.at("/source/type").and_then(Value::as_str) == Some("text") => {
                push(
                    out,
                    b.at("/source/data"),
                    format!("{base}/{j}/source/data"),
                    role,
                    kind,
                );
            }
            _ => {}
        }
    }
}

fn schema_descriptions<'a>(out: &mut Vec<Segment<'a>>, v: &'a Value, base: String, depth: usize) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let at = format!("{base}/{}", escape_token(k));
                if k == "description" && child.is_string() {
                    push(out, Some(child), at, "tools", SegmentKind::ToolDescription);
                } else {
                    schema_descriptions(out, child, at, depth + 1);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                schema_descriptions(out, child, format!("{base}/{i}"), depth + 1);
            }
        }
        _ => {}
    }
}

/// One tool definition at `base` (`def` is the object holding name / description / schema).
fn tool_def<'a>(out: &mut Vec<Segment<'a>>, def: &'a Value, base: &str) {
    push(
        out,
        def.get("name"),
        format!("{base}/name"),
        "tools",
        SegmentKind::ToolName,
    );
    push(
        out,
        def.get("description"),
        format!("{base}/description"),
        "tools",
        SegmentKind::ToolDescription,
    );
    for schema in ["parameters", "input_schema"] {
        if let Some(s) = def.get(schema) {
            schema_descriptions(out, s, format!("{base}/{schema}"), 0);
        }
    }
}

fn strings_or_list<'a>(out: &mut Vec<Segment<'a>>, body: &'a Value, field: &str) {
    match body.get(field) {
        Some(Value::String(_)) => push(
            out,
            body.get(field),
            format!("/{field}"),
            "user",
            SegmentKind::Prompt,
        ),
        Some(Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                push(
                    out,
                    Some(v),
                    format!("/{field}/{i}"),
                    "user",
                    SegmentKind::Prompt,
                );
            }
        }
        _ => {}
    }
}

/// Every piece of semantic text in a request body, in the order listed in the
/// module docs. A body that is not an object has none.
pub fn request_segments(body: &Value) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    if !body.is_object() {
        return out;
    }
    match body.get("system") {
        Some(Value::String(_)) => push(
            &mut out,
            body.get("system"),
            "/system".into(),
            "system",
            SegmentKind::System,
        ),
        Some(Value::Array(blocks)) => {
            text_blocks(&mut out, blocks, "/system", "system", SegmentKind::System)
        }
        _ => {}
    }
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        for (i, t) in tools.iter().enumerate() {
            match t.get("function") {
                Some(f) if f.is_object() => tool_def(&mut out, f, &format!("/tools/{i}/function")),
                _ => tool_def(&mut out, t, &format!("/tools/{i}")),
            }
        }
    }
    if let Some(fns) = body.get("functions").and_then(Value::as_array) {
        for (i, f) in fns.iter().enumerate() {
            tool_def(&mut out, f, &format!("/functions/{i}"));
        }
    }
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for (i, m) in messages.iter().enumerate() {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("");
            let kind = kind_for_role(role);
            match m.get("content") {
                Some(Value::String(_)) => push(
                    &mut out,
                    m.get("content"),
                    format!("/messages/{i}/content"),
                    role,
                    kind,
                ),
                Some(Value::Array(parts)) => text_blocks(
                    &mut out,
                    parts,
                    &format!("/messages/{i}/content"),
                    role,
                    kind,
                ),
                _ => {}
            }
        }
    }
    strings_or_list(&mut out, body, "prompt");
    strings_or_list(&mut out, body, "input");
    out
}

/// All semantic text joined by newlines (for checks that scan it as one).
pub fn semantic_text(body: &Value) -> String {
    let segs = request_segments(body);
    let mut s = String::with_capacity(segs.iter().map(|g| g.text.len() + 1).sum());
    for (i, g) in segs.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(g.text);
    }
    s
}

/// A rewrite could not be applied (the pointer does not name a string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteError {
    /// The pointer.
    pub pointer: String,
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no text at {}", self.pointer)
    }
}

impl std::error::Error for RewriteError {}

/// A copy of `body` with the string at each pointer replaced; every other
/// byte of structure (roles, part types, ids, images) is kept. Fails if a
/// pointer does not name a string, so a redaction is never silently dropped.
pub fn rewrite(body: &Value, edits: &[(String, String)]) -> Result<Value, RewriteError> {
    let mut out = body.clone();
    for (pointer, text) in edits {
        match out.pointer_mut(pointer) {
            Some(v @ Value::String(_)) => *v = Value::String(text.clone()),
            _ => {
                return Err(RewriteError {
                    pointer: pointer.clone(),
                })
            }
        }
    }
    Ok(out)
}

/// The output-token limit a request declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLimit {
    /// A non-negative integer in this field.
    Declared {
        /// The field it came from.
        field: String,
        /// The limit.
        tokens: u64,
    },
    /// The field is present but not a non-negative integer.
    Invalid {
        /// The field.
        field: String,
    },
    /// None of the fields is set (or all are `null`).
    Absent,
}

/// The output-token limit: `preferred` if set, else `max_completion_tokens`,
/// `max_tokens` (OpenAI, and Anthropic's required field), `max_output_tokens`.
pub fn output_token_limit(body: &Value, preferred: &str) -> TokenLimit {
    for field in [
        preferred,
        "max_completion_tokens",
        "max_tokens",
        "max_output_tokens",
    ] {
        match body.get(field) {
            None | Some(Value::Null) => continue,
            Some(v) => {
                let tokens = v.as_u64().or_else(|| {
                    v.as_f64()
                        .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15)
                        .map(|f| f as u64)
                });
                return match tokens {
                    Some(tokens) => TokenLimit::Declared {
                        field: field.to_string(),
                        tokens,
                    },
                    None => TokenLimit::Invalid {
                        field: field.to_string(),
                    },
                };
            }
        }
    }
    TokenLimit::Absent
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn texts(body: &Value) -> Vec<(String, String, SegmentKind, String)> {
        request_segments(body)
            .into_iter()
            .map(|s| (s.pointer, s.role.to_string(), s.kind, s.text.to_string()))
            .collect()
    }

    #[test]
    fn openai_messages_parts_tools_and_results() {
        let body = json!({
            "model": "gpt-x",
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": [
                    {"type": "text", "text": "hello"},
                    {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "result text"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                "parameters": {"type": "object", "properties": {"a/b": {"type": "string", "description": "city"}}}}}]
        });
        let t = texts(&body);
        let ptrs: Vec<&str> = t.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            ptrs,
            [
                "/tools/0/function/name",
                "/tools/0/function/description",
                "/tools/0/function/parameters/properties/a~1b/description",
                "/messages/0/content",
                "/messages/1/content/0/text",
                "/messages/3/content",
            ]
        );
        assert_eq!(t[3].2, SegmentKind::System);
        assert_eq!(t[5].2, SegmentKind::ToolResult);
        assert_eq!(t[0].2, SegmentKind::ToolName);
        for (p, _, _, text) in &t {
            assert_eq!(body.pointer(p).and_then(Value::as_str), Some(text.as_str()));
        }
    }

    #[test]
    fn anthropic_system_blocks_and_tool_results() {
        let body = json!({
            "model": "claude", "max_tokens": 10,
            "system": [{"type": "text", "text": "sys"}],
            "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "x", "content": [{"type": "text", "text": "out"}]},
                    {"type": "tool_result", "tool_use_id": "y", "content": "plain"},
                    {"type": "text", "text": "q"}
                ]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "z", "name": "t", "input": {"s": "no"}}]}
            ]
        });
        let t = texts(&body);
        let got: Vec<(&str, &str)> = t.iter().map(|x| (x.0.as_str(), x.1.as_str())).collect();
        assert_eq!(
            got,
            [
                ("/system/0/text", "system"),
                ("/tools/0/name", "tools"),
                ("/tools/0/description", "tools"),
                ("/messages/0/content/0/content/0/text", "tool"),
                ("/messages/0/content/1/content", "tool"),
                ("/messages/0/content/2/text", "user"),
            ]
        );
        let body = json!({"system": "top", "messages": []});
        assert_eq!(texts(&body)[0].0, "/system");
    }

    #[test]
    fn completions_and_embeddings_and_odd_shapes() {
        assert_eq!(texts(&json!({"prompt": ["a", 5, "b"]})).len(), 2);
        assert_eq!(texts(&json!({"input": "e"}))[0].0, "/input");
        for odd in [
            json!(null),
            json!([1]),
            json!("s"),
            json!({"messages": "x"}),
            json!({"messages": [1, null]}),
        ] {
            assert!(request_segments(&odd).is_empty());
        }
        let mut deep = json!("d");
        for _ in 0..200 {
            deep = json!({"properties": deep, "description": "x"});
        }
        let n = request_segments(&json!({"tools": [{"name": "t", "parameters": deep}]})).len();
        assert!(n > 1 && n < 60, "{n}");
    }

    #[test]
    fn rewrite_keeps_structure() {
        let body = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
            {"type": "image_url", "image_url": {"url": "u"}}]}]});
        let out = rewrite(&body, &[("/messages/0/content/0/text".into(), "b".into())]).unwrap();
        assert_eq!(out["messages"][0]["content"][0]["text"], "b");
        assert_eq!(
            out["messages"][0]["content"][1],
            body["messages"][0]["content"][1]
        );
        assert!(rewrite(&body, &[("/messages/0/role".into(), "x".into())]).is_ok());
        assert!(rewrite(&body, &[("/messages/9".into(), "x".into())]).is_err());
    }

    #[test]
    fn token_limits() {
        assert_eq!(
            output_token_limit(
                &json!({"max_tokens": 5, "max_completion_tokens": 7}),
                "max_tokens"
            ),
            TokenLimit::Declared {
                field: "max_tokens".into(),
                tokens: 5
            }
        );
        assert_eq!(
            output_token_limit(&json!({"max_completion_tokens": 7}), "max_tokens"),
            TokenLimit::Declared {
                field: "max_completion_tokens".into(),
                tokens: 7
            }
        );
        assert!(matches!(
            output_token_limit(&json!({"max_tokens": -1}), "max_tokens"),
            TokenLimit::Invalid { .. }
        ));
        assert_eq!(
            output_token_limit(&json!({"max_tokens": null}), "max_tokens"),
            TokenLimit::Absent
        );
        assert_eq!(
            output_token_limit(&json!({}), "max_tokens"),
            TokenLimit::Absent
        );
    }
}
