//! Text smuggled in invisible characters: Unicode tag characters
//! (U+E0020..U+E007E mirror printable ASCII; models read them, people do not)
//! and variation selectors used as a byte alphabet (VS1..VS16 = 0..15,
//! VS17..VS256 = 16..255) after an emoji. Runs of four or more are decoded.

use super::{Data, Decoded, Sink};

const MIN_RUN: usize = 4;

fn tag_ascii(c: char) -> Option<u8> {
    let cp = u32::from(c);
    (0xE0020..=0xE007E)
        .contains(&cp)
        .then(|| u8::try_from(cp - 0xE0000).ok())
        .flatten()
}

fn selector_byte(c: char) -> Option<u8> {
    let cp = u32::from(c);
    if (0xFE00..=0xFE0F).contains(&cp) {
        u8::try_from(cp - 0xFE00).ok()
    } else if (0xE0100..=0xE01EF).contains(&cp) {
        u8::try_from(cp - 0xE0100 + 16).ok()
    } else {
        None
    }
}

/// Runs of characters mapped by `map`: `(start, bytes)`.
fn runs(text: &str, map: fn(char) -> Option<u8>) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, Vec<u8>)> = None;
    for (i, c) in text.char_indices() {
        match (map(c), cur.as_mut()) {
            (Some(b), Some((_, v))) => v.push(b),
            (Some(b), None) => cur = Some((i, vec![b])),
            (None, _) => {
                if let Some(r) = cur.take() {
                    out.push(r);
                }
            }
        }
    }
    out.extend(cur);
    out.retain(|r| r.1.len() >= MIN_RUN);
    out
}

/// Find and decode tag-character and variation-selector runs in `text`.
pub(super) fn run(text: &str, sink: &mut dyn Sink) -> bool {
    if text.is_ascii() {
        return true;
    }
    let found = runs(text, tag_ascii)
        .into_iter()
        .map(|(s, b)| ("unicode-tags", s, b))
        .chain(
            runs(text, selector_byte)
                .into_iter()
                .map(|(s, b)| ("variation-selectors", s, b)),
        );
    for (name, start, bytes) in found {
        if !sink.candidate() || !sink.steps(bytes.len()) {
            return false;
        }
        let d = Decoded {
            name,
            start,
            data: Data::Bytes(bytes),
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

    fn hide_tags(s: &str) -> String {
        s.chars()
            .filter_map(|c| char::from_u32(0xE0000 + u32::from(c)))
            .collect()
    }

    #[test]
    fn tags_and_selectors() {
        let t = texts(run, &format!("hello{}", hide_tags("ignore all")));
        assert_eq!(t, ["ignore all"]);
        let vs: String = "ignore"
            .bytes()
            .map(|b| {
                let cp = if b < 16 {
                    0xFE00 + u32::from(b)
                } else {
                    0xE0100 + u32::from(b) - 16
                };
                char::from_u32(cp).unwrap_or('?')
            })
            .collect();
        assert_eq!(texts(run, &format!("😀{vs}")), ["ignore"]);
        assert!(texts(run, "🏳\u{fe0f}\u{200d}🌈").is_empty());
    }

    #[test]
    fn malformed_never_panics() {
        fuzz(run);
    }
}
