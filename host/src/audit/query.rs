//! Reading a log for people: find one entry (`audit show`), the last N entries that
//! match a filter (`audit tail`, read backwards from the end), one-line summaries.
//! Nothing here checks signatures — that is [`super::verify`]'s job.
//!
//! Filter syntax: `key=value[,key=value...]`, all must match. Keys: `decision`,
//! `check` (= `check_name`), `owner` (`type:id`), any top-level field by name,
//! `metadata.NAME`, and any other NAME as `metadata.NAME` (so `shadow=true`
//! matches `metadata.shadow`). Strings compare by value, other JSON by its text.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::json::{self, Json};
use super::line::ENTRY_KEYS;

/// Reading or filtering failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A bad `--filter`.
    #[error("bad filter {0:?}: use key=value[,key=value...], e.g. decision=block,check=rate_limit,shadow=true")]
    BadFilter(String),
}

/// A parsed `--filter`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    conds: Vec<(Vec<String>, String)>,
}

impl std::str::FromStr for Filter {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        let mut conds = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(QueryError::BadFilter(s.to_owned()));
            };
            let key = key.trim();
            let path: Vec<String> = match key {
                "" => return Err(QueryError::BadFilter(s.to_owned())),
                "check" => vec!["check_name".into()],
                "owner" => vec!["owner".into()],
                k if ENTRY_KEYS.contains(&k) => vec![k.into()],
                k => {
                    let k = k.strip_prefix("metadata.").unwrap_or(k);
                    std::iter::once("metadata")
                        .chain(k.split('.'))
                        .map(String::from)
                        .collect()
                }
            };
            conds.push((path, value.trim().to_owned()));
        }
        Ok(Self { conds })
    }
}

impl Filter {
    /// Does `entry` satisfy every condition?
    pub fn matches(&self, entry: &Json<'_>) -> bool {
        self.conds.iter().all(|(path, want)| {
            if path.len() == 1 && path[0] == "owner" {
                let t = entry.get("owner_type").and_then(Json::as_str).unwrap_or("");
                let i = entry.get("owner_id").and_then(Json::as_str).unwrap_or("");
                return format!("{t}:{i}") == *want;
            }
            let mut v = Some(entry);
            for p in path {
                v = v.and_then(|x| x.get(p));
            }
            match v {
                Some(Json::Str(s)) => s == want,
                Some(other) => other.canonical() == *want,
                None => false,
            }
        })
    }
}

