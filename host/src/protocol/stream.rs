//! One streamed event, as the gate sees it: its semantic text deltas
//! (pointer-addressed, so a redaction rewrites the event in place), tool-call
//! fragments (held until the call is complete), finish and usage.
use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::response::{Api, TextSeg, TokenUsage};
use super::At;

/// A fragment of a streamed tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFragment {
    /// OpenAI choice index (0 for Anthropic).
    pub choice: u64,
    /// Tool-call index (OpenAI) or content-block index (Anthropic).
    pub index: u64,
    /// Call id, when this fragment carries it.
    pub id: Option<String>,
    /// Tool name, when this fragment carries it.
    pub name: Option<String>,
    /// Arguments text to append.
    pub arguments: String,
}

/// What one event means.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventInfo {
    /// Semantic text in this event.
    pub texts: Vec<TextSeg>,
    /// Tool-call fragments (the event must not reach the caller with them).
    pub fragments: Vec<ToolFragment>,
    /// Anthropic `content_block_stop` of this block index.
    pub block_stop: Option<u64>,
    /// A finish / stop reason, if this event carries one.
    pub finish_reason: Option<String>,
    /// Usage, if this event carries it.
    pub usage: Option<TokenUsage>,
    /// The terminal event of the stream (`message_stop`); OpenAI ends with `[DONE]` instead.
    pub is_stop: bool,
}

/// Interpret one event's JSON (`event` is the SSE `event:` name, used by Anthropic).
pub fn event_info(api: Api, event: Option<&str>, v: &Value) -> EventInfo {
    match api {
        Api::Messages => anthropic(event, v),
        _ => openai(v),
    }
}

fn openai(v: &Value) -> EventInfo {
    let mut info = EventInfo {
        usage: super::response::usage(v),
        ..Default::default()
    };
    let choices = v
        .get("choices")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (ci, c) in choices.iter().enumerate() {
        let choice = c.get("index").and_then(Value::as_u64).unwrap_or(ci as u64);
        for field in [
            "/delta/content",
            "/delta/refusal",
            "/delta/reasoning_content",
            "/text",
        ] {
            // The pointer string is built only for a text that is there.
            if let Some(s) = c.at(field).and_then(Value::as_str) {
                if !s.is_empty() {
                    info.texts.push(TextSeg {
                        pointer: format!("/choices/{ci}{field}"),
                        text: s.to_string(),
                    });
                }
            }
        }
        let calls = c
            .at("/delta/tool_calls")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (k, t) in calls.iter().enumerate() {
            info.fragments.push(ToolFragment {
                choice,
                index: t.get("index").and_then(Value::as_u64).unwrap_or(k as u64),
                id: t.get("id").and_then(Value::as_str).map(String::from),
                name: t
                    .at("/function/name")
                    .and_then(Value::as_str)
                    .map(String::from),
                arguments: t
                    .at("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        if let Some(r) = c.get("finish_reason").and_then(Value::as_str) {
            info.finish_reason = Some(r.to_string());
        }
    }
    info
}

/// The text deltas of an OpenAI stream event that carries nothing else the
/// gate acts on — no tool calls, refusal, reasoning, legacy `text`, finish
/// reason, usage or `message` — read without building a JSON tree (most
/// events of a stream are such). `None`: anything else (or not a JSON object,
/// a duplicate key, a non-string `content`): interpret the event in full with
/// [`event_info`], which gives the same texts for the events accepted here.
pub fn openai_plain_deltas(data: &str) -> Option<Vec<TextSeg>> {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow, default)]
        choices: Vec<Choice<'a>>,
        #[serde(default)]
        usage: Option<IgnoredAny>,
        #[serde(default)]
        message: Option<IgnoredAny>,
    }
    #[derive(Deserialize)]
    struct Choice<'a> {
        #[serde(borrow, default)]
        delta: Option<Delta<'a>>,
        #[serde(default)]
        text: Option<IgnoredAny>,
        #[serde(default)]
        finish_reason: Option<IgnoredAny>,
    }
    #[derive(Deserialize)]
    struct Delta<'a> {
        #[serde(borrow, default)]
        content: Option<Cow<'a, str>>,
        #[serde(default)]
        refusal: Option<IgnoredAny>,
        #[serde(default)]
        reasoning_content: Option<IgnoredAny>,
        #[serde(default)]
        tool_calls: Option<IgnoredAny>,
    }
    let ev: Event<'_> = json_object(data)?;
    if ev.usage.is_some() || ev.message.is_some() {
        return None;
    }
    let mut texts = Vec::new();
    for (ci, c) in ev.choices.into_iter().enumerate() {
        if c.text.is_some() || c.finish_reason.is_some() {
            return None;
        }
        let Some(d) = c.delta else { continue };
        if d.refusal.is_some() || d.reasoning_content.is_some() || d.tool_calls.is_some() {
            return None;
        }
        if let Some(text) = d.content.filter(|t| !t.is_empty()) {
            texts.push(TextSeg {
                pointer: format!("/choices/{ci}/delta/content"),
                text: text.into_owned(),
            });
        }
    }
    Some(texts)
}

