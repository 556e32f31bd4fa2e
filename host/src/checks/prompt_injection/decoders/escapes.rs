//! Backslash escapes as written in JSON, JavaScript, Python, C and PCRE:
//! `\uXXXX` (with UTF-16 surrogate pairs), ES6 `\u{…}`, `\UXXXXXXXX`,
//! `\xXX` and `\x{…}` (bytes, so `\xc3\xa9` is UTF-8 for `é`), three-digit
//! octal `\151`, and the simple `\n \t \r \" \' \\ \/` inside a window that
//! has at least one real escape. Decoded in windows around clusters.

use super::{hex_val, windows, Data, Decoded, Sink};

enum Esc {
    /// A code point (from `\u`, `\U`, `\u{}`), or a UTF-16 unit.
    Unit(u32),
    /// A raw byte (from `\x`, octal).
    Byte(u8),
    /// A simple escape.
    Simple(u8),
}

fn hex_digits(b: &[u8], from: usize, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for k in 0..n {
        v = v * 16 + u32::from(hex_val(*b.get(from + k)?)?);
    }
    Some(v)
}

/// `\{…}` with 1..=6 hex digits starting at `from` (which holds `{`).
fn braced(b: &[u8], from: usize) -> Option<(usize, u32)> {
    if b.get(from) != Some(&b'{') {
        return None;
    }
    let n = (1..=6)
        .take_while(|&k| b.get(from + k).copied().and_then(hex_val).is_some())
        .count();
    if n == 0 || b.get(from + 1 + n) != Some(&b'}') {
        return None;
    }
    Some((from + n + 2, hex_digits(b, from + 1, n)?))
}

/// An escape at `i` (which holds `\`): `(end, escape)`.
fn escape(b: &[u8], i: usize) -> Option<(usize, Esc)> {
    let kind = *b.get(i + 1)?;
    match kind {
        b'u' => braced(b, i + 2)
            .map(|(e, v)| (e, Esc::Unit(v)))
            .or_else(|| hex_digits(b, i + 2, 4).map(|v| (i + 6, Esc::Unit(v)))),
        b'U' => hex_digits(b, i + 2, 8).map(|v| (i + 10, Esc::Unit(v))),
        b'x' => braced(b, i + 2)
            .map(|(e, v)| (e, Esc::Unit(v)))
            .or_else(|| hex_digits(b, i + 2, 2).map(|v| (i + 4, Esc::Byte((v & 0xFF) as u8)))),
        b'0'..=b'3' => {
            let d = |k: usize| {
                b.get(i + k)
                    .filter(|c| matches!(c, b'0'..=b'7'))
                    .map(|c| c - b'0')
            };
            let (a, m, l) = (d(1)?, d(2)?, d(3)?);
            Some((i + 4, Esc::Byte(a << 6 | m << 3 | l)))
        }
        b'n' => Some((i + 2, Esc::Simple(b'\n'))),
        b't' => Some((i + 2, Esc::Simple(b'\t'))),
        b'r' => Some((i + 2, Esc::Simple(b'\r'))),
        b'"' | b'\'' | b'\\' | b'/' => Some((i + 2, Esc::Simple(kind))),
        _ => None,
    }
}

fn is_real(e: &Esc) -> bool {
    !matches!(e, Esc::Simple(_))
}

fn push_unit(out: &mut Vec<u8>, v: u32) {
    let c = char::from_u32(v).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut high: Option<u32> = None;
    while let Some(&c) = b.get(i) {
        let esc = if c == b'\\' { escape(b, i) } else { None };
        let Some((end, e)) = esc else {
            if let Some(h) = high.take() {
                push_unit(&mut out, h);
            }
            out.push(c);
            i += 1;
            continue;
        };
        match e {
            Esc::Unit(v) if (0xD800..0xDC00).contains(&v) => {
                if let Some(h) = high.replace(v) {
                    push_unit(&mut out, h);
                }
            }
            Esc::Unit(v) if (0xDC00..0xE000).contains(&v) => match high.take() {
                Some(h) => push_unit(&mut out, 0x10000 + ((h - 0xD800) << 10) + (v - 0xDC00)),
                None => push_unit(&mut out, v),
            },
            other => {
                if let Some(h) = high.take() {
                    push_unit(&mut out, h);
                }
                match other {
                    Esc::Unit(v) => push_unit(&mut out, v),
                    Esc::Byte(x) | Esc::Simple(x) => out.push(x),
                }
            }
        }
        i = end;
    }
    if let Some(h) = high {
        push_unit(&mut out, h);
    }
    out
}

/// Find and decode backslash escapes in `text`.
pub(super) fn run(text: &str, sink: &mut dyn Sink) -> bool {
    let b = text.as_bytes();
    let toks: Vec<(usize, usize)> = text
        .match_indices('\\')
        .filter_map(|(i, _)| {
            escape(b, i)
                .filter(|(_, e)| is_real(e))
                .map(|(e, _)| (i, e))
        })
        .collect();
    for (s, e) in windows(text, &toks, 1) {
        let Some(win) = b.get(s..e) else { continue };
        if !sink.candidate() || !sink.steps(win.len()) {
            return false;
        }
        let d = Decoded {
            name: "escapes",
            start: s,
            data: Data::Bytes(unescape(win)),
        };
        if !sink.emit(d) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fuzz, texts};
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(texts(run, r"\u0069\u{67}\x6e\x{6f}\162e"), ["ignore"]);
        assert_eq!(texts(run, r"caf\xc3\xa9\n\ud83d\ude00"), ["café\n😀"]);
        assert_eq!(texts(run, r"\U0001F600 ok"), ["😀 ok"]);
        assert!(texts(run, r"C:\path\to\file and \n only").is_empty());
    }

    #[test]
    fn malformed_never_panics() {
        fuzz(run);
        for s in [
            r"\",
            r"\u",
            r"\u{",
            r"\u{110000}",
            r"\ud800",
            r"\udc00x",
            r"\x{}",
            r"\3",
        ] {
            let _ = texts(run, s);
        }
    }
}
