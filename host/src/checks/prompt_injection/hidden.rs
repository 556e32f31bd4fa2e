//! Invisible characters: which ones the normaliser removes, and when their use
//! is an attempt to hide text rather than ordinary typography.
//!
//! Flagged (as built-in rules, checked on every text product as it is):
//! * `hidden_zero_width` — zero-width characters splitting Latin, Greek or
//!   Cyrillic words (two or more such splits), or a run of four or more
//!   invisible characters in a row (zero-width binary steganography).
//! * `hidden_bidi_override` — U+202D/U+202E (LRO/RLO), which reorder the text
//!   a human sees ("Trojan Source", reversed instructions).
//! * `hidden_tag_characters` — Unicode tag characters outside an emoji flag
//!   tag sequence (ASCII smuggled in U+E0020..U+E007E).
//! * `hidden_variation_selectors` — four or more variation selectors in a row
//!   (bytes smuggled after an emoji).
//!
//! Not flagged: ZWJ inside emoji sequences (👨‍👩‍👧, 🏳️‍🌈, skin tones),
//! ZWNJ/ZWJ in scripts that use them (Persian, Arabic, Indic), LRM/RLM/ALM and
//! isolates in right-to-left text, a single stray zero-width space.

/// Characters removed by the normaliser because they render as nothing.
pub(super) fn is_invisible(c: char) -> bool {
    let cp = u32::from(c);
    matches!(
        cp,
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F
            | 0x1160
            | 0x17B4
            | 0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF9..=0xFFFB
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE007F
            | 0xE0100..=0xE01EF
    )
}

/// Zero-width characters that can split a word without a visible trace.
fn is_zero_width(cp: u32) -> bool {
    matches!(
        cp,
        0x034F | 0x115F | 0x1160 | 0x180E | 0x200B..=0x200D | 0x2060..=0x2064 | 0x3164 | 0xFEFF | 0xFFA0
    )
}

fn is_variation_selector(cp: u32) -> bool {
    (0xFE00..=0xFE0F).contains(&cp) || (0xE0100..=0xE01EF).contains(&cp)
}

fn is_tag(cp: u32) -> bool {
    (0xE0000..=0xE007F).contains(&cp)
}

/// Letters of scripts that never need joiners: a zero-width character
/// between two of these is hiding something.
fn is_non_joining_letter(c: char) -> bool {
    let cp = u32::from(c);
    c.is_ascii_alphanumeric()
        || (c.is_alphabetic() && (0x00C0..=0x052F).contains(&cp))
        || (0x1D00..=0x1EFF).contains(&cp)
}

/// Which hiding technique a text uses, if any (rule name + byte offset).
pub(super) fn detect(text: &str) -> Vec<(&'static str, usize)> {
    if text.is_ascii() {
        return Vec::new();
    }
    let mut found: Vec<(&'static str, usize)> = Vec::new();
    let mut push = |name: &'static str, off: usize| {
        if !found.iter().any(|f| f.0 == name) {
            found.push((name, off));
        }
    };
    let mut prev_visible: Option<char> = None;
    let mut splits = 0usize;
    let mut first_split = 0usize;
    let mut run = 0usize; // consecutive invisible chars
    let mut run_start = 0usize;
    let mut vs_run = 0usize;
    let mut in_flag_tags = false;
    let mut pending_zw: Option<usize> = None; // offset of a zw after a letter
    for (i, c) in text.char_indices() {
        let cp = u32::from(c);
        if matches!(cp, 0x202D | 0x202E) {
            push("hidden_bidi_override", i);
        }
        if is_tag(cp) {
            let flag_ok = in_flag_tags || prev_visible == Some('\u{1F3F4}');
            if flag_ok && cp != 0xE0001 {
                // Part of an emoji flag tag sequence (🏴 + tags + CANCEL TAG).
                in_flag_tags = cp != 0xE007F;
                run = 0;
                continue;
            }
            push("hidden_tag_characters", i);
        } else {
            in_flag_tags = false;
        }
        vs_run = if is_variation_selector(cp) {
            vs_run + 1
        } else {
            0
        };
        if vs_run >= 4 {
            push("hidden_variation_selectors", i);
        }
        if is_invisible(c) {
            if run == 0 {
                run_start = i;
            }
            run += 1;
            // Runs of variation selectors are judged separately above.
            if run >= 4 && !is_variation_selector(cp) {
                push("hidden_zero_width", run_start);
            }
            if is_zero_width(cp) && prev_visible.is_some_and(is_non_joining_letter) {
                pending_zw.get_or_insert(i);
            }
            continue;
        }
        run = 0;
        if let Some(off) = pending_zw.take() {
            if is_non_joining_letter(c) {
                if splits == 0 {
                    first_split = off;
                }
                splits += 1;
                if splits >= 2 {
                    push("hidden_zero_width", first_split);
                }
            }
        }
        prev_visible = Some(c);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<&'static str> {
        detect(s).into_iter().map(|f| f.0).collect()
    }

    #[test]
    fn zero_width_inside_words_is_hiding() {
        assert_eq!(names("ig\u{200b}no\u{200b}re this"), ["hidden_zero_width"]);
        assert_eq!(
            names("a\u{200b}\u{200c}\u{200b}\u{200c}b"),
            ["hidden_zero_width"]
        );
        assert!(names("one stray\u{200b}zero width").is_empty());
    }

    #[test]
    fn emoji_and_rtl_are_not_hiding() {
        for s in [
            "👨\u{200d}👩\u{200d}👧 family, 🏳\u{fe0f}\u{200d}🌈 flag, 👍🏽",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} Scotland",
            "می\u{200c}خواهم بروم",
            "שלום \u{200f}world\u{200e} עולם",
            "क्\u{200d}ष",
            "Name: \u{2068}Alice\u{2069} joined",
        ] {
            assert!(names(s).is_empty(), "{s:?} -> {:?}", names(s));
        }
    }

    #[test]
    fn bidi_override_tags_and_selectors() {
        assert_eq!(names("x \u{202e}snoitcurtsni"), ["hidden_bidi_override"]);
        assert_eq!(names("hi\u{E0069}\u{E0067}"), ["hidden_tag_characters"]);
        assert_eq!(
            names("😀\u{FE01}\u{E0100}\u{E0101}\u{FE02}"),
            ["hidden_variation_selectors"]
        );
    }
}
