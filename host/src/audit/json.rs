//! A small, strict JSON reader for audit lines.
//!
//! Why not `serde_json::Value`: a verifier must recompute exactly the bytes Python
//! signed, and `Value` loses information Python keeps (integers wider than 64 bits;
//! serde_json's default float parser may be one ULP off). This reader keeps integers
//! as their digits and parses floats with the correctly rounded `str::parse`.
//! It also offers a validating `skip_*` mode that the verifier's fast path uses to
//! find fields without building a tree.
//!
//! Grammar: RFC 8259. `NaN`/`Infinity` (which Python's `json.loads` would accept and
//! signet-sign then rejects), raw control characters in strings, lone surrogates and
//! nesting deeper than [`MAX_DEPTH`] are errors. Duplicate object keys are kept; the
//! canonical writer applies Python's "last one wins".

use std::borrow::Cow;

use super::canonical::{write_py_float, write_str};

/// Deepest nesting accepted (serde_json uses the same limit).
pub const MAX_DEPTH: usize = 128;

/// A parsed JSON value borrowing from the line it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer, kept as its (validated) decimal text.
    Int(&'a str),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// An array.
    Arr(Vec<Json<'a>>),
    /// An object, members in file order (duplicates kept).
    Obj(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// A syntax error with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {what}")]
pub struct JsonError {
    /// Byte offset into the line.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Parse one complete JSON document (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Json<'_>, JsonError> {
    let mut p = Parser::new(text);
    let value = p.value()?;
    p.ws();
    if p.pos != p.b.len() {
        return Err(p.err("trailing characters after the JSON value"));
    }
    Ok(value)
}

/// Cursor over a JSON text.
pub struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    /// Current byte offset.
    pub pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    /// Start at offset 0 of `s`.
    pub fn new(s: &'a str) -> Self {
        Self {
            s,
            b: s.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    fn err(&self, what: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            what,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Skip JSON whitespace.
    pub fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consume `byte` (after whitespace) or fail with `what`.
    pub fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), JsonError> {
        self.ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// After a member or element: `Ok(true)` on `,`, `Ok(false)` on `close`.
    pub fn next_or_close(&mut self, close: u8) -> Result<bool, JsonError> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(self.err("expected ',' or a closing bracket")),
        }
    }

    /// After `{`: `Ok(false)` and consume `}` if the object is empty.
    pub fn object_has_members(&mut self) -> Result<bool, JsonError> {
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(false);
        }
        Ok(true)
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        Ok(())
    }

    /// Parse any value into a tree.
    pub fn value(&mut self) -> Result<Json<'a>, JsonError> {
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                self.enter()?;
                let mut members = Vec::new();
                if self.object_has_members()? {
                    loop {
                        let key = self.string()?;
                        self.expect(b':', "expected ':' after an object key")?;
                        members.push((key, self.value()?));
                        if !self.next_or_close(b'}')? {
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Ok(Json::Obj(members))
            }
            Some(b'[') => {
                self.pos += 1;
                self.enter()?;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        if !self.next_or_close(b']')? {
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Ok(Json::Arr(items))
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a JSON value")),
        }
    }

    fn literal(&mut self, word: &'static str, value: Json<'a>) -> Result<Json<'a>, JsonError> {
        if self.b[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.err("invalid literal (NaN and Infinity are not allowed)"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json<'a>, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.digits() {
            0 => return Err(self.err("expected digits")),
            n if n > 1 && self.b[int_start] == b'0' => {
                return Err(self.err("leading zero in a number"))
            }
            _ => {}
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            is_float = true;
            if self.digits() == 0 {
                return Err(self.err("expected digits after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            is_float = true;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected digits in the exponent"));
            }
        }
        let text = &self.s[start..self.pos];
        if !is_float {
            return Ok(Json::Int(text));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Json::Float(f)),
            _ => Err(JsonError {
                offset: start,
                what: "number out of range",
            }),
        }
    }

    /// Skip a string (cursor on its opening quote); returns whether it had escapes.
    pub fn skip_string(&mut self) -> Result<bool, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string"));
        }
        self.pos += 1;
        let mut escaped = false;
        loop {
            let Some(i) = find_string_special(self.b, self.pos) else {
                self.pos = self.b.len();
                return Err(self.err("unterminated string"));
            };
            self.pos = i;
            match self.b[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.escape(&mut None)?;
                }
                _ => return Err(self.err("raw control character in a string")),
            }
        }
    }

    /// Parse a string (cursor on or before its opening quote, after whitespace).
    pub fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.ws();
        let start = self.pos + 1;
        if !self.skip_string()? {
            return Ok(Cow::Borrowed(&self.s[start..self.pos - 1]));
        }
        // Second pass to unescape; rare in audit logs.
        let end = self.pos;
        self.pos = start;
        let mut out = Some(String::new());
        while self.pos < end - 1 {
            let rest = &self.s[self.pos..end - 1];
            let i = rest.find('\\').unwrap_or(rest.len());
            if let Some(o) = out.as_mut() {
                o.push_str(&rest[..i]);
            }
            self.pos += i;
            if self.pos < end - 1 {
                self.escape(&mut out)?;
            }
        }
        self.pos = end;
        Ok(Cow::Owned(out.unwrap_or_default()))
    }

    /// Decode one escape (cursor on the backslash), pushing to `out` if given.
    fn escape(&mut self, out: &mut Option<String>) -> Result<(), JsonError> {
        let c = self.b.get(self.pos + 1).copied();
        self.pos += 2;
        let ch = match c {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hi = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if self.b.get(self.pos) != Some(&b'\\')
                        || self.b.get(self.pos + 1) != Some(&b'u')
                    {
                        return Err(self.err("lone surrogate in a \\u escape"));
                    }
                    self.pos += 2;
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(self.err("lone surrogate in a \\u escape"));
                    }
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                char::from_u32(code).ok_or_else(|| self.err("lone surrogate in a \\u escape"))?
            }
            _ => return Err(self.err("invalid escape")),
        };
        if let Some(o) = out.as_mut() {
            o.push(ch);
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .b
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.err("bad hex digit in a \\u escape"))?;
            v = v * 16 + n;
        }
        self.pos += 4;
        Ok(v)
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Eight bytes at `i` as a little-endian word (`None` past the end).
fn word(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..i + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map(u64::from_le_bytes)
}