/// The entry with id `entry_id` (ASCII case-insensitive), pretty-printed.
pub fn find_entry(path: &Path, entry_id: &str) -> Result<Option<String>, QueryError> {
    let io = |source| QueryError::Io {
        path: path.to_owned(),
        source,
    };
    let needle = entry_id.trim().to_ascii_lowercase();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            return Ok(None);
        }
        if needle.is_empty() || !contains_ignore_case(&line, needle.as_bytes()) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            continue;
        };
        if let Ok(v) = json::parse(text.trim()) {
            if v.get("entry_id")
                .and_then(Json::as_str)
                .is_some_and(|id| id.eq_ignore_ascii_case(&needle))
            {
                return Ok(Some(terminal_safe_json(&json::to_pretty(&v))));
            }
        }
    }
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The last `n` lines (oldest first) that parse and match `filter`. Reads backwards
/// from the end, so the cost is proportional to what is skipped, not the file size.
/// Unparseable lines are skipped.
pub fn tail(path: &Path, n: usize, filter: &Filter) -> Result<Vec<String>, QueryError> {
    let io = |source| QueryError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut pos = file.metadata().map_err(io)?.len();
    let mut carry: Vec<u8> = Vec::new(); // start of the line that continues into the next block
    let mut out = Vec::new();
    const BLOCK: u64 = 64 << 10;
    while out.len() < n {
        if pos == 0 {
            consider(&carry, filter, &mut out);
            break;
        }
        let start = pos.saturating_sub(BLOCK);
        let mut block = vec![0u8; usize::try_from(pos - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_exact(&mut block).map_err(io)?;
        pos = start;
        block.extend_from_slice(&carry);
        let mut end = block.len();
        while out.len() < n {
            match block[..end].iter().rposition(|b| *b == b'\n') {
                Some(i) => {
                    consider(&block[i + 1..end], filter, &mut out);
                    end = i;
                }
                None => break,
            }
        }
        block.truncate(end);
        carry = block;
    }
    out.reverse();
    Ok(out)
}

fn consider(line: &[u8], filter: &Filter, out: &mut Vec<String>) {
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if let Ok(v) = json::parse(text) {
        if filter.matches(&v) {
            out.push(terminal_safe_json(text));
        }
    }
}

/// One human-readable line for an entry: time, decision, check, owner, reason, id.
pub fn summary(line: &str) -> String {
    let Ok(v) = json::parse(line) else {
        return format!("(unparseable) {}", sanitize(line));
    };
    let s = |k: &str| {
        v.get(k)
            .and_then(Json::as_str)
            .map(sanitize)
            .unwrap_or_default()
    };
    let ts = match v.get("ts_ns") {
        Some(Json::Int(t)) => t
            .parse::<u64>()
            .map(format_ts)
            .unwrap_or_else(|_| t.to_string()),
        _ => "?".to_owned(),
    };
    let shadow = matches!(
        v.get("metadata").and_then(|m| m.get("shadow")),
        Some(Json::Bool(true))
    );
    format!(
        "{ts} {:<8} {:<20} {}:{} \"{}\"{} id={}",
        s("decision"),
        s("check_name"),
        s("owner_type"),
        s("owner_id"),
        s("reason"),
        if shadow { " [shadow]" } else { "" },
        s("entry_id")
    )
}

/// Neutralise terminal control characters (and bidi overrides) in untrusted text.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// JSON text with characters a terminal may act on (DEL, C1 controls, line/paragraph
/// separators, bidi controls) rewritten as `\uXXXX` escapes: same JSON value, safe
/// to print. (C0 controls are already escaped in canonical JSON.)
pub fn terminal_safe_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) for nanoseconds since the epoch.
pub fn format_ts(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let millis = (ts_ns / 1_000_000) % 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil-from-days (H. Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_fields_and_metadata() {
        let v = json::parse(r#"{"decision":"block","check_name":"rate_limit","owner_type":"human","owner_id":"a","metadata":{"shadow":true,"n":2,"stage":"admission"}}"#).unwrap();
        for f in [
            "decision=block",
            "check=rate_limit,shadow=true",
            "owner=human:a",
            "metadata.n=2",
            "stage=admission",
            "",
        ] {
            assert!(f.parse::<Filter>().unwrap().matches(&v), "{f}");
        }
        for f in [
            "decision=allow",
            "shadow=false",
            "missing=x",
            "owner=agent:a",
        ] {
            assert!(!f.parse::<Filter>().unwrap().matches(&v), "{f}");
        }
        assert!("decision".parse::<Filter>().is_err());
    }

    #[test]
    fn tail_reads_backwards_across_blocks_and_find_entry_finds_one() {
        let dir = std::env::temp_dir().join(format!("signet-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let pad = "x".repeat(9000); // 20 lines of ~9 KB: several 64 KiB blocks
        let mut text = String::new();
        for i in 0..20 {
            let d = if i % 4 == 0 { "block" } else { "allow" };
            text.push_str(&format!(
                "{{\"entry_id\":\"E-{i}\",\"decision\":\"{d}\",\"reason\":\"{pad}\"}}\n"
            ));
        }
        text.push_str("{\"torn");
        std::fs::write(&path, &text).unwrap();
        let ids = |lines: Vec<String>| -> Vec<String> {
            lines
                .iter()
                .map(|l| {
                    json::parse(l)
                        .unwrap()
                        .get("entry_id")
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(
            ids(tail(&path, 3, &Filter::default()).unwrap()),
            ["E-17", "E-18", "E-19"]
        );
        assert_eq!(tail(&path, 100, &Filter::default()).unwrap().len(), 20);
        let blocks: Filter = "decision=block".parse().unwrap();
        assert_eq!(ids(tail(&path, 2, &blocks).unwrap()), ["E-12", "E-16"]);
        assert!(find_entry(&path, "e-7")
            .unwrap()
            .unwrap()
            .contains("\"E-7\""));
        assert!(find_entry(&path, "E-70").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn timestamps_format_in_utc() {
        assert_eq!(format_ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_ts(1_795_333_449_622_457_175),
            "2026-11-22T07:44:09.622Z"
        );
        assert_eq!(
            format_ts(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn sanitize_neutralises_escapes() {
        assert_eq!(sanitize("a\u{1b}[31mb\u{202e}"), "a\\u{1b}[31mb\\u{202e}");
        let safe = terminal_safe_json("{\"r\":\"a\u{9b}b\u{2028}\"}");
        assert_eq!(safe, "{\"r\":\"a\\u009bb\\u2028\"}");
        assert_eq!(
            json::parse(&safe).unwrap(),
            json::parse("{\"r\":\"a\u{9b}b\u{2028}\"}").unwrap()
        );
    }
}
