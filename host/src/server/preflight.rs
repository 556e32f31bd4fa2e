//! Checks on the raw request before any check runs: size, JSON, shape,
//! depth, NaN, header charset. Each failure names the problem and the fix.
use axum::http::HeaderMap;
use serde_json::Value;

/// Maximum JSON nesting depth accepted.
pub const MAX_DEPTH: usize = 64;

/// Headers whose values must be clean text (they carry identity and policy).
const STRICT_HEADERS: &[&str] = &[
    "x-commit-owner",
    "x-agent-id",
    "x-policy-name",
    "x-policy-version",
    "x-classification",
    "x-caller-clearance",
    "x-signet-session",
    "x-signet-approval",
];

/// Why a request was rejected before the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Machine-readable kind.
    pub kind: &'static str,
    /// What is wrong and how to fix it.
    pub detail: String,
}

fn reject(kind: &'static str, detail: impl Into<String>) -> Rejection {
    Rejection {
        kind,
        detail: detail.into(),
    }
}

/// Headers as (lower-case name, value) pairs; identity headers must be
/// printable UTF-8 without control characters.
pub fn headers(map: &HeaderMap) -> Result<Vec<(String, String)>, Rejection> {
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let n = name.as_str();
        match value
            .to_str()
            .ok()
            .map(str::to_string)
            .or_else(|| String::from_utf8(value.as_bytes().to_vec()).ok())
        {
            Some(v) if STRICT_HEADERS.contains(&n) && v.chars().any(char::is_control) => {
                return Err(reject(
                    "invalid_header",
                    format!("header {n} contains control characters"),
                ));
            }
            Some(v) => out.push((n.to_string(), v)),
            None if STRICT_HEADERS.contains(&n) => {
                return Err(reject(
                    "invalid_header",
                    format!("header {n} is not valid UTF-8"),
                ));
            }
            None => {}
        }
    }
    Ok(out)
}

/// Parse the body: a JSON object, at most [`MAX_DEPTH`] deep, no NaN/Infinity.
pub fn body(raw: &[u8]) -> Result<Value, Rejection> {
    if raw.is_empty() {
        return Err(reject(
            "invalid_json",
            "the request body is empty; send a JSON object",
        ));
    }
    if nesting_exceeds(raw, MAX_DEPTH) {
        return Err(reject(
            "too_deep",
            format!("the request body nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    let value: Value = serde_json::from_slice(raw).map_err(|e| {
        if mentions_non_finite(raw) {
            reject(
                "nan_not_allowed",
                "NaN and Infinity are not JSON; send finite numbers",
            )
        } else {
            reject(
                "invalid_json",
                format!("the request body is not valid JSON: {e}"),
            )
        }
    })?;
    if !value.is_object() {
        return Err(reject(
            "not_an_object",
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Bracket depth outside strings, without recursion.
fn nesting_exceeds(raw: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &b in raw {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn mentions_non_finite(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    ["NaN", "Infinity"].iter().any(|t| text.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_each_kind() {
        assert_eq!(body(b"").unwrap_err().kind, "invalid_json");
        assert_eq!(body(b"{nope").unwrap_err().kind, "invalid_json");
        assert_eq!(body(b"[1,2]").unwrap_err().kind, "not_an_object");
        assert_eq!(body(b"{\"a\": NaN}").unwrap_err().kind, "nan_not_allowed");
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(64), "]".repeat(64));
        assert_eq!(body(deep.as_bytes()).unwrap_err().kind, "too_deep");
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(63), "]".repeat(63));
        assert!(body(ok.as_bytes()).is_ok());
        assert!(body(br#"{"s": "[[[[{{{{ \" ]]"}"#).is_ok());
    }

    #[test]
    fn identity_headers_must_be_clean() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-commit-owner",
            axum::http::HeaderValue::from_bytes(b"human:\xff").unwrap(),
        );
        assert_eq!(headers(&h).unwrap_err().kind, "invalid_header");
        let mut h = HeaderMap::new();
        h.insert(
            "x-other",
            axum::http::HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        h.insert(
            "x-commit-owner",
            axum::http::HeaderValue::from_static("human:a"),
        );
        assert_eq!(
            headers(&h).unwrap(),
            vec![("x-commit-owner".to_string(), "human:a".to_string())]
        );
    }
}
