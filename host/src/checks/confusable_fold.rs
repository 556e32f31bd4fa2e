//! A compact confusables fold for principal ids: letters from other scripts
//! that render like a Latin letter (Cyrillic, Greek, Armenian, a few Latin
//! extensions) are mapped to that letter, so `human:аlice` (Cyrillic а) and
//! `human:alice` are one owner — for the audit trail, rate limits, budgets
//! and revocation lists alike. Applied after NFKC, which already folds
//! fullwidth forms, mathematical alphanumerics and ligatures. Case is kept.
//!
//! Hand-picked for identifiers, not display: only letters whose common glyphs
//! are indistinguishable from the Latin letter.

/// The Latin letter `c` imitates, or `c` itself.
pub(super) fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    TABLE
        .binary_search_by_key(&c, |&(k, _)| k)
        .ok()
        .and_then(|i| TABLE.get(i))
        .map_or(c, |&(_, v)| char::from(v))
}

/// `s` with every confusable folded.
#[cfg(test)]
pub(super) fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

/// Sorted by code point (a unit test checks).
static TABLE: &[(char, u8)] = &[
    ('\u{0131}', b'i'), // dotless i
    ('\u{0237}', b'j'), // dotless j
    ('\u{0251}', b'a'), // Latin alpha
    ('\u{0261}', b'g'), // script g
    ('\u{0391}', b'A'), // Greek capitals
    ('\u{0392}', b'B'),
    ('\u{0395}', b'E'),
    ('\u{0396}', b'Z'),
    ('\u{0397}', b'H'),
    ('\u{0399}', b'I'),
    ('\u{039A}', b'K'),
    ('\u{039C}', b'M'),
    ('\u{039D}', b'N'),
    ('\u{039F}', b'O'),
    ('\u{03A1}', b'P'),
    ('\u{03A4}', b'T'),
    ('\u{03A5}', b'Y'),
    ('\u{03A7}', b'X'),
    ('\u{03B1}', b'a'), // Greek small letters
    ('\u{03B3}', b'y'),
    ('\u{03B9}', b'i'),
    ('\u{03BA}', b'k'),
    ('\u{03BD}', b'v'),
    ('\u{03BF}', b'o'),
    ('\u{03C1}', b'p'),
    ('\u{03C5}', b'u'),
    ('\u{03C7}', b'x'),
    ('\u{0405}', b'S'), // Cyrillic capitals
    ('\u{0406}', b'I'),
    ('\u{0408}', b'J'),
    ('\u{0410}', b'A'),
    ('\u{0412}', b'B'),
    ('\u{0415}', b'E'),
    ('\u{041A}', b'K'),
    ('\u{041C}', b'M'),
    ('\u{041D}', b'H'),
    ('\u{041E}', b'O'),
    ('\u{0420}', b'P'),
    ('\u{0421}', b'C'),
    ('\u{0422}', b'T'),
    ('\u{0423}', b'Y'),
    ('\u{0425}', b'X'),
    ('\u{0430}', b'a'), // Cyrillic small letters
    ('\u{0435}', b'e'),
    ('\u{043E}', b'o'),
    ('\u{0440}', b'p'),
    ('\u{0441}', b'c'),
    ('\u{0443}', b'y'),
    ('\u{0445}', b'x'),
    ('\u{0455}', b's'),
    ('\u{0456}', b'i'),
    ('\u{0458}', b'j'),
    ('\u{04BB}', b'h'),
    ('\u{04C0}', b'I'),
    ('\u{04CF}', b'l'),
    ('\u{0501}', b'd'),
    ('\u{051A}', b'Q'),
    ('\u{051B}', b'q'),
    ('\u{051C}', b'W'),
    ('\u{051D}', b'w'),
    ('\u{0570}', b'h'), // Armenian
    ('\u{0578}', b'n'),
    ('\u{057D}', b'u'),
    ('\u{0581}', b'g'),
    ('\u{0585}', b'o'),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_folds() {
        assert!(TABLE.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)));
        assert_eq!(fold("\u{0430}lice"), "alice");
        assert_eq!(fold("\u{0420}\u{0410}\u{0423}"), "PAY");
        assert_eq!(fold("Zoë 東京"), "Zoë 東京");
    }
}
