//! `scope_drift` (INSPECTION, priority 40): stops a response that drifts
//! outside what was approved — longer than the request allowed, or carrying
//! classification markings above the caller's clearance.
//!
//! Length: with a declared output limit (`max_tokens`, `max_completion_tokens`,
//! Anthropic `max_tokens`), the semantic text delivered (characters, not
//! bytes; SSE framing and JSON never count) may reach `limit ×
//! chars_per_token × (1 + token_tolerance)`; beyond that the stream is stopped.
//!
//! Classification (`check_classification_drift`, true): every marker in the
//! new text is evaluated and the highest level wins; above the caller's
//! clearance (`clearance_header`, default `x-caller-clearance`, ladder shared
//! with `classification_gate`; no header = `default_clearance`, the lowest
//! level; an unknown value counts as the lowest) → block, with the marker's
//! byte offset in the response. Matching rules, chosen so prose passes:
//! - banner markings (no parentheses) count anywhere, but only as whole
//!   words (`PARTS//X` is not `TS//`); those containing `//` match in any
//!   letter case, others exactly;
//! - portion markings `(X)` count only at the start of a line (after optional
//!   spaces or tabs), exactly as written — so `Select the file(s)`, `(c) 2024`
//!   and a mid-line `(S)` pass; `(C)` followed by a year or "copyright" is a
//!   copyright sign; a single-letter mark right after the previous letter's
//!   mark at a line start (`(B)` then `(C)`) is a lettered list item;
//! - zero-width characters are ignored and text is NFKC-folded before
//!   matching, so `ＳＥＣＲＥＴ//ＮＯＦＯＲＮ` is caught, while offsets refer to
//!   the original text.
//!
//! Markers split across chunks are caught: the scratch keeps an overlap
//! window (a few times the longest marker) of the text already seen, plus
//! what precedes it (word and line-start context); each chunk is scanned as
//! `overlap + chunk`, and only markers ending in the new chunk are judged.
//!
//! Settings: `token_tolerance` (0.10), `chars_per_token` (4),
//! `markers = { MARKER = "LEVEL" }` (replaces the default table),
//! `check_classification_drift` (true), and the ladder settings `levels`,
//! `aliases`, `clearance_header`, `default_clearance`. The default table has
//! banners `TOP SECRET//SCI`, `TS//SCI`, `TOP SECRET//`, `TS//`, `SECRET//`,
//! `CONFIDENTIAL//`, `CUI//`, `U//FOUO`, `UNCLASSIFIED//FOUO` and portion marks
//! `(TS//SCI)`, `(TS)`, `(S//NF)`, `(S)`, `(C)`, `(CUI)`, `(U//FOUO)`, `(U)`.
//! The default ladder has no CONFIDENTIAL level: C markings count as SECRET.
use std::sync::Arc;

use memchr::memmem;

use unicode_normalization::UnicodeNormalization;

use super::classification_gate::{header_level, header_setting};
use super::levels::Ladder;
use super::regex_content::OFFLOAD_BYTES;
use super::regex_output::tail_start;
use super::settings::Settings;
use super::{
    scan_chunk, Check, Factory, Hook, HookResult, Hooks, Request, ResponseSoFar, Scratch, Source,
    Stage, Verdict,
};
use crate::protocol::text::{output_token_limit, TokenLimit};

const NAME: &str = "scope_drift";
const MAX_MARKER_CHARS: usize = 64;
const MAX_MARKERS: usize = 256;
/// Markers listed in a block's metadata at most.
const MAX_LISTED: usize = 16;

const DEFAULT_MARKERS: &[(&str, &str)] = &[
    ("TOP SECRET//SCI", "TS/SCI"),
    ("TS//SCI", "TS/SCI"),
    ("TOP SECRET//", "TS"),
    ("TS//", "TS"),
    ("SECRET//", "SECRET"),
    ("CONFIDENTIAL//", "SECRET"),
    ("CUI//", "CUI"),
    ("U//FOUO", "CUI"),
    ("UNCLASSIFIED//FOUO", "CUI"),
    ("(TS//SCI)", "TS/SCI"),
    ("(TS)", "TS"),
    ("(S//NF)", "SECRET"),
    ("(S)", "SECRET"),
    ("(C)", "SECRET"),
    ("(CUI)", "CUI"),
    ("(U//FOUO)", "CUI"),
    ("(U)", "UNCLASS"),
];

