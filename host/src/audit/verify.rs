//! The verifier: walk a log (or every `*.jsonl` chain in a directory) and report
//! every break, in the same terms as signet-sign's `audit verify`.
//!
//! Per entry (index = position among non-blank lines, 0-based):
//! - `malformed_line`: not UTF-8 / JSON / an entry, or a non-string key id;
//! - `link_mismatch`: `prev_hmac` differs from the previous entry's `hmac` (`""` for
//!   the first); when it fires, a `self_mismatch` on the same entry is suppressed,
//!   as in signet-sign, since `prev_hmac` is part of the signed payload;
//! - `missing_key_id` / `unknown_key` / `self_mismatch`: the HMAC check;
//! - `seq_gap`: `_seq` is not the previous `_seq` + 1 (or the first entry's is not
//!   1); the detail names the first missing number. Entries without `_seq`
//!   (signet-sign's) are not sequence-checked.
//!
//! Per file, when `<log>.head` exists (read BEFORE the log, so a concurrent writer
//! cannot make it look ahead): `head_invalid` if its signature fails; `truncated`
//! if the log ends before the head's seq; `link_mismatch` if the entry at the head's
//! seq is not the one the head names. A missing head is reported, not a break,
//! unless `require_head` is set (a copied log often travels without its head).
//!
//! Speed: lines are checked in parallel (the HMAC is the expensive part, see
//! [`super::line`]), chunk by chunk, then a sequential pass compares neighbours.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::head::{head_path, read_head, Head};
use super::json::find_byte;
use super::keys::Keyring;
use super::line::{check_line, EntryFields, LineCheck, SelfStatus};

/// Default longest line the verifier holds in memory (64 MiB).
pub const MAX_LINE: usize = 64 << 20;

/// What kind of break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The entry's HMAC does not match its content.
    SelfMismatch,
    /// `prev_hmac` does not match the previous entry (insertion, deletion, reorder).
    LinkMismatch,
    /// Not a parseable entry.
    MalformedLine,
    /// No `_signing_key_id`.
    MissingKeyId,
    /// Key id not in the keyring.
    UnknownKey,
    /// Sequence numbers skip or go back.
    SeqGap,
    /// The log ends before the signed head's seq.
    Truncated,
    /// The head file is damaged or not signed by a known key.
    HeadInvalid,
}

impl BreakKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfMismatch => "self_mismatch",
            Self::LinkMismatch => "link_mismatch",
            Self::MalformedLine => "malformed_line",
            Self::MissingKeyId => "missing_key_id",
            Self::UnknownKey => "unknown_key",
            Self::SeqGap => "seq_gap",
            Self::Truncated => "truncated",
            Self::HeadInvalid => "head_invalid",
        }
    }
}

/// One break.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    /// Entry index (0-based, blank lines not counted).
    pub index: u64,
    /// Line number (1-based).
    pub line: u64,
    /// The entry id, when known.
    pub entry_id: String,
    /// Kind.
    pub kind: BreakKind,
    /// Explanation.
    pub detail: String,
}

/// State of the head file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HeadStatus {
    /// Not checked (disabled).
    NotChecked,
    /// No head file.
    Missing,
    /// Present and signed; records `seq`.
    Valid {
        /// The head's seq.
        seq: u64,
    },
    /// Present but unusable.
    Invalid {
        /// Why.
        detail: String,
    },
}

/// The result for one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The log.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Entries walked (malformed lines included).
    pub total_entries: u64,
    /// Breaks, in order (at most `max_breaks`).
    pub breaks: Vec<ChainBreak>,
    /// All breaks found, including those not stored.
    pub breaks_total: u64,
    /// Index of the last entry whose HMAC verified; -1 when none did.
    pub last_known_good_index: i64,
    /// Its hmac (`""` when none).
    pub last_known_good_hmac: String,
    /// The head file.
    pub head: HeadStatus,
}

impl VerifyReport {
    /// True when there are no breaks.
    pub fn ok(&self) -> bool {
        self.breaks_total == 0
    }
}

/// Tuning and strictness.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Worker threads (default: available cores, at most 8).
    pub threads: usize,
    /// Bytes read per chunk.
    pub chunk_bytes: usize,
    /// Breaks stored per file (all are counted).
    pub max_breaks: usize,
    /// Check `<log>.head`.
    pub check_head: bool,
    /// Treat a missing head as `truncated`.
    pub require_head: bool,
    /// Longest line held in memory; longer ones are `malformed_line` (default [`MAX_LINE`]).
    pub max_line: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        Self {
            threads,
            chunk_bytes: 8 << 20,
            max_breaks: 10_000,
            check_head: true,
            require_head: false,
            max_line: MAX_LINE,
        }
    }
}