/// Does any byte of `v` equal `byte`? (SWAR; exact as a yes/no answer.)
fn has_byte(v: u64, byte: u8) -> bool {
    let x = v ^ (LO * u64::from(byte));
    x.wrapping_sub(LO) & !x & HI != 0
}

/// Index of the first `"`, `\` or control byte at or after `from`. Checks eight
/// bytes per step; most of an audit line is plain string content.
pub fn find_string_special(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(v) = word(b, i) {
        // "any byte < 0x20": exact for a yes/no answer, like `has_byte`.
        let control = v.wrapping_sub(LO * 0x20) & !v & HI != 0;
        if control || has_byte(v, b'"') || has_byte(v, b'\\') {
            break;
        }
        i += 8;
    }
    let rest = b.get(i..)?;
    rest.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| p + i)
}

/// Index of the first `"` or `\\` at or after `from` (SWAR).
pub fn find_quote_or_backslash(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(v) = word(b, i) {
        if has_byte(v, b'"') || has_byte(v, b'\\') {
            break;
        }
        i += 8;
    }
    let rest = b.get(i..)?;
    rest.iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|p| p + i)
}

/// Index of the first `byte` at or after `from` (SWAR, for splitting lines).
pub fn find_byte(b: &[u8], byte: u8, from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(v) = word(b, i) {
        if has_byte(v, byte) {
            break;
        }
        i += 8;
    }
    let rest = b.get(i..)?;
    rest.iter().position(|&c| c == byte).map(|p| p + i)
}

/// Append the canonical form of a parsed value (see [`super::canonical`]).
pub fn write_canonical(value: &Json<'_>, out: &mut Vec<u8>) {
    write_json(value, out, None, 0);
}

/// Pretty form for humans (`signet audit show`): canonical scalars, sorted keys,
/// two-space indent.
pub fn to_pretty(value: &Json<'_>) -> String {
    let mut out = Vec::new();
    write_json(value, &mut out, Some(2), 0);
    String::from_utf8_lossy(&out).into_owned()
}

/// Members sorted by key with Python's "last duplicate wins".
pub fn sorted_members<'v, 'a>(
    members: &'v [(Cow<'a, str>, Json<'a>)],
) -> Vec<&'v (Cow<'a, str>, Json<'a>)> {
    let mut sorted: Vec<_> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes())); // stable
    let mut out: Vec<&(Cow<'a, str>, Json<'a>)> = Vec::with_capacity(sorted.len());
    for m in sorted {
        match out.last_mut() {
            Some(last) if last.0 == m.0 => *last = m,
            _ => out.push(m),
        }
    }
    out
}