#[derive(Debug)]
struct Marker {
    /// As configured (portion marks, case-sensitive banners) or upper-cased (`//` banners).
    needle: String,
    shown: String,
    level: usize,
    portion: bool,
    any_case: bool,
    starts_alnum: bool,
    ends_alnum: bool,
    /// `X` of a single-letter portion mark `(X)`.
    letter: Option<u8>,
}

struct Inner {
    ladder: Ladder,
    markers: Vec<Marker>,
    /// A prebuilt SIMD searcher per marker (same order as `markers`), so a
    /// chunk scan builds no searcher.
    finders: Vec<memmem::Finder<'static>>,
    /// The rarest byte of each marker's needle (same order as `markers`): a
    /// needle whose rarest byte the window lacks is not searched for.
    rare: Vec<u8>,
    /// Whether any banner marker matches in any letter case (the chunk is upper-cased once).
    any_case_banners: bool,
    /// Bytes of the longest (normalised) marker.
    longest: usize,
    check_classification: bool,
    tolerance: f64,
    chars_per_token: f64,
    clearance_header: String,
    default_clearance: usize,
    overlap: usize,
}

struct ScopeDrift {
    inner: Arc<Inner>,
}

/// Per-request state.
#[derive(Debug)]
struct Drift {
    /// The last `overlap` bytes of the text seen so far.
    tail: String,
    /// The character just before `tail` (None: the response start).
    before_tail: Option<char>,
    /// Whether `tail` starts at the start of a line.
    tail_line_start: bool,
    /// Characters of semantic text seen so far.
    chars: u64,
    /// Single letters seen as `(X)` at a line start (bit per A..Z).
    letters: u32,
    /// Caller clearance and length cap, computed on the first chunk.
    limits: Option<(usize, Option<u64>)>,
}

impl Default for Drift {
    fn default() -> Self {
        Drift {
            tail: String::new(),
            before_tail: None,
            tail_line_start: true,
            chars: 0,
            letters: 0,
            limits: None,
        }
    }
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: NAME.into(),
        source: Source::Builtin,
        stage: Stage::Inspection,
        priority: 40,
        hooks: Hooks::INSPECT_CHUNK,
        description: "stops output longer than approved or marked above the caller's clearance"
            .into(),
        build: Arc::new(|cfg| build(cfg).map(|c| Arc::new(c) as Arc<dyn Check>)),
    }
}

fn marker(s: &Settings<'_>, ladder: &Ladder, text: &str, level: &str) -> Result<Marker, String> {
    let key = format!("markers.{text}");
    let t = text.trim();
    if t.is_empty() || t.chars().count() > MAX_MARKER_CHARS || t.chars().any(char::is_control) {
        return Err(s.err(
            &key,
            format!("a marker must be 1 to {MAX_MARKER_CHARS} printable characters"),
            "shorten or remove it",
        ));
    }
    let Some(level) = ladder.parse(level) else {
        return Err(s.err(
            &key,
            format!("{level:?} is not a level or alias"),
            "map it to one of the levels (or set levels / aliases to match)",
        ));
    };
    let portion = t.len() > 2 && t.starts_with('(') && t.ends_with(')');
    let any_case = !portion && t.contains("//");
    let first = t.chars().next().unwrap_or(' ');
    let last = t.chars().next_back().unwrap_or(' ');
    let inner = t.get(1..t.len().saturating_sub(1)).unwrap_or("");
    let letter = (portion && inner.len() == 1)
        .then(|| inner.as_bytes().first().copied())
        .flatten()
        .filter(u8::is_ascii_uppercase);
    let folded: String = t.nfkc().collect();
    Ok(Marker {
        needle: if any_case {
            folded.to_ascii_uppercase()
        } else {
            folded
        },
        shown: t.to_string(),
        level,
        portion,
        any_case,
        starts_alnum: first.is_alphanumeric(),
        ends_alnum: last.is_alphanumeric(),
        letter,
    })
}

