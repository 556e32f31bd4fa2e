//! Decoders: find substrings of a text product that look like one encoding
//! (by alphabet, shape and a minimum length — never "every substring") and
//! decode them, tolerantly and within bounds. Every decoder is hand-written:
//! it accepts sloppy input (missing padding, odd case, line breaks, stray
//! separators) and never panics or allocates more than its input implies.
//!
//! A decoder reports through a [`Sink`]: it asks for each candidate
//! (`candidate`, which counts against `max_candidates`), charges its work
//! (`steps`), and hands each result to `emit`. Any of these returning `false`
//! means "stop now" (a budget ran out or the request is already blocked), and
//! the decoder returns `false` at once.
//!
//! | file | encodings |
//! |---|---|
//! | `base64.rs` | base64, base64url (padding-tolerant, MIME line breaks) |
//! | `base32.rs` | base32, base32hex (case-tolerant) |
//! | `hex.rs` | hex: plain, spaced, `0x`-prefixed, comma-separated, hex dumps |
//! | `percent.rs` | URL percent-encoding, quoted-printable |
//! | `entities.rs` | HTML entities, named and numeric |
//! | `escapes.rs` | `\uXXXX`, `\u{…}`, `\xXX`, `\x{…}`, `\UXXXXXXXX`, octal |
//! | `numeric.rs` | decimal code points, 8-bit binary groups |
//! | `base85.rs` | Ascii85 (`<~…~>` or bare), RFC 1924 base85 |
//! | `bigint.rs` | base58, base62, base36 |
//! | `uu.rs` | uuencode (`begin … end`) |
//! | `punycode.rs` | punycode labels (`xn--…`) |
//! | `invisible.rs` | ASCII in Unicode tag characters, bytes in variation selectors |
//! | `ciphers.rs` | overlays: Caesar/ROT13, ROT47, Atbash, reversal (gated by `plausibility`) |
//! | `compress.rs` | gzip / zlib inside any byte product (by magic bytes, bounded) |

mod base32;
mod base64;
mod base85;
mod bigint;
mod ciphers;
pub(super) mod compress;
mod entities;
mod escapes;
mod hex;
mod invisible;
mod numeric;
mod percent;
mod punycode;
mod uu;

/// What a decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Data {
    /// Bytes still to be judged: may be compressed, text, or binary.
    Bytes(Vec<u8>),
    /// Already text (escape windows, cipher overlays, punycode).
    Text(String),
}

/// One decoded product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decoded {
    /// Channel name of the decoder, e.g. `base64`, `rot13`.
    pub(super) name: &'static str,
    /// Byte offset of the candidate in the text it was found in.
    pub(super) start: usize,
    pub(super) data: Data,
}

/// Where decoders report; implemented by the scan driver (and by tests).
pub(super) trait Sink {
    /// Count one candidate about to be decoded; `false` = stop.
    fn candidate(&mut self) -> bool;
    /// Charge `n` abstract work steps; `false` = stop.
    fn steps(&mut self, n: usize) -> bool;
    /// Hand over a product; `false` = stop.
    fn emit(&mut self, d: Decoded) -> bool;
}

/// Run every decoder over `text`. Returns `false` if the sink said stop.
pub(super) fn run_all(text: &str, sink: &mut dyn Sink) -> bool {
    let decoders: [fn(&str, &mut dyn Sink) -> bool; 14] = [
        base64::run,
        hex::run,
        base32::run,
        percent::run_percent,
        percent::run_quoted_printable,
        entities::run,
        escapes::run,
        numeric::run,
        base85::run,
        bigint::run,
        uu::run,
        punycode::run,
        invisible::run,
        ciphers::run,
    ];
    decoders.iter().all(|d| d(text, sink))
}

