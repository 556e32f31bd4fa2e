//! Normalisation before matching: every text product is also matched in two
//! folded views, each with a map back to byte offsets in the text it came from.
//!
//! * `normalized` — invisible characters (zero-width, bidi controls, soft
//!   hyphen, variation selectors, tags) and control characters removed;
//!   Unicode compatibility decomposition (the "K" of NFKC: fullwidth,
//!   mathematical alphanumerics, ligatures, circled letters → plain letters)
//!   with combining marks dropped, which for matching ASCII phrases is NFKC
//!   followed by accent stripping; the confusables fold; stretched letters
//!   collapsed (`i g n o r e  a l l` → `ignore all`, `i.g.n.o.r.e` →
//!   `ignore`); markdown and punctuation splitters between letters removed
//!   (`ig*no*re`, `ig-no-re`, `**ignore**`); whitespace collapsed. Case is
//!   kept so rules can tell the persona `DAN` from the name `Dan`.
//! * `squashed` — the normalized view lower-cased with everything but letters
//!   dropped (common digit-for-letter swaps folded first), so glued text such
//!   as `Pleaseignoreallpreviousinstructions` or `ig no re all pre vious`
//!   matches the few high-signal phrases that are checked there.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use super::confusables;
use super::hidden::is_invisible;
use super::split::{collapse_stretched, collapse_whitespace, remove_splitters, squash};

/// A folded view of a text with, for each output byte, the byte offset of the
/// input character it came from.
#[derive(Debug, Default)]
pub(super) struct View {
    pub(super) text: String,
    pub(super) map: Vec<u32>,
}

impl View {
    /// Offset in the source text of the view's byte `i` (clamped).
    pub(super) fn source_offset(&self, i: usize) -> usize {
        let idx = i.min(self.map.len().saturating_sub(1));
        self.map.get(idx).map_or(0, |&o| o as usize)
    }
}

/// Both folded views of one text.
pub(super) struct Views {
    pub(super) normalized: View,
    pub(super) squashed: View,
}

/// Characters with the byte offset of the source character each came from.
pub(super) type Chars = Vec<(char, u32)>;

/// Build the `normalized` and `squashed` views of `src`.
pub(super) fn views(src: &str) -> Views {
    // Two buffers, each pass reading one and writing the other.
    let mut a = fold_chars(src);
    let mut b: Chars = Vec::with_capacity(a.len());
    collapse_stretched(&a, &mut b);
    a.clear();
    remove_splitters(&b, &mut a);
    b.clear();
    collapse_whitespace(&a, &mut b);
    a.clear();
    squash(&b, &mut a);
    Views {
        normalized: to_view(&b),
        squashed: to_view(&a),
    }
}

fn is_cjk_or_hangul(cp: u32) -> bool {
    (0x3400..=0x9FFF).contains(&cp) || (0xAC00..=0xD7A3).contains(&cp)
}

fn push_folded(out: &mut Chars, d: char, off: u32) {
    if d.is_ascii() {
        if d.is_ascii_control() && !d.is_ascii_whitespace() {
            return;
        }
        out.push((if d == '\r' { '\n' } else { d }, off));
        return;
    }
    if is_combining_mark(d) || is_invisible(d) {
        return;
    }
    if d.is_whitespace() {
        let nl = matches!(d, '\u{85}' | '\u{2028}' | '\u{2029}');
        out.push((if nl { '\n' } else { ' ' }, off));
        return;
    }
    if d.is_control() {
        return;
    }
    out.push((confusables::fold(d).unwrap_or(d), off));
}

/// Invisible/control removal, compatibility decomposition, mark removal and
/// the confusables fold, one input character at a time.
fn fold_chars(src: &str) -> Chars {
    let mut out: Chars = Vec::with_capacity(src.len());
    if src.is_ascii() {
        for (i, b) in src.bytes().enumerate() {
            let off = u32::try_from(i).unwrap_or(u32::MAX);
            match b {
                b'\r' => out.push(('\n', off)),
                b'\t' | b'\n' | b' ' => out.push((char::from(b), off)),
                0..=0x1F | 0x7F => {}
                _ => out.push((char::from(b), off)),
            }
        }
        return out;
    }
    for (i, c) in src.char_indices() {
        let off = u32::try_from(i).unwrap_or(u32::MAX);
        if c.is_ascii() || is_cjk_or_hangul(u32::from(c)) {
            push_folded(&mut out, c, off);
        } else if is_invisible(c) {
            continue;
        } else {
            decompose_compatible(c, |d| push_folded(&mut out, d, off));
        }
    }
    out
}

fn to_view(v: &[(char, u32)]) -> View {
    let mut text = String::with_capacity(v.len());
    let mut map = Vec::with_capacity(v.len());
    for &(c, off) in v {
        text.push(c);
        for _ in 0..c.len_utf8() {
            map.push(off);
        }
    }
    View { text, map }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        views(s).normalized.text
    }

    #[test]
    fn folds_lookalikes_and_width() {
        assert_eq!(norm("Ｉｇｎｏｒｅ"), "Ignore");
        assert_eq!(norm("𝐢𝐠𝐧𝐨𝐫𝐞 аll"), "ignore all");
        assert_eq!(norm("ïgnörè"), "ignore");
        assert_eq!(norm("i\u{200b}g\u{200d}n\u{202e}ore"), "ignore");
        assert_eq!(norm("i\u{0301}\u{0332}gnore"), "ignore");
    }

    #[test]
    fn collapses_stretched_and_split() {
        assert_eq!(norm("i g n o r e  a l l"), "ignore all");
        assert_eq!(norm("i.g.n.o.r.e a.l.l"), "ignore all");
        assert_eq!(norm("i-g-n-o-r-e"), "ignore");
        assert_eq!(norm("ig*no*re **all** pre-vious"), "ignore all previous");
        assert_eq!(norm("well-known  words"), "well known words");
        assert_eq!(norm("I am a cat"), "I am a cat");
    }

    #[test]
    fn squashed_is_letters_only() {
        let v = views("Please1gn0re  all, previous!");
        assert_eq!(v.squashed.text, "pleaseignoreallpreviousi");
    }

    #[test]
    fn offsets_point_into_source() {
        let src = "héllo  Ｗorld";
        let v = views(src);
        assert_eq!(v.normalized.text, "hello World");
        let w = v.normalized.text.find('W').unwrap_or(0);
        assert_eq!(v.normalized.source_offset(w), src.find('Ｗ').unwrap_or(1));
    }

    #[test]
    fn odd_input_never_panics() {
        for s in [
            "",
            "\u{0301}",
            "\u{202e}",
            "\u{fffd}\u{e000}",
            "a b",
            "* _ ~",
            "a\u{0}b",
        ] {
            let _ = views(s);
        }
    }
}