fn build(cfg: &serde_json::Value) -> Result<ScopeDrift, String> {
    let s = Settings::new(
        NAME,
        cfg,
        &[
            "token_tolerance",
            "chars_per_token",
            "markers",
            "check_classification_drift",
            "levels",
            "aliases",
            "clearance_header",
            "default_clearance",
        ],
    )?;
    let ladder = Ladder::from_settings(&s)?;
    let custom = s.str_map("markers")?;
    let mut markers = Vec::new();
    match &custom {
        Some(list) => {
            if list.len() > MAX_MARKERS {
                return Err(s.err(
                    "markers",
                    format!("lists more than {MAX_MARKERS} markers"),
                    "keep the table short",
                ));
            }
            for (text, level) in list {
                markers.push(marker(&s, &ladder, text, level)?);
            }
        }
        None => {
            for (text, level) in DEFAULT_MARKERS {
                markers.push(marker(&s, &ladder, text, level).map_err(|_| {
                    s.err(
                        "markers",
                        "the default marker table names the default levels, which your `levels` replace",
                        "set markers = { \"MARKER\" = \"LEVEL\" } for your levels",
                    )
                })?);
            }
        }
    }
    let longest = markers.iter().map(|m| m.needle.len()).max().unwrap_or(0);
    Ok(ScopeDrift {
        inner: Arc::new(Inner {
            finders: markers
                .iter()
                .map(|m| memmem::Finder::new(m.needle.as_bytes()).into_owned())
                .collect(),
            rare: markers
                .iter()
                .map(|m| rarest(m.needle.as_bytes()))
                .collect(),
            any_case_banners: markers.iter().any(|m| m.any_case && !m.portion),
            longest,
            check_classification: s.bool("check_classification_drift", true)?,
            tolerance: s.number("token_tolerance", 0.10, 0.0, 100.0)?,
            chars_per_token: s.number("chars_per_token", 4.0, 0.1, 1000.0)?,
            clearance_header: header_setting(&s, "clearance_header", "x-caller-clearance")?,
            default_clearance: ladder.level_setting(&s, "default_clearance")?,
            // Room for the longest marker even if every character came fullwidth
            // (3 bytes) with a zero-width character (3 bytes) between each.
            overlap: longest * 6 + 16,
            markers,
            ladder,
        }),
    })
}

/// Text normalised for matching (zero-width and bidi formatting characters
/// dropped, NFKC per character), with a map back to original byte offsets.
/// ASCII text (the common case) is borrowed as is.
struct Norm<'a> {
    text: std::borrow::Cow<'a, str>,
    /// Original offset of each normalised byte, plus one for the end; `None`: identity.
    map: Option<Vec<u32>>,
}

fn is_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