/// `data` read as the JSON object `T`; `None` for anything else. A derived
/// struct would also accept a JSON array (fields in order), which no stream
/// event is, so only text that starts with `{` is read.
fn json_object<'a, T: Deserialize<'a>>(data: &'a str) -> Option<T> {
    if !data.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(data).ok()
}

/// The text of an Anthropic `content_block_delta` event (`text` or
/// `thinking`; not a tool call's `input_json_delta`), read without building
/// a JSON tree. `None`: any other event, or one this cannot read exactly as
/// [`event_info`] would (not an object, a duplicate key, a non-string field,
/// `usage` or `message` present).
pub fn anthropic_plain_deltas(event: Option<&str>, data: &str) -> Option<Vec<TextSeg>> {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        delta: Option<Delta<'a>>,
        #[serde(default)]
        usage: Option<IgnoredAny>,
        #[serde(default)]
        message: Option<IgnoredAny>,
    }
    #[derive(Deserialize)]
    struct Delta<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        text: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        thinking: Option<Cow<'a, str>>,
    }
    let ev: Event<'_> = json_object(data)?;
    let kind = ev.kind.as_deref().or(event);
    if kind != Some("content_block_delta") || ev.usage.is_some() || ev.message.is_some() {
        return None;
    }
    let d = ev.delta?;
    if d.kind.as_deref() == Some("input_json_delta") {
        return None;
    }
    let mut texts = Vec::new();
    for (field, text) in [("text", d.text), ("thinking", d.thinking)] {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            texts.push(TextSeg {
                pointer: format!("/delta/{field}"),
                text: text.into_owned(),
            });
        }
    }
    Some(texts)
}