/// The verifier could not run (as opposed to finding breaks).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A directory with no chains.
    #[error("{path} contains no *.jsonl audit logs")]
    NoLogs {
        /// The directory.
        path: PathBuf,
    },
}

/// The chain files in a directory: regular `*.jsonl` files, sorted.
pub fn chain_files(dir: &Path) -> Result<Vec<PathBuf>, VerifyError> {
    let io = |source| VerifyError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_file()
            && path.extension().is_some_and(|e| e == "jsonl")
        {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(VerifyError::NoLogs {
            path: dir.to_owned(),
        });
    }
    Ok(files)
}

/// Verify a file, or each chain file of a directory. `progress(done, total)` is
/// called after each chunk with byte counts across all files.
pub fn verify_path(
    path: &Path,
    keys: &Keyring,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<VerifyReport>, VerifyError> {
    let files = if path.is_dir() {
        chain_files(path)?
    } else {
        vec![path.to_owned()]
    };
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .collect();
    let total: u64 = sizes.iter().sum();
    let mut done = 0;
    let mut reports = Vec::new();
    for (file, size) in files.iter().zip(sizes) {
        reports.push(verify_file(file, keys, opts, &mut |d, _| {
            progress(done + d, total)
        })?);
        done += size;
    }
    Ok(reports)
}

/// Verify one log file.
pub fn verify_file(
    path: &Path,
    keys: &Keyring,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    let io = |source| VerifyError::Io {
        path: path.to_owned(),
        source,
    };
    let head = if opts.check_head {
        Some(read_head(&head_path(path)))
    } else {
        None
    };
    let mut file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let head_seq = match &head {
        Some(Ok(Some(h))) => Some(h.seq),
        _ => None,
    };
    let mut walk = Walk::new(path, size, opts.max_breaks, head_seq);
    let mut data: Vec<u8> = Vec::new();
    let mut consumed = 0u64;
    let mut first = true;
    let mut skipping = false; // inside an over-long line
    loop {
        let want = opts.chunk_bytes.max(1) as u64;
        // `read_to_end` fills spare capacity without zeroing it first.
        let n = (&mut file).take(want).read_to_end(&mut data).map_err(io)?;
        let eof = n == 0;
        if skipping {
            let Some(nl) = find_byte(&data, b'\n', 0) else {
                consumed += data.len() as u64;
                data.clear();
                if eof {
                    break;
                }
                continue;
            };
            consumed += nl as u64 + 1;
            data.drain(..=nl);
            skipping = false;
        }
        let mut start = 0;
        if first && data.starts_with(b"\xEF\xBB\xBF") {
            start = 3;
        }
        first = false;
        let end = if eof {
            data.len()
        } else {
            data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
        };
        if end > start {
            walk.chunk(&data[start..end], keys, opts.threads.max(1));
        } else if !eof && data.len() > opts.max_line {
            // Never hold an unbounded line in memory: report it and skip to its end.
            walk.oversized(opts.max_line);
            consumed += data.len() as u64;
            data.clear();
            skipping = true;
            continue;
        }
        consumed += (end.max(start)) as u64;
        data.drain(..end.max(start).min(data.len()));
        progress(consumed.min(size), size);
        if eof {
            break;
        }
    }
    Ok(walk.finish(head, keys, opts.require_head))
}

enum Checked<'a> {
    Blank,
    Malformed(String),
    Entry(EntryFields<'a>, SelfStatus),
}

fn check_one<'a>(line: &'a [u8], keys: &Keyring) -> Checked<'a> {
    match std::str::from_utf8(line) {
        Err(e) => Checked::Malformed(format!("line is not valid UTF-8: {e}")),
        Ok(text) if text.trim().is_empty() => Checked::Blank,
        Ok(text) => match check_line(text.trim(), keys) {
            LineCheck::Malformed(detail) => Checked::Malformed(detail),
            LineCheck::Entry(fields, status) => Checked::Entry(fields, status),
        },
    }
}

