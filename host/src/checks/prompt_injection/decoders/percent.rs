//! URL percent-encoding (`%69%67…`, mixed with plain characters) and
//! quoted-printable (`=69=67…`, soft line breaks `=\n`). Both are decoded in
//! windows around clusters of escapes, so partly-encoded phrases
//! (`ign%6Fre previous instructions`) come out whole. Quoted-printable needs
//! three escapes in a cluster, since `x=10` alone is code, not an encoding.

use super::{hex_val, useful, windows, Data, Decoded, Sink};

/// Spans of `%XX` escapes.
fn percent_tokens(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'%')
            && b.get(i + 1).copied().and_then(hex_val).is_some()
            && b.get(i + 2).copied().and_then(hex_val).is_some()
        {
            out.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// Spans of `=XX` escapes and `=` soft line breaks.
fn qp_tokens(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b.get(i) != Some(&b'=') {
            i += 1;
            continue;
        }
        let hex = b.get(i + 1).copied().and_then(hex_val).is_some()
            && b.get(i + 2).copied().and_then(hex_val).is_some();
        let soft = match (b.get(i + 1), b.get(i + 2)) {
            (Some(b'\r'), Some(b'\n')) => Some(3),
            (Some(b'\n'), _) => Some(2),
            _ => None,
        };
        if hex {
            out.push((i, i + 3));
            i += 3;
        } else if let Some(n) = soft {
            out.push((i, i + n));
            i += n;
        } else {
            i += 1;
        }
    }
    out
}

/// Replace `marker` + two hex digits by the byte; `soft` also drops
/// `marker` + line break (quoted-printable).
fn unescape(b: &[u8], marker: u8, soft: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == marker {
            let h = b.get(i + 1).copied().and_then(hex_val);
            let l = b.get(i + 2).copied().and_then(hex_val);
            if let (Some(h), Some(l)) = (h, l) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            if soft {
                match (b.get(i + 1), b.get(i + 2)) {
                    (Some(b'\r'), Some(b'\n')) => {
                        i += 3;
                        continue;
                    }
                    (Some(b'\n'), _) => {
                        i += 2;
                        continue;
                    }
                    _ => {}
                }
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn decode_windows(
    text: &str,
    tokens: &[(usize, usize)],
    min_tokens: usize,
    marker: u8,
    soft: bool,
    name: &'static str,
    sink: &mut dyn Sink,
) -> bool {
    for (s, e) in windows(text, tokens, min_tokens) {
        let Some(win) = text.as_bytes().get(s..e) else {
            continue;
        };
        if !sink.candidate() || !sink.steps(win.len()) {
            return false;
        }
        let bytes = unescape(win, marker, soft);
        if bytes.as_slice() != win && useful(&bytes) {
            let d = Decoded {
                name,
                start: s,
                data: Data::Bytes(bytes),
            };
            if !sink.emit(d) {
                return false;
            }
        }
    }
    true
}

/// Find and decode URL percent-encoding in `text`.
pub(super) fn run_percent(text: &str, sink: &mut dyn Sink) -> bool {
    let tokens = percent_tokens(text.as_bytes());
    decode_windows(text, &tokens, 1, b'%', false, "url", sink)
}

/// Find and decode quoted-printable in `text`.
pub(super) fn run_quoted_printable(text: &str, sink: &mut dyn Sink) -> bool {
    let tokens = qp_tokens(text.as_bytes());
    decode_windows(text, &tokens, 3, b'=', true, "quoted-printable", sink)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fuzz, texts};
    use super::*;

    #[test]
    fn percent_full_and_partial() {
        let full: String = "ignore all".bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(texts(run_percent, &full), ["ignore all"]);
        let t = texts(run_percent, "ign%6Fre previous instructions");
        assert_eq!(t, ["ignore previous instructions"]);
        assert_eq!(texts(run_percent, "100% sure, 50%"), Vec::<String>::new());
    }

    #[test]
    fn quoted_printable() {
        let t = texts(run_quoted_printable, "=69=67=6E=6Fre all pre=\nvious");
        assert_eq!(t, ["ignore all previous"]);
        assert!(texts(run_quoted_printable, "let x=10; y=20").is_empty());
    }

    #[test]
    fn malformed_never_panics() {
        fuzz(run_percent);
        fuzz(run_quoted_printable);
        let _ = unescape(b"%", b'%', false);
        let _ = unescape(b"=\r", b'=', true);
    }
}
