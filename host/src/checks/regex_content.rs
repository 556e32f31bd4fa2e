//! `regex_content` (ADMISSION, priority 50): block or redact patterns in the
//! request's semantic text before the model sees it. Also home of the
//! pattern set shared with `regex_output`.
//!
//! Settings: `patterns = [{ pattern, action = "block" | "redact", replacement
//! = "[REDACTED]", label }]` (action defaults to block, label to
//! `pattern-<n>`), `roles` (default: every role; see `protocol::text` for the
//! role of system prompts, tool results and tool definitions).
//!
//! Patterns use the `regex` crate (linear time: no catastrophic
//! backtracking); one that does not compile, or that matches the empty
//! string, is a startup error naming it. A `RegexSet` finds which patterns
//! hit, then only those are searched for spans.
//!
//! Every message / part / system block is scanned; a redaction rewrites only
//! the strings that matched and keeps the structure (roles, part types,
//! images, ids). A block pattern anywhere blocks, whatever the order of the
//! patterns. A redact pattern hitting a tool name (an identifier) blocks
//! instead. Bodies above 256 KiB are scanned off the async reactor. Audit
//! metadata carries labels and JSON pointers, never the matched text.
use std::sync::Arc;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::settings::Settings;
use super::{
    offload, Check, CheckError, Factory, Hook, HookResult, Hooks, Replacement, Request, Scratch,
    Source, Stage, Verdict,
};
use crate::protocol::text::{request_segments, rewrite, SegmentKind};

const NAME: &str = "regex_content";
const MAX_PATTERNS: usize = 512;
const MAX_PATTERN_BYTES: usize = 8192;
const REGEX_SIZE_LIMIT: usize = 4 << 20;
/// Spans redacted in one text at most; beyond this the text is blocked.
const MAX_SPANS: usize = 10_000;
/// Inputs above this many bytes are scanned on the blocking pool.
pub(super) const OFFLOAD_BYTES: usize = 256 * 1024;

/// What a matching pattern does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Refuse (admission) or abort (output).
    Block,
    /// Replace the match.
    Redact,
}

#[derive(Debug)]
pub(super) struct Rule {
    pub label: String,
    pub action: Action,
    pub replacement: String,
    regex: Regex,
}

/// One match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hit {
    /// Index of the rule.
    pub rule: usize,
    /// Byte span.
    pub start: usize,
    /// Byte span end.
    pub end: usize,
}

/// The compiled patterns.
#[derive(Debug)]
pub(super) struct Rules {
    pub rules: Vec<Rule>,
    set: RegexSet,
}

impl Rules {
    /// `patterns` from a check's settings.
    pub fn from_settings(s: &Settings<'_>) -> Result<Rules, String> {
        let check = s.check();
        let Some(list) = s.get("patterns") else {
            return Err(s.err(
                "patterns",
                "is required",
                "add patterns = [{ pattern = \"...\", action = \"block\", label = \"...\" }]",
            ));
        };
        let Some(list) = list
            .as_array()
            .filter(|l| !l.is_empty() && l.len() <= MAX_PATTERNS)
        else {
            return Err(s.err(
                "patterns",
                format!("must be a list of 1 to {MAX_PATTERNS} tables"),
                "write patterns = [{ pattern = \"...\" }]",
            ));
        };
        let mut rules = Vec::new();
        for (i, p) in list.iter().enumerate() {
            let t = Settings::table(
                check,
                format!("patterns[{i}]"),
                p,
                &["pattern", "action", "replacement", "label"],
            )?;
            let Some(src) = t.opt_str("pattern")? else {
                return Err(t.err(
                    "pattern",
                    "is required",
                    "add pattern = \"...\" to this entry",
                ));
            };
            if src.len() > MAX_PATTERN_BYTES {
                return Err(t.err(
                    "pattern",
                    "is too long",
                    format!("keep it under {MAX_PATTERN_BYTES} bytes"),
                ));
            }
            let regex = RegexBuilder::new(src)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    t.err(
                        "pattern",
                        format!("{src:?} does not compile: {}", e.to_string().replace('\n', " ")),
                        "correct the regular expression (Rust regex syntax; no look-around or back-references)",
                    )
                })?;
            if regex.is_match("") {
                return Err(t.err(
                    "pattern",
                    format!("{src:?} matches the empty string, so it would hit every text"),
                    "make it require at least one character",
                ));
            }
            let action = match t.choice("action", "block", &["block", "redact"])? {
                "redact" => Action::Redact,
                _ => Action::Block,
            };
            let replacement = t.string("replacement", "[REDACTED]")?;
            let label = t.string("label", &format!("pattern-{}", i + 1))?;
            rules.push(Rule {
                label,
                action,
                replacement,
                regex,
            });
        }
        let set = RegexSetBuilder::new(rules.iter().map(|r| r.regex.as_str()))
            .size_limit(REGEX_SIZE_LIMIT.saturating_mul(4))
            .build()
            .map_err(|e| {
                s.err(
                    "patterns",
                    format!("the patterns together are too large: {e}"),
                    "use fewer or simpler patterns",
                )
            })?;
        Ok(Rules { rules, set })
    }

    /// Every non-empty match of every pattern that hits `text` (at most
    /// `MAX_SPANS + 1`), in pattern order then position.
    pub fn find(&self, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        for rule in self.set.matches(text).iter() {
            let Some(r) = self.rules.get(rule) else {
                continue;
            };
            for m in r.regex.find_iter(text) {
                if m.start() < m.end() {
                    hits.push(Hit {
                        rule,
                        start: m.start(),
                        end: m.end(),
                    });
                    if hits.len() > MAX_SPANS {
                        return hits;
                    }
                }
            }
        }
        hits
    }

    /// Label of a rule.
    pub fn label(&self, rule: usize) -> &str {
        self.rules.get(rule).map_or("?", |r| r.label.as_str())
    }

    /// Action of a rule.
    pub fn action(&self, rule: usize) -> Action {
        self.rules.get(rule).map_or(Action::Block, |r| r.action)
    }
}