/// The sequential part: links, seqs, bookkeeping.
struct Walk {
    report: VerifyReport,
    max_breaks: usize,
    line: u64,
    prev_hmac: Option<String>,
    prev_seq: Option<u64>,
    last_seq: Option<u64>,
    head_seq: Option<u64>,
    /// (hmac, index, line) of the last entry whose seq is the head's.
    at_head: Option<(String, u64, u64)>,
}

impl Walk {
    fn new(path: &Path, size: u64, max_breaks: usize, head_seq: Option<u64>) -> Self {
        Self {
            report: VerifyReport {
                path: path.to_owned(),
                bytes: size,
                total_entries: 0,
                breaks: Vec::new(),
                breaks_total: 0,
                last_known_good_index: -1,
                last_known_good_hmac: String::new(),
                head: HeadStatus::NotChecked,
            },
            max_breaks,
            line: 0,
            prev_hmac: Some(String::new()),
            prev_seq: None,
            last_seq: None,
            head_seq,
            at_head: None,
        }
    }

    fn brk(&mut self, index: u64, entry_id: &str, kind: BreakKind, detail: String) {
        self.report.breaks_total += 1;
        if self.report.breaks.len() < self.max_breaks {
            self.report.breaks.push(ChainBreak {
                index,
                line: self.line,
                entry_id: entry_id.to_owned(),
                kind,
                detail,
            });
        }
    }