impl<'a> Norm<'a> {
    fn new(s: &'a str) -> Norm<'a> {
        if s.is_ascii() {
            return Norm {
                text: std::borrow::Cow::Borrowed(s),
                map: None,
            };
        }
        let mut text = String::with_capacity(s.len());
        let mut map = Vec::with_capacity(s.len() + 1);
        let at = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        for (i, c) in s.char_indices() {
            if c.is_ascii() {
                text.push(c);
                map.push(at(i));
            } else if !is_format(c) {
                let before = text.len();
                text.extend(std::iter::once(c).nfkc());
                map.resize(map.len() + (text.len() - before), at(i));
            }
        }
        map.push(at(s.len()));
        Norm {
            text: std::borrow::Cow::Owned(text),
            map: Some(map),
        }
    }

    /// Original byte offset of normalised byte `i`.
    fn orig(&self, i: usize) -> usize {
        match &self.map {
            None => i,
            Some(m) => m.get(i).or(m.last()).map_or(i, |&o| o as usize),
        }
    }

    /// The first normalised byte whose original offset is at or past `orig`.
    fn norm_at(&self, orig: usize) -> usize {
        match &self.map {
            None => orig.min(self.text.len()),
            Some(m) => m
                .partition_point(|&o| (o as usize) < orig)
                .min(self.text.len()),
        }
    }
}

/// Whether position `pos` of `s` is at a line start (only spaces / tabs since
/// the last line break); `at_start` answers for the beginning of `s`.
fn line_start_at(s: &str, pos: usize, at_start: bool) -> bool {
    let Some(before) = s.get(..pos) else {
        return false;
    };
    match before.trim_end_matches([' ', '\t']).chars().next_back() {
        None => at_start,
        Some(c) => c == '\n' || c == '\r',
    }
}

/// The byte of `needle` least likely in English prose (letters by their
/// frequency, then digits; other bytes, `/` and `(` among them, are rarest).
fn rarest(needle: &[u8]) -> u8 {
    const COMMON: &[u8] = b" etaoinshrdlcumwfgypbvkjxqz0123456789";
    let rank = |b: &u8| {
        COMMON
            .iter()
            .position(|c| *c == b.to_ascii_lowercase())
            .map_or(0, |i| COMMON.len() - i)
    };
    needle.iter().min_by_key(|b| rank(b)).copied().unwrap_or(0)
}

/// Memoised "does the text contain byte b" (one memchr per distinct byte).
#[derive(Default)]
struct Present {
    asked: [u64; 4],
    found: [u64; 4],
}

impl Present {
    fn has(&mut self, hay: &[u8], b: u8) -> bool {
        let (w, bit) = (usize::from(b >> 6), 1u64 << (b & 63));
        let (Some(asked), Some(found)) = (self.asked.get_mut(w), self.found.get_mut(w)) else {
            return true;
        };
        if *asked & bit == 0 {
            *asked |= bit;
            if memchr::memchr(b, hay).is_some() {
                *found |= bit;
            }
        }
        *found & bit != 0
    }
}

struct Found {
    level: usize,
    offset: usize,
    marker: usize,
}

impl Inner {
    fn limits(&self, req: &Request) -> (usize, Option<u64>) {
        let clearance = header_level(
            &self.ladder,
            req,
            &self.clearance_header,
            self.default_clearance,
        )
        .unwrap_or(0);
        let cap = match output_token_limit(&req.body, "max_tokens") {
            TokenLimit::Declared { tokens, .. } if tokens > 0 => {
                Some((tokens as f64 * self.chars_per_token * (1.0 + self.tolerance)).floor() as u64)
            }
            _ => None,
        };
        (clearance, cap)
    }