/// `text` with each hit replaced by its rule's replacement; overlapping hits
/// merge into one span (replaced by the first's replacement).
pub(super) fn redact(rules: &Rules, text: &str, hits: &[Hit]) -> String {
    let mut spans: Vec<(usize, usize, usize)> =
        hits.iter().map(|h| (h.start, h.end, h.rule)).collect();
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut i = 0;
    while let Some(&(start, mut end, rule)) = spans.get(i) {
        i += 1;
        while let Some(&(s2, e2, _)) = spans.get(i) {
            if s2 >= end {
                break;
            }
            end = end.max(e2);
            i += 1;
        }
        out.push_str(text.get(at..start.max(at)).unwrap_or(""));
        out.push_str(
            rules
                .rules
                .get(rule)
                .map_or("[REDACTED]", |r| r.replacement.as_str()),
        );
        at = at.max(end);
    }
    out.push_str(text.get(at..).unwrap_or(""));
    out
}

/// Sorted, de-duplicated labels of `hits`.
pub(super) fn labels(rules: &Rules, hits: impl Iterator<Item = usize>) -> Vec<String> {
    let mut l: Vec<String> = hits.map(|r| rules.label(r).to_string()).collect();
    l.sort();
    l.dedup();
    l
}

/// Run `f` inline, or on the blocking pool when `big`.
struct Inner {
    rules: Rules,
    roles: Option<Vec<String>>,
}

struct RegexContent {
    inner: Arc<Inner>,
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: NAME.into(),
        source: Source::Builtin,
        stage: Stage::Admission,
        priority: 50,
        hooks: Hooks::PRE_REQUEST,
        description: "blocks or redacts regex patterns in the request text, per message and part"
            .into(),
        build: Arc::new(|cfg| build(cfg).map(|c| Arc::new(c) as Arc<dyn Check>)),
    }
}

/// The `roles` setting, lower-cased.
pub(super) fn roles_setting(s: &Settings<'_>) -> Result<Option<Vec<String>>, String> {
    let Some(roles) = s.str_list("roles")? else {
        return Ok(None);
    };
    if roles.is_empty() || roles.iter().any(|r| r.trim().is_empty()) {
        return Err(s.err(
            "roles",
            "must list at least one non-empty role",
            "remove roles to scan every role, or write roles = [\"user\", \"tool\"]",
        ));
    }
    Ok(Some(
        roles
            .iter()
            .map(|r| r.trim().to_ascii_lowercase())
            .collect(),
    ))
}

fn build(cfg: &serde_json::Value) -> Result<RegexContent, String> {
    let s = Settings::new(NAME, cfg, &["patterns", "roles"])?;
    Ok(RegexContent {
        inner: Arc::new(Inner {
            rules: Rules::from_settings(&s)?,
            roles: roles_setting(&s)?,
        }),
    })
}

