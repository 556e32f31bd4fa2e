//! Compiled rules and how they are matched against one view of a text.
//!
//! Each group (phrase rules, squashed rules) is a `RegexSet` for the cheap
//! "does anything match?" question plus one `Regex` per rule to find where,
//! so benign text costs one linear pass per view. All regexes come from the
//! `regex` crate: matching is linear in the input, with no backtracking.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::config::{ConfigError, InjectionConfig};
use super::report::Severity;
use super::rules::{self, Veto, ViewKind};

const SIZE_LIMIT: usize = 64 << 20;

/// One compiled rule.
#[derive(Debug)]
pub(super) struct Compiled {
    pub(super) name: String,
    pub(super) severity: Severity,
    regex: Regex,
    veto: Veto,
}

/// Rules matched against one kind of view.
#[derive(Debug)]
pub(super) struct Group {
    set: RegexSet,
    pub(super) rules: Vec<Compiled>,
}

/// A match: rule index in its group and byte position in the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hit {
    pub(super) rule: usize,
    pub(super) pos: usize,
}

/// All rules of a scanner.
#[derive(Debug)]
pub(super) struct RuleSet {
    pub(super) phrase: Group,
    pub(super) squashed: Group,
}

fn ascii_boundaries(p: &str) -> String {
    p.replace(r"\b", r"(?-u:\b)")
}

fn build(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
}

impl RuleSet {
    /// Compile the built-in rules (minus `disabled_rules`) and the operator's
    /// `extra_rules`. A bad operator pattern is a `ConfigError::BadPattern`.
    pub(super) fn compile(cfg: &InjectionConfig) -> Result<Self, ConfigError> {
        let mut phrase: Vec<(String, Compiled)> = Vec::new();
        let mut squashed: Vec<(String, Compiled)> = Vec::new();
        for spec in rules::BUILTIN {
            if cfg.disabled_rules().iter().any(|d| d == spec.name) {
                continue;
            }
            let src = format!("(?i){}", ascii_boundaries(spec.pattern));
            let regex = build(&src).map_err(|e| ConfigError::BadPattern {
                key: format!("(built-in rule {})", spec.name),
                name: spec.name.into(),
                error: e.to_string(),
            })?;
            let c = Compiled {
                name: spec.name.into(),
                severity: spec.severity,
                regex,
                veto: spec.veto,
            };
            match spec.view {
                ViewKind::Phrase => phrase.push((src, c)),
                ViewKind::Squashed => squashed.push((src, c)),
            }
        }
        for (i, rule) in cfg.extra_rules().iter().enumerate() {
            let err = |e: regex::Error| ConfigError::BadPattern {
                key: format!("extra_rules[{i}].pattern"),
                name: rule.name.clone(),
                error: e.to_string(),
            };
            let regex = build(&rule.pattern).map_err(err)?;
            let c = Compiled {
                name: rule.name.clone(),
                severity: rule.severity,
                regex,
                veto: Veto::None,
            };
            phrase.push((rule.pattern.clone(), c));
        }
        Ok(RuleSet {
            phrase: Group::new(phrase)?,
            squashed: Group::new(squashed)?,
        })
    }
}

impl Group {
    fn new(items: Vec<(String, Compiled)>) -> Result<Self, ConfigError> {
        let set = RegexSetBuilder::new(items.iter().map(|(p, _)| p.as_str()))
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| ConfigError::BadPattern {
                key: "extra_rules".into(),
                name: "(rule set)".into(),
                error: e.to_string(),
            })?;
        Ok(Group {
            set,
            rules: items.into_iter().map(|(_, c)| c).collect(),
        })
    }

    /// First accepted match of every rule that matches `text`.
    pub(super) fn scan(&self, text: &str, squashed: bool) -> Vec<Hit> {
        let mut hits = Vec::new();
        if text.is_empty() || self.rules.is_empty() {
            return hits;
        }
        // Most texts match no rule: `is_match` answers that with the set's
        // literal prefilter and stops early, where `matches` runs the slower
        // overlapping search to the end of the text.
        if !self.set.is_match(text) {
            return hits;
        }
        let matched = self.set.matches(text);
        for idx in matched.iter() {
            let Some(rule) = self.rules.get(idx) else {
                continue;
            };
            let accepted = rule
                .regex
                .find_iter(text)
                .take(64)
                .find(|m| !vetoed(rule.veto, text, m.start(), m.as_str(), squashed));
            if let Some(m) = accepted {
                hits.push(Hit {
                    rule: idx,
                    pos: m.start(),
                });
            }
        }
        hits
    }
}

const NEGATIONS: [&str; 10] = [
    "don't",
    "dont",
    "do not",
    "never",
    "didn't",
    "cannot",
    "can't",
    "won't",
    "shouldn't",
    "not",
];
const SQUASHED_NEGATIONS: [&str; 8] = [
    "dont", "donot", "never", "didnt", "cannot", "cant", "wont", "shouldnt",
];

fn vetoed(veto: Veto, text: &str, start: usize, matched: &str, squashed: bool) -> bool {
    match veto {
        Veto::None => false,
        Veto::OwnOrNegated => {
            let before = tail(text, start, 16).to_ascii_lowercase();
            if squashed {
                return SQUASHED_NEGATIONS.iter().any(|n| before.ends_with(n));
            }
            let before = before.trim_end_matches([' ', '\n', ',']);
            if NEGATIONS
                .iter()
                .any(|n| before.ends_with(n) && word_start(before, n.len()))
            {
                return true;
            }
            matched
                .split(|c: char| !c.is_ascii_alphabetic())
                .any(|w| w.eq_ignore_ascii_case("my") || w.eq_ignore_ascii_case("our"))
        }
    }
}

/// The `n` bytes of `text` before `end`, cut at char boundaries.
fn tail(text: &str, end: usize, n: usize) -> &str {
    let mut s = end.saturating_sub(n);
    while s < end && !text.is_char_boundary(s) {
        s += 1;
    }
    text.get(s..end).unwrap_or("")
}

/// True if the suffix of length `n` of `s` starts at a word boundary.
fn word_start(s: &str, n: usize) -> bool {
    let cut = s.len().saturating_sub(n);
    s.get(..cut)
        .and_then(|p| p.chars().next_back())
        .is_none_or(|c| !c.is_alphanumeric())
}
