//! HTML character references: decimal (`&#105;`), hex (`&#x69;`), with or
//! without the closing `;`, and the named entities that matter here (markup
//! characters, punctuation, accented Latin letters, Greek letters used as
//! lookalikes, and the invisible `&zwj;`/`&shy;` family). Decoded in windows
//! around clusters of references, like percent-encoding.

use super::{windows, Data, Decoded, Sink};

/// Named entities: name → character. Sorted for binary search.
static NAMED: &[(&str, char)] = &[
    ("AElig", 'Æ'),
    ("Aacute", 'Á'),
    ("Agrave", 'À'),
    ("Alpha", 'Α'),
    ("Auml", 'Ä'),
    ("Beta", 'Β'),
    ("Ccedil", 'Ç'),
    ("Eacute", 'É'),
    ("Epsilon", 'Ε'),
    ("Eta", 'Η'),
    ("Iacute", 'Í'),
    ("Iota", 'Ι'),
    ("Kappa", 'Κ'),
    ("Mu", 'Μ'),
    ("Ntilde", 'Ñ'),
    ("Nu", 'Ν'),
    ("Oacute", 'Ó'),
    ("Omicron", 'Ο'),
    ("Ouml", 'Ö'),
    ("Rho", 'Ρ'),
    ("Tau", 'Τ'),
    ("Uacute", 'Ú'),
    ("Upsilon", 'Υ'),
    ("Uuml", 'Ü'),
    ("Zeta", 'Ζ'),
    ("aacute", 'á'),
    ("acirc", 'â'),
    ("aelig", 'æ'),
    ("agrave", 'à'),
    ("alpha", 'α'),
    ("amp", '&'),
    ("apos", '\''),
    ("aring", 'å'),
    ("ast", '*'),
    ("atilde", 'ã'),
    ("auml", 'ä'),
    ("bdquo", '„'),
    ("bull", '•'),
    ("ccedil", 'ç'),
    ("colon", ':'),
    ("comma", ','),
    ("copy", '©'),
    ("dollar", '$'),
    ("eacute", 'é'),
    ("ecirc", 'ê'),
    ("egrave", 'è'),
    ("epsilon", 'ε'),
    ("equals", '='),
    ("euml", 'ë'),
    ("excl", '!'),
    ("gt", '>'),
    ("hellip", '…'),
    ("hyphen", '‐'),
    ("iacute", 'í'),
    ("icirc", 'î'),
    ("iexcl", '¡'),
    ("igrave", 'ì'),
    ("iota", 'ι'),
    ("iquest", '¿'),
    ("iuml", 'ï'),
    ("kappa", 'κ'),
    ("laquo", '«'),
    ("ldquo", '“'),
    ("lowbar", '_'),
    ("lpar", '('),
    ("lrm", '\u{200E}'),
    ("lsqb", '['),
    ("lsquo", '‘'),
    ("lt", '<'),
    ("mdash", '—'),
    ("middot", '·'),
    ("nbsp", '\u{A0}'),
    ("ndash", '–'),
    ("newline", '\n'),
    ("ntilde", 'ñ'),
    ("nu", 'ν'),
    ("num", '#'),
    ("oacute", 'ó'),
    ("ocirc", 'ô'),
    ("ograve", 'ò'),
    ("omicron", 'ο'),
    ("oslash", 'ø'),
    ("otilde", 'õ'),
    ("ouml", 'ö'),
    ("percnt", '%'),
    ("period", '.'),
    ("plus", '+'),
    ("quest", '?'),
    ("quot", '"'),
    ("raquo", '»'),
    ("rdquo", '”'),
    ("reg", '®'),
    ("rho", 'ρ'),
    ("rlm", '\u{200F}'),
    ("rpar", ')'),
    ("rsqb", ']'),
    ("rsquo", '’'),
    ("semi", ';'),
    ("shy", '\u{AD}'),
    ("sol", '/'),
    ("szlig", 'ß'),
    ("tab", '\t'),
    ("tau", 'τ'),
    ("trade", '™'),
    ("uacute", 'ú'),
    ("ucirc", 'û'),
    ("ugrave", 'ù'),
    ("upsilon", 'υ'),
    ("uuml", 'ü'),
    ("yacute", 'ý'),
    ("yuml", 'ÿ'),
    ("zwj", '\u{200D}'),
    ("zwnj", '\u{200C}'),
];

