//! Checking one log line on its own: parse it, find its key, recompute its HMAC.
//! (Links between lines are the verifier's job.)
//!
//! Fast path: a line our writer (or signet-sign) wrote is already canonical, so the
//! signed payload is the line with its `"hmac":"…",` member cut out. The fast path
//! locates the fields with a validating skip-scan (no tree), and accepts the line if
//! the HMAC over the cut bytes equals the stored one: the key holder signed exactly
//! those bytes, and since both writers only sign canonical JSON, signet-sign would
//! recompute the same payload. Anything else (a tampered line, foreign formatting,
//! an unknown key) takes the slow path: a full parse, signet-sign's schema checks,
//! re-canonicalisation, HMAC. Results are identical; only the cost differs.
//!
//! Schema (stricter than signet-sign only where it ignores data): exactly the twelve
//! keys, no duplicates; `ts_ns` an integer in `0..=10^19`; `decision` and
//! `owner_type` from their enums; `hmac`/`prev_hmac` empty or 64 lowercase hex
//! digits; `metadata` an object; `metadata._seq`, when present, a non-negative integer.

use std::borrow::Cow;
use std::ops::Range;

use hmac::Mac;

use super::entry::{hex, Decision, HmacSha256, OwnerType, KEY_ID_FIELD, SEQ_FIELD};
use super::json::{self, Json};
use super::keys::Keyring;

/// The twelve entry keys, sorted.
pub const ENTRY_KEYS: [&str; 12] = [
    "approval_chain",
    "check_name",
    "decision",
    "entry_id",
    "hmac",
    "metadata",
    "owner_id",
    "owner_type",
    "prev_hmac",
    "reason",
    "request_fingerprint",
    "ts_ns",
];

/// The `_signing_key_id` field as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyIdField<'a> {
    /// Absent or `""`.
    Missing,
    /// Present but not a string.
    NotString,
    /// The id.
    Id(Cow<'a, str>),
}

/// The fields the chain checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFields<'a> {
    /// `entry_id`.
    pub entry_id: Cow<'a, str>,
    /// `hmac` (validated: empty or 64 lowercase hex).
    pub hmac: Cow<'a, str>,
    /// `prev_hmac` (validated likewise).
    pub prev_hmac: Cow<'a, str>,
    /// `metadata._signing_key_id`.
    pub key_id: KeyIdField<'a>,
    /// `metadata._seq`.
    pub seq: Option<u64>,
}

/// Outcome of the self-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfStatus {
    /// The HMAC matches.
    Ok,
    /// The HMAC does not match; carries the recomputed value.
    Mismatch(String),
    /// No key id.
    MissingKeyId,
    /// The key id is not a string.
    KeyIdNotString,
    /// The key id is not in the keyring.
    UnknownKey(String),
}

/// One line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineCheck<'a> {
    /// Not JSON or not an entry; the detail says why.
    Malformed(String),
    /// A well-formed entry and its self-check result.
    Entry(EntryFields<'a>, SelfStatus),
}

/// Parse and self-check one line (without its trailing newline).
pub fn check_line<'a>(line: &'a str, keys: &Keyring) -> LineCheck<'a> {
    if let Some((fields, signed)) = fast_scan(line) {
        if let KeyIdField::Id(id) = &fields.key_id {
            if let Some(key) = keys.get(id) {
                let mut mac = keyed(key.secret());
                mac.update(&line.as_bytes()[signed[0].clone()]);
                mac.update(&line.as_bytes()[signed[1].clone()]);
                if hex_eq(&mac.finalize().into_bytes(), &fields.hmac)
                    && is_link_value(&fields.prev_hmac)
                {
                    return LineCheck::Entry(fields, SelfStatus::Ok);
                }
            }
        }
    }
    let (fields, payload) = match parse_entry(line) {
        Ok(parsed) => parsed,
        Err(detail) => return LineCheck::Malformed(detail),
    };
    let status = match &fields.key_id {
        KeyIdField::Missing => SelfStatus::MissingKeyId,
        KeyIdField::NotString => SelfStatus::KeyIdNotString,
        KeyIdField::Id(id) => match keys.get(id) {
            None => SelfStatus::UnknownKey(id.to_string()),
            Some(key) => {
                let mut mac = keyed(key.secret());
                mac.update(&payload);
                let computed = hex(&mac.finalize().into_bytes());
                if computed == fields.hmac {
                    SelfStatus::Ok
                } else {
                    SelfStatus::Mismatch(computed)
                }
            }
        },
    };
    LineCheck::Entry(fields, status)
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; the fallback is unreachable.
    <HmacSha256 as hmac::KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| <HmacSha256 as hmac::KeyInit>::new(&Default::default()))
}