impl Inner {
    fn scan(&self, body: &serde_json::Value) -> HookResult {
        let mut blocked: Vec<usize> = Vec::new();
        let mut blocked_at: Vec<String> = Vec::new();
        let mut redacted: Vec<usize> = Vec::new();
        let mut edits: Vec<(String, String)> = Vec::new();
        let mut count = 0usize;
        for seg in request_segments(body) {
            if let Some(roles) = &self.roles {
                if !roles.iter().any(|r| r.eq_ignore_ascii_case(seg.role)) {
                    continue;
                }
            }
            let hits = self.rules.find(seg.text);
            if hits.is_empty() {
                continue;
            }
            let blocks: Vec<usize> = hits
                .iter()
                .filter(|h| self.rules.action(h.rule) == Action::Block)
                .map(|h| h.rule)
                .collect();
            if !blocks.is_empty() || seg.kind == SegmentKind::ToolName || hits.len() > MAX_SPANS {
                blocked.extend(if blocks.is_empty() {
                    hits.iter().map(|h| h.rule).collect()
                } else {
                    blocks
                });
                blocked_at.push(seg.pointer);
                continue;
            }
            count += hits.len();
            redacted.extend(hits.iter().map(|h| h.rule));
            edits.push((seg.pointer, redact(&self.rules, seg.text, &hits)));
        }
        if !blocked.is_empty() {
            let l = labels(&self.rules, blocked.into_iter());
            return Ok(Verdict::block(format!(
                "request matches blocked pattern(s): {}",
                l.join(", ")
            ))
            .with("labels", l.into())
            .with("pointers", blocked_at.into()));
        }
        if edits.is_empty() {
            return Ok(Verdict::allow());
        }
        let pointers: Vec<String> = edits.iter().map(|(p, _)| p.clone()).collect();
        let new_body = rewrite(body, &edits)
            .map_err(|e| CheckError(format!("cannot apply redaction: {e}")))?;
        let l = labels(&self.rules, redacted.into_iter());
        Ok(Verdict::redact(
            Replacement::Body(new_body),
            format!("redacted {count} match(es) of: {}", l.join(", ")),
        )
        .with("labels", l.into())
        .with("redactions", count.into())
        .with("pointers", pointers.into()))
    }
}

