//! Wire formats: OpenAI and Anthropic request/response shapes, SSE parsing,
//! and the extraction of semantic text and tool calls that checks look at.
//! Depends on serde only.
//!
//! | file | owns |
//! |---|---|
//! | `response.rs` | unary responses: text segments, tool calls, usage, rewriting |
//! | `stream.rs` | one streamed event: text deltas, tool-call fragments, finish, usage |
//! | `sse.rs` | incremental SSE parsing and encoding |
//! | `text.rs` | semantic text of a request (messages, system prompts, tool definitions and results) and per-part rewriting |
pub mod response;
pub mod sse;
pub mod stream;
pub mod text;

use serde_json::Value;

/// `v.pointer(p)` without the allocation `Value::pointer` makes for every
/// path component (it unescapes each one into a new `String`): the hot paths
/// look up fixed paths on every streamed event. Components holding a `~`
/// escape go through `Value::pointer`.
pub fn lookup<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(v);
    }
    let rest = pointer.strip_prefix('/')?;
    if rest.contains('~') {
        return v.pointer(pointer);
    }
    rest.split('/').try_fold(v, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => index(key).and_then(|i| items.get(i)),
        _ => None,
    })
}

/// [`lookup`] as a method, for chains: `v.at("/delta/content")`.
pub trait At {
    /// See [`lookup`].
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        lookup(self, pointer)
    }
}

/// An array index as RFC 6901 spells it: digits, no leading zero, no sign.
fn index(key: &str) -> Option<usize> {
    let digits = key.bytes().all(|b| b.is_ascii_digit());
    if !digits || key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    key.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::lookup;

    #[test]
    fn lookup_agrees_with_value_pointer() {
        let v = json!({
            "choices": [{"delta": {"content": "hi", "a/b": 1, "m~n": 2}}, {"text": "x"}],
            "": {"empty": true},
            "0": "zero"
        });
        for p in [
            "",
            "/choices/0/delta/content",
            "/choices/1/text",
            "/choices/01/text",
            "/choices/+1/text",
            "/choices/2/text",
            "/choices/0/delta/a~1b",
            "/choices/0/delta/m~0n",
            "/choices/x",
            "//empty",
            "/0",
            "/choices/0/delta/content/extra",
            "no-slash",
        ] {
            assert_eq!(lookup(&v, p), v.pointer(p), "{p}");
        }
    }
}