/// Is `hex_text` the lowercase hex of `digest`? (No allocation.)
fn hex_eq(digest: &[u8], hex_text: &str) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let t = hex_text.as_bytes();
    t.len() == digest.len() * 2
        && digest.iter().enumerate().all(|(i, b)| {
            t[2 * i] == HEX[usize::from(b >> 4)] && t[2 * i + 1] == HEX[usize::from(b & 0xf)]
        })
}

/// `""` or 64 lowercase hex digits (signet-sign's rule for `hmac`/`prev_hmac`).
pub fn is_link_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Locate fields without building a tree. `None` means "use the slow path".
/// Also returns the two byte ranges that remain when the `hmac` member is cut out.
///
/// The scan does not validate JSON, and need not: a line is only accepted if the
/// HMAC over the cut bytes matches, i.e. those bytes are a payload an honest writer
/// produced (valid canonical JSON), and the cut is a whole top-level member
/// `"hmac":"<64 hex>"` at a member boundary, so the line is that payload plus its
/// hmac. Fields are read depth-aware (top level, and metadata's own members), so
/// on such input they are exactly what a full parse yields.
fn fast_scan(line: &str) -> Option<(EntryFields<'_>, [Range<usize>; 2])> {
    let b = line.as_bytes();
    let mut s = Scan { b, i: 0 };
    s.byte(b'{')?;
    let (mut seen, mut entry_id, mut hmac, mut prev_hmac) = (0u16, None, None, None);
    let (mut key_id, mut seq) = (KeyIdField::Missing, None);
    let mut cut = None;
    let mut last_comma = None;
    loop {
        let member_start = s.i;
        let key = s.plain_string(line)?;
        s.byte(b':')?;
        let idx = key_index(key)?;
        if seen & (1 << idx) != 0 {
            return None;
        }
        seen |= 1 << idx;
        match idx {
            3 => entry_id = Some(Cow::Borrowed(s.plain_string(line)?)),
            4 => hmac = Some(Cow::Borrowed(s.plain_string(line)?)),
            8 => prev_hmac = Some(Cow::Borrowed(s.plain_string(line)?)),
            5 => (key_id, seq) = s.metadata(line)?,
            _ => s.value()?,
        }
        let value_end = s.i;
        let more = match b.get(s.i)? {
            b',' => true,
            b'}' => false,
            _ => return None,
        };
        s.i += 1;
        if idx == 4 {
            cut = match (more, last_comma) {
                (true, _) => Some(member_start..s.i),
                (false, Some(comma)) => Some(comma..value_end),
                (false, None) => return None,
            };
        }
        if !more {
            break;
        }
        last_comma = Some(s.i - 1);
    }
    if s.i != b.len() || seen != (1 << ENTRY_KEYS.len()) - 1 {
        return None;
    }
    let fields = EntryFields {
        entry_id: entry_id?,
        hmac: hmac?,
        prev_hmac: prev_hmac?,
        key_id,
        seq,
    };
    let cut = cut?;
    Some((fields, [0..cut.start, cut.end..b.len()]))
}