fn named(name: &str) -> Option<char> {
    let lower;
    let key = if NAMED.binary_search_by_key(&name, |e| e.0).is_ok() {
        name
    } else {
        lower = name.to_ascii_lowercase();
        &lower
    };
    NAMED
        .binary_search_by_key(&key, |e| e.0)
        .ok()
        .and_then(|i| NAMED.get(i))
        .map(|e| e.1)
}

/// A reference starting at `i` (which holds `&`): `(end, char)`.
fn reference(t: &str, i: usize) -> Option<(usize, char)> {
    let rest = t.get(i + 1..)?;
    let (digits, radix, skip) = if let Some(r) = rest.strip_prefix("#x").or(rest.strip_prefix("#X"))
    {
        (r, 16, 3)
    } else if let Some(r) = rest.strip_prefix('#') {
        (r, 10, 2)
    } else {
        let n = rest
            .bytes()
            .take(32)
            .take_while(u8::is_ascii_alphanumeric)
            .count();
        let name = rest.get(..n)?;
        if rest.as_bytes().get(n) != Some(&b';') {
            return None;
        }
        return named(name).map(|c| (i + 1 + n + 1, c));
    };
    let max = if radix == 16 { 6 } else { 7 };
    let n = digits
        .bytes()
        .take(max)
        .take_while(|b| b.is_ascii_hexdigit() && (radix == 16 || b.is_ascii_digit()))
        .count();
    let num = u32::from_str_radix(digits.get(..n)?, radix).ok()?;
    let c = char::from_u32(num)?;
    let semi = usize::from(digits.as_bytes().get(n) == Some(&b';'));
    Some((i + skip + n + semi, c))
}

fn tokens(t: &str) -> Vec<(usize, usize)> {
    t.match_indices('&')
        .filter_map(|(i, _)| reference(t, i).map(|(e, _)| (i, e)))
        .collect()
}

fn unescape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let Some(rest) = t.get(i..) else { break };
        let Some(c) = rest.chars().next() else { break };
        if c == '&' {
            if let Some((e, d)) = reference(t, i) {
                out.push(d);
                i = e;
                continue;
            }
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Find and decode HTML character references in `text`.
pub(super) fn run(text: &str, sink: &mut dyn Sink) -> bool {
    let toks = tokens(text);
    for (s, e) in windows(text, &toks, 1) {
        let Some(win) = text.get(s..e) else { continue };
        if !sink.candidate() || !sink.steps(win.len()) {
            return false;
        }
        let decoded = unescape(win);
        if decoded != win {
            let d = Decoded {
                name: "html-entities",
                start: s,
                data: Data::Text(decoded),
            };
            if !sink.emit(d) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fuzz, texts};
    use super::*;

    #[test]
    fn table_sorted() {
        for w in NAMED.windows(2) {
            if let [a, b] = w {
                assert!(a.0 < b.0, "{} {}", a.0, b.0);
            }
        }
    }

    #[test]
    fn numeric_named_and_partial() {
        assert_eq!(
            texts(run, "&#105;&#x67;&#X6E;ore &lt;b&gt;"),
            ["ignore <b>"]
        );
        assert_eq!(texts(run, "&#105&#103nore"), ["ignore"]);
        assert_eq!(texts(run, "caf&eacute; &amp; &Rho;"), ["café & Ρ"]);
        assert!(texts(run, "Tom & Jerry, &unknown; &#xZZ;").is_empty());
    }

    #[test]
    fn malformed_never_panics() {
        fuzz(run);
        for s in ["&", "&#", "&#x", "&#99999999;", "&#xD800;", "&;", "é&#"] {
            let _ = texts(run, s);
        }
    }
}
