//! `regex_output` (INSPECTION, priority 50): block or redact patterns in the
//! model's output, chunk by chunk, before the caller sees it.
//!
//! Settings: `patterns` (as `regex_content`), `roles` (accepted for symmetry;
//! output is the assistant's, so it must include `"assistant"`),
//! `overlap_bytes` (1024, up to 65536).
//!
//! Incremental: the scratch keeps the last `overlap_bytes` of text already
//! seen; each chunk is scanned as `overlap + chunk`, so the cost per chunk is
//! the chunk plus a constant, never the whole accumulated text. Matches that
//! lie entirely in the overlap were judged with the previous chunk and are
//! skipped. A match that ends in this chunk:
//! - `block` pattern → abort (wherever it started);
//! - `redact` pattern inside this chunk → the chunk is rewritten
//!   (`Replacement::Text`) and the stream goes on;
//! - `redact` pattern that started in an earlier chunk → abort: the earlier
//!   part has already been released and cannot be taken back, so stopping
//!   the stream is the only safe answer. Streams whose secrets arrive split
//!   across chunks therefore end early rather than leak.
//!
//! A match longer than `overlap_bytes` that spans chunks is not seen.
use std::sync::Arc;

use super::regex_content::{labels, redact, roles_setting, Action, Rules, OFFLOAD_BYTES};
use super::settings::Settings;
use super::{
    scan_chunk, Check, Factory, Hook, HookResult, Hooks, Replacement, Request, ResponseSoFar,
    Scratch, Source, Stage, Verdict,
};

const NAME: &str = "regex_output";

struct Inner {
    rules: Rules,
    overlap: usize,
}

struct RegexOutput {
    inner: Arc<Inner>,
}

/// Per-request state: the tail of the text seen so far.
#[derive(Debug, Default)]
struct Tail {
    text: String,
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: NAME.into(),
        source: Source::Builtin,
        stage: Stage::Inspection,
        priority: 50,
        hooks: Hooks::INSPECT_CHUNK,
        description:
            "blocks or redacts regex patterns in the model's output, incrementally across chunks"
                .into(),
        build: Arc::new(|cfg| build(cfg).map(|c| Arc::new(c) as Arc<dyn Check>)),
    }
}

fn build(cfg: &serde_json::Value) -> Result<RegexOutput, String> {
    let s = Settings::new(NAME, cfg, &["patterns", "roles", "overlap_bytes"])?;
    if let Some(roles) = roles_setting(&s)? {
        if !roles.iter().any(|r| r == "assistant") {
            return Err(s.err(
                "roles",
                "regex_output scans the model's output (role \"assistant\"); these roles would scan nothing",
                "remove roles, or include \"assistant\"",
            ));
        }
    }
    let overlap = s.uint("overlap_bytes", 1024, 0, 65_536)?;
    Ok(RegexOutput {
        inner: Arc::new(Inner {
            rules: Rules::from_settings(&s)?,
            overlap: usize::try_from(overlap).unwrap_or(1024),
        }),
    })
}