/// Byte cursor for [`fast_scan`]: strings, depth and delimiters only.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn byte(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// A string (cursor on its quote): the raw range between the quotes, and
    /// whether it contains escapes.
    fn string(&mut self) -> Option<(Range<usize>, bool)> {
        self.byte(b'"')?;
        let (start, mut escaped) = (self.i, false);
        loop {
            let j = json::find_quote_or_backslash(self.b, self.i)?;
            if self.b[j] == b'"' {
                self.i = j + 1;
                return Some((start..j, escaped));
            }
            escaped = true;
            self.i = j + 2;
        }
    }

    /// A string without escapes, as a slice of `line` (escapes: slow path).
    fn plain_string(&mut self, line: &'a str) -> Option<&'a str> {
        match self.string()? {
            (r, false) => line.get(r),
            (_, true) => None,
        }
    }

    /// Skip any value.
    fn value(&mut self) -> Option<()> {
        match *self.b.get(self.i)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.b.get(self.i)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                while !matches!(*self.b.get(self.i)?, b',' | b'}' | b']') {
                    self.i += 1;
                }
            }
        }
        Some(())
    }

    /// The metadata object: its own `_signing_key_id` and `_seq`.
    fn metadata(&mut self, line: &'a str) -> Option<(KeyIdField<'a>, Option<u64>)> {
        let (mut key_id, mut seq) = (KeyIdField::Missing, None);
        self.byte(b'{')?;
        if self.byte(b'}').is_some() {
            return Some((key_id, seq));
        }
        loop {
            let key = self.plain_string(line)?;
            self.byte(b':')?;
            let start = self.i;
            if key == KEY_ID_FIELD && self.b.get(self.i) == Some(&b'"') {
                let id = self.plain_string(line)?;
                key_id = if id.is_empty() {
                    KeyIdField::Missing
                } else {
                    KeyIdField::Id(Cow::Borrowed(id))
                };
            } else {
                self.value()?;
                if key == KEY_ID_FIELD {
                    key_id = KeyIdField::NotString;
                } else if key == SEQ_FIELD {
                    seq = Some(line.get(start..self.i)?.parse().ok()?);
                }
            }
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some((key_id, seq));
                }
                _ => return None,
            }
        }
    }
}

/// Position of `key` in [`ENTRY_KEYS`] (a `match` compiles to a length switch).
fn key_index(key: &str) -> Option<usize> {
    Some(match key {
        "approval_chain" => 0,
        "check_name" => 1,
        "decision" => 2,
        "entry_id" => 3,
        "hmac" => 4,
        "metadata" => 5,
        "owner_id" => 6,
        "owner_type" => 7,
        "prev_hmac" => 8,
        "reason" => 9,
        "request_fingerprint" => 10,
        "ts_ns" => 11,
        _ => return None,
    })
}

fn key_id_of<'a>(value: Option<&Json<'a>>) -> KeyIdField<'a> {
    match value {
        None => KeyIdField::Missing,
        Some(Json::Str(s)) if s.is_empty() => KeyIdField::Missing,
        Some(Json::Str(s)) => KeyIdField::Id(s.clone()),
        Some(_) => KeyIdField::NotString,
    }
}

fn seq_of(value: &Json<'_>) -> Result<u64, String> {
    match value {
        Json::Int(text) => text
            .parse()
            .map_err(|_| format!("metadata.{SEQ_FIELD} {text} is not a u64")),
        other => Err(format!(
            "metadata.{SEQ_FIELD} must be a non-negative integer, got {}",
            other.canonical()
        )),
    }
}

