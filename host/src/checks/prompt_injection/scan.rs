//! The scan driver: matches every text, then decodes it breadth-first.
//!
//! Each text as sent is a depth-0 product. A product is matched in three
//! views (as it is, normalized, squashed) and handed to every decoder; each
//! decoded product is judged (gzip/zlib inflated within the budget, binary
//! dropped or reduced to its printable runs), deduplicated, charged to the
//! budget, matched, and queued to be decoded in turn, up to `max_depth`
//! levels. The scan stops at the first finding whose action is `block`, or
//! when a budget cap is hit. Work is bounded by counts, never by time.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

use super::budget::Budget;
use super::config::{ConfigError, InjectionConfig, Limits};
use super::decoders::{self, Decoded, Sink};
use super::matcher::RuleSet;
use super::report::{decide, BudgetHit, Finding, ScanReport};
use super::rules;

/// Most findings kept per scan (only non-blocking findings can pile up).
pub(super) const MAX_FINDINGS: usize = 256;

/// Compiled rules and tables; cheap to share (`&self` scans are independent).
#[derive(Debug)]
pub struct Scanner {
    pub(super) cfg: InjectionConfig,
    pub(super) rules: RuleSet,
    pub(super) hidden_enabled: Vec<&'static str>,
}

/// Where a product came from.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub(super) depth: usize,
    pub(super) chain: Vec<&'static str>,
    pub(super) text_index: usize,
    /// Offset of the outermost candidate in the original text (None at depth 0).
    pub(super) origin: Option<usize>,
}

pub(super) struct Product {
    pub(super) text: String,
    pub(super) meta: Meta,
}

pub(super) struct Run<'a> {
    pub(super) sc: &'a Scanner,
    pub(super) budget: Budget,
    pub(super) findings: Vec<Finding>,
    /// Keyed hashes of the products seen so far (see [`Run::first_seen`]).
    pub(super) seen: HashSet<u64>,
    /// This scan's random SipHash keys for `seen`.
    pub(super) keys: RandomState,
    pub(super) queue: VecDeque<Product>,
    pub(super) blocked: bool,
}

#[derive(Clone, Copy)]
pub(super) enum ViewName {
    AsIs,
    Normalized,
    Squashed,
}

impl Scanner {
    /// Compile the rules of `cfg`. A bad `extra_rules` pattern is an error.
    pub fn new(cfg: InjectionConfig) -> Result<Self, ConfigError> {
        let rules = RuleSet::compile(&cfg)?;
        let hidden_enabled = rules::HIDDEN_RULES
            .iter()
            .copied()
            .filter(|n| !cfg.disabled_rules().iter().any(|d| d == n))
            .collect();
        Ok(Scanner {
            cfg,
            rules,
            hidden_enabled,
        })
    }

    /// The configuration this scanner was built from.
    pub fn config(&self) -> &InjectionConfig {
        &self.cfg
    }

    /// Pure, synchronous, CPU-bound; bounded by work budgets (bytes, steps,
    /// candidates, depth), never by wall-clock time.
    pub fn scan(&self, texts: &[&str]) -> ScanReport {
        self.scan_with(texts, self.cfg.limits())
    }

    /// [`Scanner::scan`] under other work caps (e.g. tight ones for a first
    /// inline pass). A report with no `budget_hit` did all the work the
    /// configured caps would have allowed, so it equals `scan`'s report
    /// whenever these caps are no larger than the configured ones.
    pub fn scan_with(&self, texts: &[&str], limits: Limits) -> ScanReport {
        let mut run = Run {
            sc: self,
            budget: Budget::new(limits),
            findings: Vec::new(),
            seen: HashSet::new(),
            keys: RandomState::new(),
            queue: VecDeque::new(),
            blocked: false,
        };
        let input: usize = texts.iter().map(|t| t.len()).sum();
        run.budget.stats.input_bytes = input;
        let mut remaining = limits.max_scan_bytes;
        let mut input_hit = None;
        for (index, t) in texts.iter().enumerate() {
            if run.blocked || run.budget.exhausted() {
                break;
            }
            let mut take = t.len().min(remaining);
            while take > 0 && !t.is_char_boundary(take) {
                take -= 1;
            }
            if take < t.len() {
                input_hit = Some(BudgetHit::ScanBytes {
                    limit: limits.max_scan_bytes,
                    input,
                });
            }
            remaining -= take;
            let text = t.get(..take).unwrap_or_default();
            let meta = Meta {
                depth: 0,
                chain: Vec::new(),
                text_index: index,
                origin: None,
            };
            run.first_seen(text.as_bytes());
            run.match_text(text, &meta);
            run.decode(text, meta);
            run.drain();
        }
        let budget_hit = run.budget.hit().or(input_hit);
        let outcome = decide(&self.cfg, &run.findings, budget_hit.as_ref());
        ScanReport {
            findings: run.findings,
            budget_hit,
            stats: run.budget.stats,
            outcome,
        }
    }
}

/// The decoders' view of a running scan, for one parent product.
struct Emitter<'r, 'a> {
    run: &'r mut Run<'a>,
    parent: &'r Meta,
}

impl Sink for Emitter<'_, '_> {
    fn candidate(&mut self) -> bool {
        !self.run.blocked && self.run.budget.candidate()
    }
    fn steps(&mut self, n: usize) -> bool {
        !self.run.blocked && self.run.budget.steps(n)
    }
    fn emit(&mut self, d: Decoded) -> bool {
        self.run.admit(self.parent, d)
    }
}

impl Run<'_> {
    pub(super) fn stopped(&self) -> bool {
        self.blocked || self.budget.exhausted()
    }

    /// True the first time these bytes are seen in this scan. A product
    /// seen before is not matched again, so the hash is keyed with random
    /// keys: with fixed keys (`DefaultHasher::new()`), a sender could compute
    /// offline a benign text and an attack whose hashes collide, send both
    /// encoded, and have the attack skipped as already seen.
    pub(super) fn first_seen(&mut self, bytes: &[u8]) -> bool {
        self.seen.insert(self.keys.hash_one(bytes))
    }

    fn decode(&mut self, text: &str, meta: Meta) {
        let mut em = Emitter {
            run: self,
            parent: &meta,
        };
        decoders::run_all(text, &mut em);
    }

    fn drain(&mut self) {
        while let Some(p) = self.queue.pop_front() {
            if self.stopped() {
                break;
            }
            self.decode(&p.text, p.meta);
        }
        self.queue.clear();
    }
}