/// Byte index at which the last `keep` bytes of `s` start (on a char boundary).
pub(super) fn tail_start(s: &str, keep: usize) -> usize {
    let mut i = s.len().saturating_sub(keep);
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

impl Inner {
    /// Scan one chunk; `base` is the chunk's byte offset in the response.
    fn scan(&self, tail: &mut Tail, chunk: &str, base: usize) -> HookResult {
        let boundary = tail.text.len();
        let mut scan = std::mem::take(&mut tail.text);
        scan.push_str(chunk);
        let hits: Vec<_> = self
            .rules
            .find(&scan)
            .into_iter()
            .filter(|h| h.end > boundary)
            .collect();
        tail.text = scan
            .get(tail_start(&scan, self.overlap)..)
            .unwrap_or("")
            .to_string();
        if hits.is_empty() {
            return Ok(Verdict::allow());
        }
        let offset = |start: usize| (base + start).saturating_sub(boundary);
        let blocks: Vec<_> = hits
            .iter()
            .filter(|h| self.rules.action(h.rule) == Action::Block)
            .collect();
        if let Some(first) = blocks.first() {
            let l = labels(&self.rules, blocks.iter().map(|h| h.rule));
            return Ok(Verdict::block(format!(
                "output matches blocked pattern(s): {}",
                l.join(", ")
            ))
            .with("labels", l.into())
            .with("offset", offset(first.start).into()));
        }
        if let Some(split) = hits.iter().find(|h| h.start < boundary) {
            let label = self.rules.label(split.rule).to_string();
            return Ok(Verdict::block(format!(
                "redaction pattern {label} matched across a chunk boundary; the earlier part was already delivered, so the stream is stopped instead"
            ))
            .with("labels", vec![label].into())
            .with("offset", offset(split.start).into())
            .with("split_across_chunks", true.into()));
        }
        if hits.len() > 10_000 {
            return Ok(Verdict::block("too many redaction matches in one chunk"));
        }
        let local: Vec<_> = hits
            .iter()
            .map(|h| super::regex_content::Hit {
                rule: h.rule,
                start: h.start - boundary,
                end: h.end - boundary,
            })
            .collect();
        let l = labels(&self.rules, hits.iter().map(|h| h.rule));
        Ok(Verdict::redact(
            Replacement::Text(redact(&self.rules, chunk, &local)),
            format!("redacted {} match(es) of: {}", hits.len(), l.join(", ")),
        )
        .with("labels", l.into())
        .with("redactions", hits.len().into()))
    }
}

impl Check for RegexOutput {
    fn hooks(&self) -> Hooks {
        Hooks::INSPECT_CHUNK
    }

    fn inspect_chunk<'a>(
        &'a self,
        _req: &'a Arc<Request>,
        resp: &'a ResponseSoFar,
        scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        let chunk = resp.chunk();
        if chunk.is_empty() {
            return Hook::allow();
        }
        let (inner, base) = (Arc::clone(&self.inner), resp.chunk_start);
        scan_chunk(
            scratch,
            chunk,
            OFFLOAD_BYTES,
            move |tail: &mut Tail, text: &str| inner.scan(tail, text, base),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::owner_resolution::tests::req;
    use crate::checks::Decision;

    /// Feed chunks in order; the outcome of each.
    fn feed(c: &RegexOutput, chunks: &[&str]) -> Vec<Verdict> {
        let r = req(&[]);
        let mut scratch: Scratch = None;
        let mut acc = String::new();
        let mut out = Vec::new();
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
            match c.inspect_chunk(&r, &resp, &mut scratch) {
                Hook::Ready(Ok(v)) => out.push(v),
                _ => panic!("small chunks are decided inline"),
            };
        }
        out
    }

    fn check() -> RegexOutput {
        build(&json!({"patterns": [
            {"pattern": r"sk-[A-Za-z0-9]{8}", "action": "redact", "replacement": "[KEY]", "label": "api-key"},
            {"pattern": r"SECRET//NOFORN", "action": "block", "label": "marking"},
        ]}))
        .unwrap()
    }

    #[test]
    fn redaction_inside_a_chunk_rewrites_that_chunk() {
        let v = feed(&check(), &["hello ", "key sk-abcd1234 end", " bye"]);
        assert!(v[0].is_allow() && v[2].is_allow());
        assert_eq!(
            v[1].decision,
            Decision::Redact(Replacement::Text("key [KEY] end".into()))
        );
        assert_eq!(v[1].metadata["labels"], json!(["api-key"]));
    }

    #[test]
    fn block_split_across_chunks_is_caught_with_its_offset() {
        let v = feed(&check(), &["abc SECR", "ET//NO", "FORN tail"]);
        assert!(v[0].is_allow() && v[1].is_allow());
        assert!(matches!(v[2].decision, Decision::Block { .. }));
        assert_eq!(v[2].metadata["offset"], 4);
    }

    #[test]
    fn redaction_split_across_chunks_aborts_instead_of_leaking() {
        let v = feed(&check(), &["token sk-abc", "d1234 more"]);
        assert!(v[0].is_allow());
        assert!(matches!(v[1].decision, Decision::Block { .. }));
        assert_eq!(v[1].metadata["split_across_chunks"], true);
    }

    #[test]
    fn a_match_already_judged_is_not_judged_again() {
        let v = feed(&check(), &["x sk-abcd1234", " y", " z"]);
        assert!(matches!(v[0].decision, Decision::Redact(_)));
        assert!(v[1].is_allow() && v[2].is_allow());
    }

    #[test]
    fn scanning_is_incremental() {
        // Many chunks: each scan covers overlap + chunk only, so the tail stays bounded.
        let c = build(
            &json!({"patterns": [{"pattern": "needle", "action": "block"}], "overlap_bytes": 16}),
        )
        .unwrap();
        let r = req(&[]);
        let mut scratch: Scratch = None;
        let mut acc = String::new();
        for i in 0..2000 {
            let start = acc.len();
            acc.push_str("haystack haystack ");
            let resp = ResponseSoFar {
                accumulated: Arc::new(acc.clone()),
                chunk_start: start,
                chunk_index: i + 1,
                ..Default::default()
            };
            assert!(
                matches!(c.inspect_chunk(&r, &resp, &mut scratch), Hook::Ready(Ok(v)) if v.is_allow())
            );
            let tail = scratch
                .as_ref()
                .and_then(|b| b.downcast_ref::<Tail>())
                .unwrap();
            assert!(tail.text.len() <= 16);
        }
        let v = feed(&c, &["...nee", "dle..."]);
        assert!(!v[1].is_allow());
    }

    #[test]
    fn config_errors() {
        for (cfg, key) in [
            (
                json!({"patterns": [{"pattern": "a"}], "roles": ["user"]}),
                "roles",
            ),
            (
                json!({"patterns": [{"pattern": "a"}], "overlap_bytes": -1}),
                "overlap_bytes",
            ),
            (
                json!({"patterns": [{"pattern": "[z-a]"}]}),
                "patterns[0].pattern",
            ),
        ] {
            let e = build(&cfg).err().unwrap();
            assert!(
                e.contains(NAME) && e.contains(key) && e.contains("fix"),
                "{e}"
            );
        }
        assert!(build(&json!({"patterns": [{"pattern": "a"}], "roles": ["assistant"]})).is_ok());
    }

    #[test]
    fn compliance() {
        let c: Arc<dyn Check> = Arc::new(
            build(&json!({"patterns": [
                {"pattern": "y{3}", "action": "redact"},
                {"pattern": "(?i)secret//", "action": "block"},
                {"pattern": "\\p{Cc}", "action": "redact", "replacement": ""},
            ]}))
            .unwrap(),
        );
        crate::checks::compliance::assert_compliant(&c);
    }
}