/// Full parse with signet-sign's schema checks. Returns the fields and the
/// canonical payload (the entry without `hmac`) that the HMAC must cover.
pub fn parse_entry(line: &str) -> Result<(EntryFields<'_>, Vec<u8>), String> {
    let value = json::parse(line).map_err(|e| format!("cannot parse as JSON: {e}"))?;
    let Json::Obj(members) = value else {
        return Err("line is not a JSON object".to_owned());
    };
    let mut found: [Option<&Json<'_>>; 12] = [None; 12];
    for (key, value) in &members {
        let Some(i) = ENTRY_KEYS.iter().position(|k| k == key) else {
            return Err(format!(
                "unknown field {key:?} (an entry has exactly: {})",
                ENTRY_KEYS.join(", ")
            ));
        };
        if found[i].replace(value).is_some() {
            return Err(format!("duplicate field {key:?}"));
        }
    }
    let field = |i: usize| found[i].ok_or_else(|| format!("missing field {:?}", ENTRY_KEYS[i]));
    let string = |i: usize| match field(i)? {
        Json::Str(s) => Ok(s.clone()),
        other => Err(format!(
            "{} must be a string, got {}",
            ENTRY_KEYS[i],
            other.canonical()
        )),
    };
    match field(0)? {
        Json::Arr(items) if items.iter().all(|i| matches!(i, Json::Str(_))) => {}
        _ => return Err("approval_chain must be a list of strings".to_owned()),
    }
    string(1)?;
    let decision = string(2)?;
    Decision::parse(&decision)
        .ok_or_else(|| format!("decision {decision:?} is not allow|block|redact|escalate"))?;
    let entry_id = string(3)?;
    let hmac = string(4)?;
    let metadata = field(5)?;
    if !matches!(metadata, Json::Obj(_)) {
        return Err("metadata must be an object".to_owned());
    }
    string(6)?;
    let owner_type = string(7)?;
    OwnerType::parse(&owner_type)
        .ok_or_else(|| format!("owner_type {owner_type:?} is not human|agent|policy|unresolved"))?;
    let prev_hmac = string(8)?;
    string(9)?;
    string(10)?;
    match field(11)? {
        Json::Int(t)
            if t.parse::<u64>()
                .is_ok_and(|n| n <= 10_000_000_000_000_000_000) => {}
        other => {
            return Err(format!(
                "ts_ns must be an integer in 0..=10^19, got {}",
                other.canonical()
            ))
        }
    }
    for (name, v) in [("hmac", &hmac), ("prev_hmac", &prev_hmac)] {
        if !is_link_value(v) {
            return Err(format!(
                "{name} must be empty or 64 lowercase hex digits, got {} characters",
                v.chars().count()
            ));
        }
    }
    let key_id = key_id_of(metadata.get(KEY_ID_FIELD));
    let seq = metadata.get(SEQ_FIELD).map(seq_of).transpose()?;
    let payload_members: Vec<_> = members
        .iter()
        .filter(|(k, _)| k != "hmac")
        .cloned()
        .collect();
    let mut payload = Vec::with_capacity(line.len());
    json::write_canonical(&Json::Obj(payload_members), &mut payload);
    Ok((
        EntryFields {
            entry_id,
            hmac,
            prev_hmac,
            key_id,
            seq,
        },
        payload,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::audit::entry::{encode_line, ChainPos, EntryId, NewEntry};
    use crate::audit::keys::HmacKey;

    fn ring() -> Keyring {
        Keyring::new(HmacKey::new("k1", vec![1; 32]).unwrap())
    }

    fn line() -> String {
        let e = NewEntry::new(EntryId::new_v4(), "c", Decision::Allow, "ok").meta("x", 0.5);
        let pos = ChainPos {
            prev_hmac: "",
            seq: 1,
            key_id: "k1",
            instance: "t",
        };
        let (l, _) = encode_line(&e, &pos, &[1; 32]).unwrap();
        String::from_utf8(l).unwrap().trim_end().to_owned()
    }

    #[test]
    fn fast_and_slow_paths_agree() {
        for (i, k) in ENTRY_KEYS.iter().enumerate() {
            assert_eq!(key_index(k), Some(i));
        }
        let l = line();
        let (fast, cut) = fast_scan(&l).unwrap();
        let (slow, payload) = parse_entry(&l).unwrap();
        assert_eq!(fast, slow);
        assert_eq!(
            [&l[cut[0].clone()], &l[cut[1].clone()]].concat().as_bytes(),
            payload.as_slice()
        );
        assert!(matches!(
            check_line(&l, &ring()),
            LineCheck::Entry(_, SelfStatus::Ok)
        ));
    }

    #[test]
    fn reformatted_line_still_verifies_via_slow_path() {
        let l = line();
        let spaced = l.replace("\",\"", "\", \"").replacen('{', "{ ", 1);
        assert!(fast_scan(&spaced).is_none() || spaced != l);
        assert!(matches!(
            check_line(&spaced, &ring()),
            LineCheck::Entry(_, SelfStatus::Ok)
        ));
        // Key order does not matter either (hmac moved to the end).
        let v = json::parse(&l).unwrap();
        let Json::Obj(mut m) = v else { unreachable!() };
        let pos = m.iter().position(|(k, _)| k == "hmac").unwrap();
        let h = m.remove(pos);
        let mut moved = Json::Obj(m).canonical();
        moved.pop();
        moved.push_str(&format!(",\"hmac\":{}}}", h.1.canonical()));
        assert!(matches!(
            check_line(&moved, &ring()),
            LineCheck::Entry(_, SelfStatus::Ok)
        ));
    }

    #[test]
    fn an_hmac_moved_into_metadata_is_not_accepted() {
        // The cut bytes would still be the signed payload, but the line is no longer
        // an entry with a top-level hmac: the fast path must not accept it.
        let l = line();
        let (fields, _) = fast_scan(&l).unwrap();
        let member = format!("\"hmac\":\"{}\",", fields.hmac);
        let nested = l.replacen(&member, "", 1).replacen(
            "\"metadata\":{",
            &format!("\"metadata\":{{{member}"),
            1,
        );
        assert!(fast_scan(&nested).is_none());
        assert!(matches!(
            check_line(&nested, &ring()),
            LineCheck::Malformed(_)
        ));
    }

    #[test]
    fn schema_violations_are_malformed() {
        let l = line();
        for (from, to) in [
            ("\"decision\":\"allow\"", "\"decision\":\"allowed\""),
            ("\"ts_ns\":", "\"ts_ns\":-"),
            ("\"reason\":\"ok\"", "\"reason\":1"),
            ("{\"approval", "{\"extra\":1,\"approval"),
        ] {
            let bad = l.replacen(from, to, 1);
            assert!(
                matches!(check_line(&bad, &ring()), LineCheck::Malformed(_)),
                "{to}"
            );
        }
        assert!(matches!(
            check_line(&l.replace("\"_seq\":1", "\"_seq\":\"1\""), &ring()),
            LineCheck::Malformed(_)
        ));
        assert!(matches!(
            check_line(&l[..l.len() - 3], &ring()),
            LineCheck::Malformed(_)
        ));
    }

    #[test]
    fn key_problems_are_classified() {
        let l = line();
        let other = Keyring::new(HmacKey::new("k2", vec![1; 32]).unwrap());
        match check_line(&l, &other) {
            LineCheck::Entry(_, SelfStatus::UnknownKey(k)) => assert_eq!(k, "k1"),
            x => panic!("{x:?}"),
        }
        let no_key = l.replace("\"_signing_key_id\":\"k1\",", "");
        assert!(matches!(
            check_line(&no_key, &ring()),
            LineCheck::Entry(_, SelfStatus::MissingKeyId)
        ));
        let num_key = l.replace("\"_signing_key_id\":\"k1\"", "\"_signing_key_id\":7");
        assert!(matches!(
            check_line(&num_key, &ring()),
            LineCheck::Entry(_, SelfStatus::KeyIdNotString)
        ));
        let tampered = l.replace("\"reason\":\"ok\"", "\"reason\":\"OK\"");
        assert!(matches!(
            check_line(&tampered, &ring()),
            LineCheck::Entry(_, SelfStatus::Mismatch(_))
        ));
    }
}