fn anthropic(event: Option<&str>, v: &Value) -> EventInfo {
    let mut info = EventInfo::default();
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .or(event)
        .unwrap_or_default();
    let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
    match kind {
        "content_block_start" => {
            let b = v.get("content_block").cloned().unwrap_or(Value::Null);
            match b.get("type").and_then(Value::as_str) {
                Some("tool_use") | Some("server_tool_use") => info.fragments.push(ToolFragment {
                    choice: 0,
                    index,
                    id: b.get("id").and_then(Value::as_str).map(String::from),
                    name: b.get("name").and_then(Value::as_str).map(String::from),
                    arguments: String::new(),
                }),
                _ => {
                    for f in ["text", "thinking"] {
                        let pointer = format!("/content_block/{f}");
                        if let Some(s) = v
                            .at(&pointer)
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                        {
                            info.texts.push(TextSeg {
                                pointer,
                                text: s.to_string(),
                            });
                        }
                    }
                }
            }
        }
        "content_block_delta" => match v.at("/delta/type").and_then(Value::as_str) {
            Some("input_json_delta") => info.fragments.push(ToolFragment {
                choice: 0,
                index,
                id: None,
                name: None,
                arguments: v
                    .at("/delta/partial_json")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }),
            _ => {
                for f in ["text", "thinking"] {
                    let pointer = format!("/delta/{f}");
                    if let Some(s) = v
                        .at(&pointer)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                    {
                        info.texts.push(TextSeg {
                            pointer,
                            text: s.to_string(),
                        });
                    }
                }
            }
        },
        "content_block_stop" => info.block_stop = Some(index),
        "message_delta" => {
            info.finish_reason = v
                .at("/delta/stop_reason")
                .and_then(Value::as_str)
                .map(String::from);
            info.usage = v
                .get("usage")
                .and_then(|u| u.get("output_tokens"))
                .and_then(Value::as_u64)
                .map(|c| TokenUsage {
                    prompt: v
                        .at("/usage/input_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                    completion: c,
                });
        }
        "message_start" => info.usage = super::response::usage(v),
        "message_stop" => info.is_stop = true,
        _ => {}
    }
    info
}

/// Remove OpenAI tool-call deltas from an event (they are re-emitted whole
/// once gated). Returns true if anything is left worth sending.
pub fn strip_openai_tool_calls(v: &mut Value) -> bool {
    let mut meaningful = v.get("usage").is_some_and(|u| !u.is_null());
    if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
        for c in choices {
            if let Some(d) = c.get_mut("delta").and_then(Value::as_object_mut) {
                d.remove("tool_calls");
                meaningful |= d.iter().any(|(k, val)| k != "role" && !val.is_null())
                    || d.contains_key("role");
            }
            meaningful |= c.get("finish_reason").is_some_and(|f| !f.is_null());
        }
    }
    meaningful
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_plain_deltas_agree_with_the_full_reading() {
        let plain = [
            (
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \u00e9"}}"#,
            ),
            (
                Some("content_block_delta"),
                r#"{"index":1,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            ),
            (
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}"#,
            ),
        ];
        for (event, data) in plain {
            let v: Value = serde_json::from_str(data).unwrap();
            let full = event_info(Api::Messages, event, &v);
            assert_eq!(
                anthropic_plain_deltas(event, data),
                Some(full.texts),
                "{data}"
            );
        }
        let full_only = [
            (
                None,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
            ),
            (
                None,
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"x"}}"#,
            ),
            (
                None,
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
            ),
            (Some("content_block_delta"), r#"{"type":"message_stop"}"#),
            (
                None,
                r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":["x"]}}"#,
            ),
            (
                None,
                r#"{"type":"content_block_delta","delta":{"text":"a","text":"b"}}"#,
            ),
            (
                None,
                r#"{"type":"content_block_delta","usage":{"output_tokens":1},"delta":{"text":"a"}}"#,
            ),
            (None, "[1]"),
        ];
        for (event, data) in full_only {
            assert_eq!(anthropic_plain_deltas(event, data), None, "{data}");
        }
    }

    #[test]
    fn plain_deltas_agree_with_the_full_reading() {
        let plain = [
            r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi \"there\" é"},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}],"usage":null}"#,
            r#"{"choices":[]}"#,
            r#"{"x":{"choices":[1]},"choices":[{"delta":{"content":null,"refusal":null}}]}"#,
        ];
        for data in plain {
            let v: Value = serde_json::from_str(data).unwrap();
            let full = event_info(Api::Chat, None, &v);
            assert_eq!(openai_plain_deltas(data), Some(full.texts), "{data}");
        }
        // Everything else goes the full way.
        let full_only = [
            r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}"#,
            r#"{"choices":[{"delta":{"refusal":"no"}}]}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#,
            r#"{"choices":[{"text":"legacy"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
            r#"{"choices":[{"delta":{"content":["not","a","string"]}}]}"#,
            r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
            r#"[{"delta":{"content":"x"}}]"#,
            "not json",
        ];
        for data in full_only {
            assert_eq!(openai_plain_deltas(data), None, "{data}");
        }
    }
    use serde_json::json;

    #[test]
    fn openai_deltas() {
        let mut v = json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "Hel", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "refund", "arguments": "{\"a"}}]},
            "finish_reason": null}]});
        let i = event_info(Api::Chat, None, &v);
        assert_eq!(i.texts[0].text, "Hel");
        assert_eq!(i.fragments[0].id.as_deref(), Some("call_1"));
        assert_eq!(i.fragments[0].arguments, "{\"a");
        assert!(strip_openai_tool_calls(&mut v));
        assert!(v["choices"][0]["delta"].get("tool_calls").is_none());
        let mut only_tool = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "finish_reason": null}]});
        assert!(!strip_openai_tool_calls(&mut only_tool));
        let fin = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 2}});
        let i = event_info(Api::Chat, None, &fin);
        assert_eq!(
            (i.finish_reason.as_deref(), i.usage.map(|u| u.completion)),
            (Some("stop"), Some(2))
        );
    }

    #[test]
    fn anthropic_events() {
        let start = json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "refund", "input": {}}});
        let i = event_info(Api::Messages, Some("content_block_start"), &start);
        assert_eq!(
            (i.fragments[0].index, i.fragments[0].name.as_deref()),
            (1, Some("refund"))
        );
        let d = json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"amount\": 5"}});
        assert_eq!(
            event_info(Api::Messages, None, &d).fragments[0].arguments,
            "{\"amount\": 5"
        );
        let t = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}});
        assert_eq!(
            event_info(Api::Messages, None, &t).texts[0].pointer,
            "/delta/text"
        );
        let md = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 12}});
        let i = event_info(Api::Messages, None, &md);
        assert_eq!(
            (i.finish_reason.as_deref(), i.usage.unwrap().completion),
            (Some("end_turn"), 12)
        );
        assert!(event_info(Api::Messages, None, &json!({"type": "message_stop"})).is_stop);
        assert_eq!(
            event_info(
                Api::Messages,
                None,
                &json!({"type": "content_block_stop", "index": 1})
            )
            .block_stop,
            Some(1)
        );
    }
}