    fn markers_in(&self, st: &mut Drift, chunk: &str, base: usize) -> Vec<Found> {
        let boundary = st.tail.len();
        let mut scan = std::mem::take(&mut st.tail);
        scan.push_str(chunk);
        let norm = Norm::new(&scan);
        let text: &str = &norm.text;
        let offset = |i: usize| (base + norm.orig(i)).saturating_sub(boundary);
        let is_new = |end: usize| norm.orig(end) > boundary;
        let mut found = Vec::new();
        let next_alnum = |e: usize| {
            text.get(e..)
                .and_then(|r| r.chars().next())
                .is_some_and(char::is_alphanumeric)
        };
        // A banner counts only if it ends in the new text, so it starts at most
        // `longest - 1` normalised bytes before the boundary: search that window.
        let from = {
            let mut w = norm.norm_at(boundary).saturating_sub(self.longest);
            while !text.is_char_boundary(w) {
                w -= 1;
            }
            w
        };
        let window = text.get(from..).unwrap_or("");
        let upper = if self.any_case_banners {
            window.to_ascii_uppercase()
        } else {
            String::new()
        };
        let (mut in_upper, mut in_exact) = (Present::default(), Present::default());
        let searchers = self.finders.iter().zip(&self.rare);
        for ((mi, m), (finder, &rare)) in self.markers.iter().enumerate().zip(searchers) {
            if m.portion {
                continue;
            }
            let (hay, present) = if m.any_case {
                (upper.as_str(), &mut in_upper)
            } else {
                (window, &mut in_exact)
            };
            if !present.has(hay.as_bytes(), rare) {
                continue;
            }
            for p in finder.find_iter(hay.as_bytes()) {
                let p = from + p;
                let e = p + m.needle.len();
                if !is_new(e) {
                    continue;
                }
                let prev = match text.get(..p).and_then(|b| b.chars().next_back()) {
                    Some(c) => Some(c),
                    None => st.before_tail,
                };
                if (m.starts_alnum && prev.is_some_and(char::is_alphanumeric))
                    || (m.ends_alnum && next_alnum(e))
                {
                    continue;
                }
                found.push(Found {
                    level: m.level,
                    offset: offset(p),
                    marker: mi,
                });
            }
        }
        // Portion marks: only at line starts, visited in order so lettered
        // lists are recognised.
        let tail_line_start = st.tail_line_start;
        let starts = std::iter::once(0)
            .filter(|_| tail_line_start)
            .chain(memchr::memchr2_iter(b'\n', b'\r', text.as_bytes()).map(|i| i + 1));
        for ls in starts {
            let Some(rest) = text.get(ls..) else { continue };
            let p = ls + (rest.len() - rest.trim_start_matches([' ', '\t']).len());
            let Some(at) = text.get(p..) else { continue };
            let bytes = at.as_bytes();
            let letter = match bytes {
                [b'(', l, b')', ..] if l.is_ascii_uppercase() => Some(*l),
                _ => None,
            };
            for (mi, m) in self.markers.iter().enumerate().filter(|(_, m)| m.portion) {
                if !at.starts_with(m.needle.as_str()) || next_alnum(p + m.needle.len()) {
                    continue;
                }
                if !is_new(p + m.needle.len()) {
                    continue;
                }
                if let Some(l) = m.letter {
                    let prev_letter = l.checked_sub(b'A' + 1).map(|i| st.letters & (1 << i) != 0);
                    if prev_letter == Some(true) {
                        continue; // "(B) …" then "(C) …": a lettered list
                    }
                    let after = at.get(3..).unwrap_or("").trim_start();
                    let copyright = after.starts_with(|c: char| c.is_ascii_digit())
                        || after
                            .get(..9)
                            .is_some_and(|w| w.eq_ignore_ascii_case("copyright"));
                    if l == b'C' && copyright {
                        continue;
                    }
                }
                found.push(Found {
                    level: m.level,
                    offset: offset(p),
                    marker: mi,
                });
            }
            if let Some(l) = letter {
                st.letters |= 1 << (l - b'A');
            }
        }
        let k = tail_start(&scan, self.overlap);
        if k > 0 {
            st.before_tail = scan.get(..k).and_then(|b| b.chars().next_back());
            st.tail_line_start = line_start_at(&scan, k, st.tail_line_start);
        }
        drop(norm);
        scan.drain(..k);
        // Kept with its capacity for the next chunk.
        st.tail = scan;
        // One entry per position: the highest marker starting there
        // (`TS//SCI` also contains `TS//`).
        found.sort_by_key(|f| (f.offset, std::cmp::Reverse(f.level)));
        found.dedup_by_key(|f| f.offset);
        found
    }

    fn scan(&self, st: &mut Drift, req: &Request, chunk: &str, base: usize) -> HookResult {
        let (clearance, cap) = *st.limits.get_or_insert_with(|| self.limits(req));
        st.chars = st.chars.saturating_add(chunk.chars().count() as u64);
        if self.check_classification {
            let found = self.markers_in(st, chunk, base);
            let top = found.iter().map(|f| f.level).max().unwrap_or(0);
            if let Some(first) = found
                .iter()
                .find(|f| f.level == top)
                .filter(|f| f.level > clearance)
            {
                let shown = |f: &Found| {
                    self.markers
                        .get(f.marker)
                        .map_or("?", |m| m.shown.as_str())
                        .to_string()
                };
                let listed: Vec<serde_json::Value> = found
                    .iter()
                    .take(MAX_LISTED)
                    .map(|f| serde_json::json!({"marker": shown(f), "level": self.ladder.name(f.level), "offset": f.offset}))
                    .collect();
                return Ok(Verdict::block(format!(
                    "output carries the marking {} ({}) above the caller's clearance {} at byte {}",
                    shown(first),
                    self.ladder.name(first.level),
                    self.ladder.name(clearance),
                    first.offset
                ))
                .with("drift_kind", "classification".into())
                .with("marker", shown(first).into())
                .with("level", self.ladder.name(first.level).into())
                .with("clearance", self.ladder.name(clearance).into())
                .with("offset", first.offset.into())
                .with("markers", listed.into()));
            }
        }
        if let Some(cap) = cap.filter(|c| st.chars > *c) {
            return Ok(Verdict::block(format!(
                "output length {} characters exceeds the approved scope of {cap} characters",
                st.chars
            ))
            .with("drift_kind", "length".into())
            .with("chars", st.chars.into())
            .with("cap_chars", cap.into()));
        }
        Ok(Verdict::allow())
    }
}

impl Check for ScopeDrift {
    fn hooks(&self) -> Hooks {
        Hooks::INSPECT_CHUNK
    }