impl Check for RegexContent {
    fn hooks(&self) -> Hooks {
        Hooks::PRE_REQUEST
    }

    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, _scratch: &'a mut Scratch) -> Hook<'a> {
        let inner = Arc::clone(&self.inner);
        let body = Arc::clone(&req.body);
        offload(req.body_json.len() > OFFLOAD_BYTES, move || {
            inner.scan(&body)
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::checks::owner_resolution::tests::req;
    use crate::checks::Decision;

    fn with_body(body: Value) -> Arc<Request> {
        let r = Request::clone(&req(&[]));
        Arc::new(r.with_body(body))
    }

    fn decide(c: &RegexContent, body: Value) -> Verdict {
        match c.pre_request(&with_body(body), &mut None) {
            Hook::Ready(Ok(v)) => v,
            _ => panic!("small bodies are decided inline"),
        }
    }

    fn new_body(v: &Verdict) -> Value {
        match &v.decision {
            Decision::Redact(Replacement::Body(b)) => b.clone(),
            d => panic!("expected a body redaction, got {d:?}"),
        }
    }

    fn ssn_and_secret() -> RegexContent {
        build(&json!({"patterns": [
            {"pattern": r"\b\d{3}-\d{2}-\d{4}\b", "action": "redact", "label": "ssn"},
            {"pattern": r"(?i)launch codes?", "action": "block", "label": "codes"},
        ]}))
        .unwrap()
    }

    #[test]
    fn redaction_is_per_part_and_keeps_structure() {
        let c = ssn_and_secret();
        let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": [
                {"type": "text", "text": "my ssn is 123-45-6789 and 987-65-4321"},
                {"type": "image_url", "image_url": {"url": "https://x/123-45-6789.png"}}
            ]},
            {"role": "assistant", "content": "noted 111-22-3333"}
        ]});
        let v = decide(&c, body.clone());
        let out = new_body(&v);
        assert_eq!(
            out["messages"][0], body["messages"][0],
            "a system message not matching is untouched"
        );
        assert_eq!(
            out["messages"][1]["content"][0]["text"],
            "my ssn is [REDACTED] and [REDACTED]"
        );
        assert_eq!(
            out["messages"][1]["content"][1],
            body["messages"][1]["content"][1]
        );
        assert_eq!(out["messages"][2]["content"], "noted [REDACTED]");
        assert_eq!(out["model"], "m");
        assert_eq!(v.metadata["redactions"], 3);
        assert_eq!(v.metadata["labels"], json!(["ssn"]));
        assert!(
            !v.metadata.values().any(|m| m.to_string().contains("6789")),
            "no matched text in metadata"
        );
    }

    #[test]
    fn anthropic_system_and_blocks() {
        let c = ssn_and_secret();
        let body = json!({"system": [{"type": "text", "text": "id 123-45-6789"}], "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                "content": "ok 555-44-3333"}]}]});
        let out = new_body(&decide(&c, body));
        assert_eq!(out["system"][0]["text"], "id [REDACTED]");
        assert_eq!(out["messages"][0]["content"][0]["content"], "ok [REDACTED]");
        assert_eq!(out["messages"][0]["content"][0]["tool_use_id"], "t");
        let out = new_body(&decide(
            &c,
            json!({"system": "top 123-45-6789", "messages": []}),
        ));
        assert_eq!(out["system"], "top [REDACTED]");
    }

    #[test]
    fn block_wins_over_redact_whatever_the_order() {
        let c = ssn_and_secret();
        let v = decide(
            &c,
            json!({"messages": [{"role": "user", "content": "123-45-6789"}, {"role": "user", "content": "the LAUNCH code"}]}),
        );
        assert!(matches!(v.decision, Decision::Block { .. }));
        assert_eq!(v.metadata["labels"], json!(["codes"]));
        assert!(decide(
            &c,
            json!({"messages": [{"role": "user", "content": "hello"}]})
        )
        .is_allow());
    }

    #[test]
    fn roles_filter() {
        let c = build(
            &json!({"roles": ["user"], "patterns": [{"pattern": "secret", "action": "redact"}]}),
        )
        .unwrap();
        assert!(decide(
            &c,
            json!({"messages": [{"role": "system", "content": "secret"}]})
        )
        .is_allow());
        let out = new_body(&decide(
            &c,
            json!({"messages": [{"role": "User", "content": "a secret"}]}),
        ));
        assert_eq!(out["messages"][0]["content"], "a [REDACTED]");
    }

    #[test]
    fn overlapping_matches_merge_and_tool_names_block() {
        let c = build(&json!({"patterns": [
            {"pattern": "abc", "action": "redact", "replacement": "<1>"},
            {"pattern": "bcd", "action": "redact", "replacement": "<2>"},
        ]}))
        .unwrap();
        let out = new_body(&decide(
            &c,
            json!({"messages": [{"role": "user", "content": "xabcdy abc"}]}),
        ));
        assert_eq!(out["messages"][0]["content"], "x<1>y <1>");
        let v = decide(
            &c,
            json!({"tools": [{"type": "function", "function": {"name": "abc"}}]}),
        );
        assert!(matches!(v.decision, Decision::Block { .. }));
    }

    #[test]
    fn catastrophic_pattern_is_linear() {
        let c = build(&json!({"patterns": [{"pattern": "^(a+)+$", "action": "block"}]})).unwrap();
        let text = format!("{}X", "a".repeat(100_000));
        let t = std::time::Instant::now();
        assert!(decide(&c, json!({"messages": [{"role": "user", "content": text}]})).is_allow());
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn config_errors_name_the_pattern() {
        let e = build(&json!({"patterns": [{"pattern": "ok"}, {"pattern": "(unclosed"}]}))
            .err()
            .unwrap();
        assert!(
            e.contains(NAME)
                && e.contains("patterns[1].pattern")
                && e.contains("(unclosed")
                && e.contains("fix"),
            "{e}"
        );
        for (cfg, key) in [
            (json!({}), "patterns"),
            (json!({"patterns": []}), "patterns"),
            (
                json!({"patterns": [{"pattern": "a*"}]}),
                "patterns[0].pattern",
            ),
            (
                json!({"patterns": [{"pattern": "a", "action": "warn"}]}),
                "patterns[0].action",
            ),
            (
                json!({"patterns": [{"pattern": "a", "lable": "x"}]}),
                "patterns[0].lable",
            ),
            (
                json!({"patterns": [{"pattern": "a"}], "roles": []}),
                "roles",
            ),
            (
                json!({"patterns": [{"pattern": "a"}], "role": ["user"]}),
                "role",
            ),
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
        let c: Arc<dyn Check> = Arc::new(
            build(&json!({"patterns": [
                {"pattern": "x{3}", "action": "redact"},
                {"pattern": "(?i)secret//", "action": "block"},
                {"pattern": "\\p{Cc}", "action": "redact", "replacement": ""},
            ]}))
            .unwrap(),
        );
        crate::checks::compliance::assert_compliant(&c);
    }
}