/// Maximal runs of bytes satisfying `pred` with at least `min` bytes:
/// `(start, end)` pairs.
pub(super) fn byte_runs(text: &str, min: usize, pred: impl Fn(u8) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, b) in text.bytes().enumerate() {
        match (pred(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= min {
                    out.push((s, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        if text.len() - s >= min {
            out.push((s, text.len()));
        }
    }
    out
}

/// Escape-style decoders find tokens (spans) and decode a window around each
/// cluster of tokens, so `&#105;gnore previous instructions` is decoded with
/// its plain-text neighbours. Tokens closer than `GAP` bytes join one
/// cluster; the window extends `PAD` bytes either side (to char boundaries).
pub(super) const GAP: usize = 64;
pub(super) const PAD: usize = 64;

/// Windows `(start, end)` around clusters of at least `min_tokens` tokens.
pub(super) fn windows(
    text: &str,
    tokens: &[(usize, usize)],
    min_tokens: usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&(s0, e0)) = tokens.get(i) {
        let (mut end, mut count) = (e0, 1);
        let mut j = i + 1;
        while let Some(&(s, e)) = tokens.get(j) {
            if s > end.saturating_add(GAP) {
                break;
            }
            end = end.max(e);
            count += 1;
            j += 1;
        }
        if count >= min_tokens {
            let mut ws = s0.saturating_sub(PAD);
            while ws > 0 && !text.is_char_boundary(ws) {
                ws -= 1;
            }
            let mut we = end.saturating_add(PAD).min(text.len());
            while we < text.len() && !text.is_char_boundary(we) {
                we += 1;
            }
            out.push((ws, we));
        }
        i = j;
    }
    out
}

/// True if decoded bytes are worth handing on: compressed, text (UTF-8 or
/// UTF-16), or binary with long printable runs.
pub(super) fn useful(bytes: &[u8]) -> bool {
    use super::plausibility::{bytes_to_text, printable_runs, utf16_to_text};
    compress::kind(bytes).is_some()
        || bytes_to_text(bytes).is_some()
        || utf16_to_text(bytes).is_some()
        || printable_runs(bytes).is_some()
}

/// Value of an ASCII hex digit.
pub(super) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
pub(super) mod testing {
    //! A sink that records everything, for decoder unit tests.
    use super::{Data, Decoded, Sink};

    #[derive(Default)]
    pub(crate) struct Collect {
        pub(crate) out: Vec<Decoded>,
        pub(crate) candidates: usize,
    }

    impl Sink for Collect {
        fn candidate(&mut self) -> bool {
            self.candidates += 1;
            true
        }
        fn steps(&mut self, _n: usize) -> bool {
            true
        }
        fn emit(&mut self, d: Decoded) -> bool {
            self.out.push(d);
            true
        }
    }

    /// Run one decoder and return its products as lossy text.
    pub(crate) fn texts(run: fn(&str, &mut dyn Sink) -> bool, input: &str) -> Vec<String> {
        let mut c = Collect::default();
        run(input, &mut c);
        c.out
            .into_iter()
            .map(|d| match d.data {
                Data::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                Data::Text(s) => s,
            })
            .collect()
    }

    /// Deterministic pseudo-random bytes for "never panics" tests.
    pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Fuzz-ish inputs: random printable ASCII in several alphabets.
    pub(crate) fn fuzz(run: fn(&str, &mut dyn Sink) -> bool) {
        let alphabets: [&[u8]; 4] = [
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_",
            b"0123456789abcdefABCDEF x,:%=&#;\\u{}",
            b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\n",
            b"begin 644 x\nM`end xn-- 01 <~~>",
        ];
        for (k, alpha) in alphabets.iter().enumerate() {
            for seed in 0..40u64 {
                let bytes = noise(seed * 7 + k as u64, 1 + (seed as usize * 37) % 700);
                let s: String = bytes
                    .iter()
                    .map(|b| char::from(alpha[usize::from(*b) % alpha.len()]))
                    .collect();
                let mut c = Collect::default();
                run(&s, &mut c);
            }
        }
        let lossy = String::from_utf8_lossy(&noise(99, 4000)).into_owned();
        let mut c = Collect::default();
        run(&lossy, &mut c);
    }
}