fn newline(out: &mut Vec<u8>, indent: Option<usize>, level: usize) {
    if let Some(n) = indent {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', n * level));
    }
}

fn write_json(value: &Json<'_>, out: &mut Vec<u8>, indent: Option<usize>, level: usize) {
    match value {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // Python's int() normalises "-0" to "0"; JSON allows no other variant.
        Json::Int(text) => {
            out.extend_from_slice(if *text == "-0" { b"0" } else { text.as_bytes() })
        }
        // Finite by construction (the parser refuses out-of-range numbers).
        Json::Float(f) => {
            let _ = write_py_float(*f, out);
        }
        Json::Str(s) => write_str(s, out),
        Json::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, indent, level + 1);
                write_json(item, out, indent, level + 1);
            }
            if !items.is_empty() {
                newline(out, indent, level);
            }
            out.push(b']');
        }
        Json::Obj(members) => {
            let sorted = sorted_members(members);
            out.push(b'{');
            for (i, (key, item)) in sorted.iter().map(|m| (&m.0, &m.1)).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, indent, level + 1);
                write_str(key, out);
                out.push(b':');
                if indent.is_some() {
                    out.push(b' ');
                }
                write_json(item, out, indent, level + 1);
            }
            if !sorted.is_empty() {
                newline(out, indent, level);
            }
            out.push(b'}');
        }
    }
}

impl<'a> Json<'a> {
    /// The member `key` of an object (last duplicate wins), if any.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Obj(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Canonical text of this value (used for filters and display).
    pub fn canonical(&self) -> String {
        let mut out = Vec::new();
        write_canonical(self, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        parse(text).unwrap().canonical()
    }

    #[test]
    fn reparse_matches_python_canonical_form() {
        // Python: json.dumps(json.loads(x), sort_keys=True, separators=(",",":"), ensure_ascii=False)
        assert_eq!(
            canon(r#" { "b" : [1, 2.50, -0, 1E5, 1e-5], "a":"\u00e9\ud83d\ude00\/" } "#),
            "{\"a\":\"é😀/\",\"b\":[1,2.5,0,100000.0,1e-05]}"
        );
        assert_eq!(canon(r#"{"a":1,"a":2}"#), r#"{"a":2}"#);
        assert_eq!(canon(r#""a\\b\"c\n\t\u0041""#), r#""a\\b\"c\n\tA""#);
        assert_eq!(
            canon("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
        assert_eq!(canon(r#""\u0001\u001F""#), r#""\u0001\u001f""#);
    }

    #[test]
    fn rejects_what_signet_sign_rejects() {
        for bad in [
            "NaN",
            "[Infinity]",
            "-Infinity",
            "1e400",
            "\"\\ud800\"",
            "\"a\u{1}\"",
            "01",
            "[1,]",
            "{\"a\"}",
            "\"abc",
            "{} x",
            "1.",
            "tru",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn word_scans_find_the_first_match() {
        let text = b"abcdefghijklmnopqrstuvwxyz\"0123456789\\\n";
        assert_eq!(find_string_special(text, 0), Some(26));
        assert_eq!(find_string_special(text, 27), Some(37));
        assert_eq!(find_string_special(b"abcdefghij\x01k", 0), Some(10));
        assert_eq!(
            find_string_special("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}x".as_bytes(), 0),
            None
        );
        assert_eq!(find_byte(text, b'\n', 0), Some(38));
        assert_eq!(find_byte(text, b'\n', 39), None);
        for n in 0..40 {
            let mut v = vec![b'a'; n];
            v.push(b'"');
            assert_eq!(find_string_special(&v, 0), Some(n));
            assert_eq!(find_byte(&v, b'"', 0), Some(n));
            assert_eq!(find_quote_or_backslash(&v, 0), Some(n));
            v[n] = b'\\';
            assert_eq!(find_quote_or_backslash(&v, 0), Some(n));
        }
    }

    #[test]
    fn pretty_output_is_indented_and_sorted() {
        let v = parse(r#"{"b":{"y":[1,{}],"x":[]},"a":0.1}"#).unwrap();
        assert_eq!(
            to_pretty(&v),
            "{\n  \"a\": 0.1,\n  \"b\": {\n    \"x\": [],\n    \"y\": [\n      1,\n      {}\n    ]\n  }\n}"
        );
    }
}