    fn chunk(&mut self, data: &[u8], keys: &Keyring, threads: usize) {
        let mut lines: Vec<&[u8]> = Vec::with_capacity(data.len() / 256);
        let mut start = 0;
        while start < data.len() {
            let end = find_byte(data, b'\n', start).unwrap_or(data.len());
            lines.push(&data[start..end]);
            start = end + 1;
        }
        let per = lines.len().div_ceil(threads).max(1);
        let results: Vec<Vec<Checked<'_>>> = if threads == 1 || lines.len() < 64 {
            vec![lines.iter().map(|l| check_one(l, keys)).collect()]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = lines
                    .chunks(per)
                    .map(|part| {
                        s.spawn(move || part.iter().map(|l| check_one(l, keys)).collect::<Vec<_>>())
                    })
                    .collect();
                // A worker cannot panic short of a bug; report its lines as malformed then.
                handles
                    .into_iter()
                    .zip(lines.chunks(per))
                    .map(|(h, part)| {
                        h.join().unwrap_or_else(|_| {
                            part.iter()
                                .map(|_| {
                                    Checked::Malformed("internal error while checking".to_owned())
                                })
                                .collect()
                        })
                    })
                    .collect()
            })
        };
        for checked in results.into_iter().flatten() {
            self.step(checked, keys);
        }
    }

    fn oversized(&mut self, max: usize) {
        self.line += 1;
        self.malformed(format!("line is longer than {max} bytes; skipped"));
    }

    fn malformed(&mut self, detail: String) {
        let (index, line) = (self.report.total_entries, self.line);
        self.report.total_entries += 1;
        self.brk(
            index,
            "",
            BreakKind::MalformedLine,
            format!("line {line}: {detail}"),
        );
        // Unknown hmac and seq: the next entry's link and seq are not checked.
        (self.prev_hmac, self.prev_seq) = (None, None);
    }

    fn step(&mut self, checked: Checked<'_>, keys: &Keyring) {
        self.line += 1;
        let index = self.report.total_entries;
        let (fields, status) = match checked {
            Checked::Blank => return,
            Checked::Malformed(detail) => return self.malformed(detail),
            Checked::Entry(f, s) => (f, s),
        };
        self.report.total_entries += 1;
        let id = fields.entry_id.as_ref();
        let link_broken = self
            .prev_hmac
            .as_deref()
            .is_some_and(|p| p != fields.prev_hmac);
        if link_broken {
            let prev = self.prev_hmac.clone().unwrap_or_default();
            let detail = format!(
                "prev_hmac={} does not match the previous entry's hmac={}",
                short(&fields.prev_hmac),
                short(&prev)
            );
            self.brk(index, id, BreakKind::LinkMismatch, detail);
        }
        match (fields.seq, self.prev_seq) {
            (Some(s), Some(p)) if s > p + 1 => self.brk(
                index,
                id,
                BreakKind::SeqGap,
                match s - p - 1 {
                    1 => format!("seq jumps from {p} to {s}: seq {} is missing", p + 1),
                    n => format!("seq jumps from {p} to {s}: seq {} is missing (seqs {}..={} are, {n} entries)", p + 1, p + 1, s - 1),
                },
            ),
            (Some(s), Some(p)) if s <= p => self.brk(
                index,
                id,
                BreakKind::SeqGap,
                format!(
                    "seq goes back from {p} to {s} (a duplicated or reordered entry); seq {} is missing here",
                    p + 1
                ),
            ),
            (Some(s), None) if index == 0 && s != 1 => self.brk(
                index,
                id,
                BreakKind::SeqGap,
                format!("the first entry has seq {s}: seq 1 is missing (seqs 1..={} are)", s - 1),
            ),
            _ => {}
        }
        match status {
            SelfStatus::Ok => {
                self.report.last_known_good_index = i64::try_from(index).unwrap_or(i64::MAX);
                self.report.last_known_good_hmac.clear();
                self.report.last_known_good_hmac.push_str(&fields.hmac);
            }
            SelfStatus::Mismatch(computed) if !link_broken => {
                let detail = format!(
                    "recomputed hmac={} does not match stored hmac={}",
                    short(&computed),
                    short(&fields.hmac)
                );
                self.brk(index, id, BreakKind::SelfMismatch, detail);
            }
            SelfStatus::Mismatch(_) => {}
            SelfStatus::MissingKeyId => self.brk(
                index,
                id,
                BreakKind::MissingKeyId,
                "entry has no '_signing_key_id' field in metadata".to_owned(),
            ),
            SelfStatus::KeyIdNotString => self.brk(
                index,
                id,
                BreakKind::MalformedLine,
                "'_signing_key_id' must be a string".to_owned(),
            ),
            SelfStatus::UnknownKey(k) => {
                let detail = format!("entry signed with key_id={k:?} but that key is not in the ring (known: {}); pass the right --key-id, or retired keys with --keyring", keys.ids().join(", "));
                self.brk(index, id, BreakKind::UnknownKey, detail);
            }
        }
        if let Some(s) = fields.seq {
            self.last_seq = Some(s);
            if self.head_seq == Some(s) {
                self.at_head = Some((fields.hmac.to_string(), index, self.line));
            }
        }
        self.prev_seq = fields.seq;
        // Reuse the buffer: no allocation per entry.
        let prev = self.prev_hmac.get_or_insert_with(String::new);
        prev.clear();
        prev.push_str(&fields.hmac);
    }

    fn finish(
        mut self,
        head: Option<Result<Option<Head>, super::head::HeadError>>,
        keys: &Keyring,
        require_head: bool,
    ) -> VerifyReport {
        let end = self.report.total_entries;
        self.report.head = match head {
            None => HeadStatus::NotChecked,
            Some(Ok(None)) => {
                if require_head {
                    self.brk(
                        end,
                        "",
                        BreakKind::Truncated,
                        "no head file: cannot rule out truncation (--require-head)".to_owned(),
                    );
                }
                HeadStatus::Missing
            }
            Some(Err(e)) => {
                self.brk(end, "", BreakKind::HeadInvalid, e.to_string());
                HeadStatus::Invalid {
                    detail: e.to_string(),
                }
            }
            Some(Ok(Some(h))) => match h.verify(keys) {
                Err(detail) => {
                    self.brk(end, &h.entry_id, BreakKind::HeadInvalid, detail.clone());
                    HeadStatus::Invalid { detail }
                }
                Ok(()) => {
                    let last = self.last_seq.unwrap_or(0);
                    if last < h.seq {
                        let detail = format!("the log ends at seq {last} but the signed head records seq {} (entry {}): seq {} is missing — the log was truncated", h.seq, h.entry_id, last + 1);
                        self.brk(end, &h.entry_id, BreakKind::Truncated, detail);
                    } else if let Some((hmac, index, line)) = self.at_head.take() {
                        if hmac != h.hmac {
                            self.line = line;
                            self.brk(
                                index,
                                &h.entry_id,
                                BreakKind::LinkMismatch,
                                format!(
                                    "the entry at seq {} is not the one the signed head names (hmac {} vs {})",
                                    h.seq,
                                    short(&hmac),
                                    short(&h.hmac)
                                ),
                            );
                        }
                    }
                    HeadStatus::Valid { seq: h.seq }
                }
            },
        };
        self.report
    }
}

fn short(h: &str) -> String {
    if h.is_empty() {
        "(empty)".to_owned()
    } else {
        format!("{}...", h.chars().take(16).collect::<String>())
    }
}
