//! One decoded product's way into a scan: judged (gzip/zlib inflated within
//! the budget, binary dropped or cut to its printable runs), deduplicated,
//! charged, matched in its three views, and queued for further decoding.
//! Findings get their channel name and offset here.

use super::config::Action;
use super::decoders::compress::{self, InflateError};
use super::decoders::{Data, Decoded};
use super::matcher::Group;
use super::plausibility::{bytes_to_text, printable_runs, utf16_to_text};
use super::report::{Finding, Severity};
use super::scan::{Meta, Product, Run, ViewName, MAX_FINDINGS};
use super::{hidden, normalize};

impl Run<'_> {
    /// Judge, charge, match and queue one decoded product.
    pub(super) fn admit(&mut self, parent: &Meta, d: Decoded) -> bool {
        if self.stopped() {
            return false;
        }
        let max_depth = self.budget.max_depth();
        let mut depth = parent.depth + 1;
        if depth > max_depth {
            self.budget.depth_exceeded();
            return false;
        }
        let mut chain = parent.chain.clone();
        chain.push(d.name);
        let text = match d.data {
            Data::Text(s) => {
                if !self.first_seen(s.as_bytes()) {
                    return true;
                }
                if !self.budget.decoded(depth, s.len()) {
                    return false;
                }
                s
            }
            Data::Bytes(mut b) => {
                if !self.first_seen(&b) {
                    return true;
                }
                if !self.budget.decoded(depth, b.len()) {
                    return false;
                }
                while let Some(kind) = compress::kind(&b) {
                    if depth + 1 > max_depth {
                        self.budget.depth_exceeded();
                        return false;
                    }
                    match compress::inflate(&b, self.budget.decoded_room(depth + 1)) {
                        Ok(out) => {
                            if !self.first_seen(&out) {
                                return true;
                            }
                            if !self.budget.decoded(depth + 1, out.len())
                                || !self.budget.steps(out.len())
                            {
                                return false;
                            }
                            b = out;
                            depth += 1;
                            chain.push(kind);
                        }
                        Err(InflateError::Overflow) => {
                            self.budget.decoded_overflow(depth + 1);
                            return false;
                        }
                        Err(InflateError::Invalid) => break,
                    }
                }
                let text = bytes_to_text(&b)
                    .or_else(|| utf16_to_text(&b))
                    .or_else(|| printable_runs(&b));
                match text {
                    Some(t) => t,
                    None => return true,
                }
            }
        };
        let meta = Meta {
            depth,
            chain,
            text_index: parent.text_index,
            origin: Some(parent.origin.unwrap_or(d.start)),
        };
        self.match_text(&text, &meta);
        if self.stopped() {
            return false;
        }
        self.queue.push_back(Product { text, meta });
        true
    }

    /// Match one product in all its views.
    pub(super) fn match_text(&mut self, text: &str, meta: &Meta) {
        if !self.budget.steps(text.len().saturating_mul(4)) {
            return;
        }
        let sc = self.sc;
        let mut found: Vec<String> = Vec::new();
        for (name, off) in hidden::detect(text) {
            if sc.hidden_enabled.contains(&name) {
                self.add(
                    name.to_owned(),
                    Severity::High,
                    meta,
                    ViewName::AsIs,
                    off,
                    &mut found,
                );
            }
        }
        self.apply(
            &sc.rules.phrase,
            text,
            None,
            meta,
            ViewName::AsIs,
            &mut found,
        );
        if self.blocked {
            return;
        }
        let views = normalize::views(text);
        let scanned = text.len() + views.normalized.text.len() + views.squashed.text.len();
        self.budget.stats.scanned_bytes = self.budget.stats.scanned_bytes.saturating_add(scanned);
        if views.normalized.text != text {
            let v = &views.normalized;
            self.apply(
                &sc.rules.phrase,
                &v.text,
                Some(v),
                meta,
                ViewName::Normalized,
                &mut found,
            );
        }
        if !self.blocked {
            let v = &views.squashed;
            self.apply(
                &sc.rules.squashed,
                &v.text,
                Some(v),
                meta,
                ViewName::Squashed,
                &mut found,
            );
        }
    }

    fn apply(
        &mut self,
        group: &Group,
        text: &str,
        view: Option<&normalize::View>,
        meta: &Meta,
        name: ViewName,
        found: &mut Vec<String>,
    ) {
        let squashed = matches!(name, ViewName::Squashed);
        for hit in group.scan(text, squashed) {
            let Some(rule) = group.rules.get(hit.rule) else {
                continue;
            };
            let off = view.map_or(hit.pos, |v| v.source_offset(hit.pos));
            self.add(rule.name.clone(), rule.severity, meta, name, off, found);
        }
    }

    fn add(
        &mut self,
        rule: String,
        severity: Severity,
        meta: &Meta,
        view: ViewName,
        pos: usize,
        found: &mut Vec<String>,
    ) {
        if found.contains(&rule) || self.findings.len() >= MAX_FINDINGS {
            return;
        }
        let channel = if meta.depth == 0 {
            match view {
                ViewName::AsIs => "raw".to_owned(),
                ViewName::Normalized => "normalized".to_owned(),
                ViewName::Squashed => "squashed".to_owned(),
            }
        } else {
            let base = format!("decoded-{}", meta.chain.join(">"));
            match view {
                ViewName::AsIs => base,
                ViewName::Normalized => base + "+normalized",
                ViewName::Squashed => base + "+squashed",
            }
        };
        if self.sc.cfg.action_for(severity) == Action::Block {
            self.blocked = true;
        }
        found.push(rule.clone());
        self.findings.push(Finding {
            rule,
            severity,
            channel,
            text_index: meta.text_index,
            offset: meta.origin.unwrap_or(pos),
        });
    }
}