    fn inspect_chunk<'a>(
        &'a self,
        req: &'a Arc<Request>,
        resp: &'a ResponseSoFar,
        scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        let chunk = resp.chunk();
        if chunk.is_empty() {
            return Hook::allow();
        }
        let (inner, req, base) = (Arc::clone(&self.inner), Arc::clone(req), resp.chunk_start);
        scan_chunk(
            scratch,
            chunk,
            OFFLOAD_BYTES,
            move |st: &mut Drift, text: &str| inner.scan(st, &req, text, base),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::owner_resolution::tests::req;

    fn request(headers: &[(&str, &str)], body: serde_json::Value) -> Arc<Request> {
        Arc::new(Request::clone(&req(headers)).with_body(body))
    }

    /// Feed chunks; the index and verdict of the first non-allow, if any.
    fn run(c: &ScopeDrift, r: &Arc<Request>, chunks: &[&str]) -> Option<(usize, Verdict)> {
        let mut scratch: Scratch = None;
        let mut acc = String::new();
        for (i, ch) in chunks.iter().enumerate() {
            let start = acc.len();
            acc.push_str(ch);
            let resp = ResponseSoFar {
                accumulated: Arc::new(acc.clone()),
                chunk_start: start,
                chunk_index: i as u64 + 1,
                streaming: true,
                ..Default::default()
            };
            match c.inspect_chunk(r, &resp, &mut scratch) {
                Hook::Ready(Ok(v)) if v.is_allow() => {}
                Hook::Ready(Ok(v)) => return Some((i, v)),
                _ => panic!("small chunks are decided inline"),
            };
        }
        None
    }

    fn default_check() -> ScopeDrift {
        build(&json!({})).unwrap()
    }

    fn plain() -> Arc<Request> {
        request(&[], json!({}))
    }

    #[test]
    fn prose_with_parenthesised_letters_passes() {
        let c = default_check();
        for text in [
            "Select the file(s) you want, then press OK.",
            "(c) 2024 Example Corp. All rights reserved.",
            "(C) 2024 Example Corp.",
            "(C) Copyright Example Corp.",
            "Choose the option(s) and the user(s) (s) (S) (C) (TS) (U) mid-line.",
            "The top secret recipe is a secret to everyone.",
            "Write to parts//bin and https://host//path; gets// is fine.",
            "Answer:\n(A) Paris\n(B) London\n(C) Rome\n",
        ] {
            assert!(run(&c, &plain(), &[text]).is_none(), "{text:?} must pass");
        }
    }

    #[test]
    fn portion_marks_at_line_start_and_banners_anywhere() {
        let c = default_check();
        for (text, level) in [
            ("(S) The convoy leaves at dawn.", "SECRET"),
            ("Intro.\n  (TS) Details follow.", "TS"),
            ("Report\r\n(S//NF) text", "SECRET"),
            ("as marked SECRET//NOFORN in the cable", "SECRET"),
            ("header TOP SECRET//SCI footer", "TS/SCI"),
            ("lower case secret//noforn leaks too", "SECRET"),
            (
                "fullwidth \u{FF33}\u{FF25}\u{FF23}\u{FF32}\u{FF25}\u{FF34}//NOFORN",
                "SECRET",
            ),
            ("zero\u{200B}width SEC\u{200B}RET//REL TO USA", "SECRET"),
            ("(C) Confidential paragraph.", "SECRET"),
        ] {
            let (_, v) =
                run(&c, &plain(), &[text]).unwrap_or_else(|| panic!("{text:?} must be caught"));
            assert_eq!(v.metadata["level"], level, "{text:?}");
            assert_eq!(v.metadata["drift_kind"], "classification");
        }
        // The highest marker wins.
        let (_, v) = run(&c, &plain(), &["(S) x\nand TS//SCI later"]).unwrap();
        assert_eq!(v.metadata["level"], "TS/SCI");
        assert_eq!(v.metadata["markers"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn clearance_allows_markers_at_or_below_it() {
        let c = default_check();
        let secret = request(&[("x-caller-clearance", "SECRET")], json!({}));
        assert!(run(&c, &secret, &["(S) fine\nSECRET//NOFORN fine"]).is_none());
        let (_, v) = run(&c, &secret, &["(S) fine\nTOP SECRET//NOFORN not"]).unwrap();
        assert_eq!(v.metadata["level"], "TS");
        assert_eq!(v.metadata["clearance"], "SECRET");
        assert!(run(&c, &plain(), &["(U) unclassified paragraph"]).is_none());
    }

    #[test]
    fn markers_split_across_chunks_are_caught() {
        let c = default_check();
        assert!(run(&c, &plain(), &["text SECR", "ET//NOFORN"]).is_some_and(|(i, _)| i == 1));
        assert!(run(&c, &plain(), &["TOP SEC", "RET/", "/SCI"])
            .is_some_and(|(i, v)| i == 2 && v.metadata["level"] == "TS/SCI"));
        assert!(run(&c, &plain(), &["line one\n(", "S) second"]).is_some());
        assert!(run(&c, &plain(), &["line one\n", "(S) second"]).is_some());
        // Mid-line split portion mark: still prose.
        assert!(run(&c, &plain(), &["the file(", "s) and (", "S) here"]).is_none());
        // Word context carries over the boundary: PAR|TS// is not a marking.
        assert!(run(&c, &plain(), &["PAR", "TS//X"]).is_none());
        // Lettered list split over chunks.
        assert!(run(&c, &plain(), &["(A) one\n(B) two\n", "(C) three"]).is_none());
        // Fullwidth letters with zero-width spaces between them, one character
        // a chunk: the banner is found when its last character arrives.
        let laced: Vec<String> = "ＳＥＣＲＥＴ//ＮＯＦＯＲＮ"
            .chars()
            .map(|ch| format!("{ch}\u{200B}"))
            .collect();
        let mut chunks = vec!["é prose ".to_string()];
        chunks.extend(laced);
        let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        let (i, v) = run(&c, &plain(), &refs).unwrap();
        assert_eq!((i, &v.metadata["level"]), (8, &serde_json::json!("SECRET")));
        assert_eq!(v.metadata["offset"], "é prose ".len());
        // Lowercase, split right after the first letter.
        assert!(run(&c, &plain(), &["and s", "ecret//noforn"]).is_some_and(|(i, _)| i == 1));
    }

    #[test]
    fn marker_at_chunk_ten_reports_its_byte_offset() {
        let c = default_check();
        let mut chunks: Vec<String> = (0..9).map(|i| format!("chunk {i} é ")).collect();
        chunks.push("and then SECRET//NOFORN appears".into());
        let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        let (i, v) = run(&c, &plain(), &refs).unwrap();
        assert_eq!(i, 9);
        let whole: String = chunks.concat();
        assert_eq!(v.metadata["offset"], whole.find("SECRET//NOFORN").unwrap());
        // Split over chunks 10 and 11: the offset still points at its start.
        let mut chunks: Vec<String> = (0..9).map(|i| format!("chunk {i} ")).collect();
        chunks.push("x SECRET/".into());
        chunks.push("/NOFORN".into());
        let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        let (_, v) = run(&c, &plain(), &refs).unwrap();
        assert_eq!(
            v.metadata["offset"],
            chunks.concat().find("SECRET//").unwrap()
        );
    }

    #[test]
    fn long_streams_keep_a_bounded_window() {
        let c = default_check();
        let r = plain();
        let mut scratch: Scratch = None;
        let mut acc = String::new();
        for i in 0..3000 {
            let start = acc.len();
            acc.push_str("benign words here ");
            let resp = ResponseSoFar {
                accumulated: Arc::new(acc.clone()),
                chunk_start: start,
                chunk_index: i + 1,
                ..Default::default()
            };
            assert!(
                matches!(c.inspect_chunk(&r, &resp, &mut scratch), Hook::Ready(Ok(v)) if v.is_allow())
            );
        }
        let st = scratch
            .as_ref()
            .and_then(|b| b.downcast_ref::<Drift>())
            .unwrap();
        assert!(st.tail.len() <= c.inner.overlap);
    }

    #[test]
    fn length_drift_counts_characters_of_semantic_text() {
        let c = default_check();
        let r = request(&[], json!({"max_tokens": 10}));
        // 10 tokens x 4 x 1.1 = 44 characters allowed.
        assert!(run(&c, &r, &["a".repeat(20).as_str(), "b".repeat(24).as_str()]).is_none());
        let (i, v) = run(&c, &r, &["a".repeat(40).as_str(), "b".repeat(5).as_str()]).unwrap();
        assert_eq!((i, v.metadata["drift_kind"].as_str()), (1, Some("length")));
        // Multi-byte characters count once.
        assert!(run(&c, &r, &["é".repeat(44).as_str()]).is_none());
        // No declared limit: no length check.
        assert!(run(&c, &plain(), &["z".repeat(100_000).as_str()]).is_none());
        let anth = request(&[], json!({"max_completion_tokens": 1}));
        assert!(run(&c, &anth, &["12345"]).is_some());
    }

    #[test]
    fn custom_markers_and_levels() {
        let c = build(&json!({
            "levels": ["PUBLIC", "INTERNAL", "RESTRICTED"],
            "markers": {"RESTRICTED": "RESTRICTED", "(R)": "restricted", "INTERNAL ONLY": "INTERNAL"},
        }))
        .unwrap();
        assert!(
            run(&c, &plain(), &["this is restricted to staff"]).is_none(),
            "exact case for plain banners"
        );
        assert!(
            run(&c, &plain(), &["UNRESTRICTED data"]).is_none(),
            "whole words"
        );
        assert!(run(&c, &plain(), &["RESTRICTED: do not share"]).is_some());
        assert!(
            run(&c, &plain(), &["SECRET//NOFORN"]).is_none(),
            "the default table is replaced"
        );
        let internal = request(&[("x-caller-clearance", "internal")], json!({}));
        assert!(run(&c, &internal, &["INTERNAL ONLY memo"]).is_none());
        assert!(run(&c, &internal, &["note\n(R) restricted paragraph"]).is_some());
        let off = build(&json!({"check_classification_drift": false})).unwrap();
        assert!(run(&off, &plain(), &["TOP SECRET//SCI"]).is_none());
    }

    #[test]
    fn config_errors() {
        for (cfg, key) in [
            (json!({"markers": {"X//": "COSMIC"}}), "markers.X//"),
            (json!({"levels": ["A", "B"]}), "markers"),
            (json!({"token_tolerance": -0.5}), "token_tolerance"),
            (json!({"chars_per_token": 0}), "chars_per_token"),
            (json!({"marker": {}}), "marker"),
            (json!({"markers": {"": "SECRET"}}), "markers."),
        ] {
            let e = build(&cfg).err().unwrap();
            assert!(
                e.contains(NAME) && e.contains(key) && e.contains("fix"),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn compliance() {
        for cfg in [
            json!({}),
            json!({"markers": {"é//": "TS", "(Ⓢ)": "SECRET", "X": "CUI"}}),
        ] {
            let c: Arc<dyn Check> = Arc::new(build(&cfg).unwrap());
            crate::checks::compliance::assert_compliant(&c);
        }
    }
}
