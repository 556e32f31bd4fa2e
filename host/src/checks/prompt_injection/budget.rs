//! Work accounting for one scan. Every cap is a count (bytes, candidates,
//! depth, abstract steps), never wall-clock time, so the same input always
//! does the same work and gets the same answer on any machine.
//!
//! Callers ask before they spend: `charge_*` returns `false` once a cap is
//! reached, records which cap in [`Budget::hit`], and every later call fails
//! too, so the scan unwinds quickly.

use super::config::Limits;
use super::report::{BudgetHit, WorkStats};

/// Remaining work for one `Scanner::scan` call.
#[derive(Debug)]
pub(super) struct Budget {
    limits: Limits,
    per_depth: Vec<usize>,
    hit: Option<BudgetHit>,
    pub(super) stats: WorkStats,
}

impl Budget {
    pub(super) fn new(limits: Limits) -> Self {
        Budget {
            limits,
            per_depth: vec![0; limits.max_depth.saturating_add(2)],
            hit: None,
            stats: WorkStats::default(),
        }
    }

    /// The first cap that was hit, if any.
    pub(super) fn hit(&self) -> Option<BudgetHit> {
        self.hit
    }

    /// True once any cap was hit.
    pub(super) fn exhausted(&self) -> bool {
        self.hit.is_some()
    }

    pub(super) fn max_depth(&self) -> usize {
        self.limits.max_depth
    }

    fn record(&mut self, hit: BudgetHit) -> bool {
        if self.hit.is_none() {
            self.hit = Some(hit);
        }
        false
    }

    /// Record that a product would have needed one more level than `max_depth`.
    pub(super) fn depth_exceeded(&mut self) {
        let limit = self.limits.max_depth;
        self.record(BudgetHit::Depth { limit });
    }

    /// Spend `n` abstract steps (roughly: bytes touched by a pass).
    pub(super) fn steps(&mut self, n: usize) -> bool {
        if self.exhausted() {
            return false;
        }
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.stats.work_steps = self.stats.work_steps.saturating_add(n);
        if self.stats.work_steps > self.limits.max_work_steps {
            let limit = self.limits.max_work_steps;
            return self.record(BudgetHit::WorkSteps { limit });
        }
        true
    }

    /// Count one candidate about to be decoded.
    pub(super) fn candidate(&mut self) -> bool {
        if self.exhausted() {
            return false;
        }
        self.stats.candidates = self.stats.candidates.saturating_add(1);
        if self.stats.candidates > self.limits.max_candidates {
            let limit = self.limits.max_candidates;
            return self.record(BudgetHit::Candidates { limit });
        }
        true
    }

    /// How many decoded bytes may still be produced at `depth`: a decoder
    /// must not write more than this (plus one byte to detect overflow).
    pub(super) fn decoded_room(&self, depth: usize) -> usize {
        if self.exhausted() {
            return 0;
        }
        let used_here = self.per_depth.get(depth).copied().unwrap_or(usize::MAX);
        let here = self
            .limits
            .max_decoded_bytes_per_depth
            .saturating_sub(used_here);
        let total = self
            .limits
            .max_decoded_bytes_total
            .saturating_sub(self.stats.decoded_bytes);
        here.min(total)
    }

    /// Charge `n` decoded bytes produced at `depth` (1 = decoded once).
    pub(super) fn decoded(&mut self, depth: usize, n: usize) -> bool {
        if self.exhausted() {
            return false;
        }
        if depth > self.stats.max_depth_reached {
            self.stats.max_depth_reached = depth;
        }
        let Some(slot) = self.per_depth.get_mut(depth) else {
            self.depth_exceeded();
            return false;
        };
        *slot = slot.saturating_add(n);
        let slot_now = *slot;
        self.stats.decoded_bytes = self.stats.decoded_bytes.saturating_add(n);
        if slot_now > self.limits.max_decoded_bytes_per_depth {
            let limit = self.limits.max_decoded_bytes_per_depth;
            return self.record(BudgetHit::DecodedBytesPerDepth { depth, limit });
        }
        if self.stats.decoded_bytes > self.limits.max_decoded_bytes_total {
            let limit = self.limits.max_decoded_bytes_total;
            return self.record(BudgetHit::DecodedBytesTotal { limit });
        }
        self.stats.products = self.stats.products.saturating_add(1);
        true
    }

    /// Record the overflow of a bounded decoder (e.g. a decompression that
    /// would write more than [`Budget::decoded_room`]) against the right cap.
    pub(super) fn decoded_overflow(&mut self, depth: usize) {
        let room_depth = self
            .limits
            .max_decoded_bytes_per_depth
            .saturating_sub(self.per_depth.get(depth).copied().unwrap_or(0));
        let room_total = self
            .limits
            .max_decoded_bytes_total
            .saturating_sub(self.stats.decoded_bytes);
        let _ = if room_depth <= room_total {
            self.decoded(depth, room_depth.saturating_add(1))
        } else {
            self.decoded(depth, room_total.saturating_add(1))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            max_scan_bytes: 100,
            max_decoded_bytes_total: 50,
            max_decoded_bytes_per_depth: 30,
            max_candidates: 2,
            max_depth: 16,
            max_work_steps: 1_000,
        }
    }

    #[test]
    fn per_depth_cap_hits_first() {
        let mut b = Budget::new(small());
        assert!(b.decoded(1, 30));
        assert!(!b.decoded(1, 1));
        assert_eq!(
            b.hit(),
            Some(BudgetHit::DecodedBytesPerDepth {
                depth: 1,
                limit: 30
            })
        );
        assert!(!b.candidate(), "every later call fails");
    }

    #[test]
    fn total_cap_across_depths() {
        let mut b = Budget::new(small());
        assert!(b.decoded(1, 25));
        assert_eq!(b.decoded_room(2), 25);
        assert!(b.decoded(2, 25));
        assert!(!b.decoded(3, 1));
        assert_eq!(b.hit(), Some(BudgetHit::DecodedBytesTotal { limit: 50 }));
    }

    #[test]
    fn candidates_and_steps() {
        let mut b = Budget::new(small());
        assert!(b.candidate() && b.candidate());
        assert!(!b.candidate());
        assert_eq!(b.hit(), Some(BudgetHit::Candidates { limit: 2 }));
        let mut b = Budget::new(small());
        assert!(b.steps(1_000));
        assert!(!b.steps(1));
        assert_eq!(b.hit(), Some(BudgetHit::WorkSteps { limit: 1_000 }));
    }

    #[test]
    fn overflow_is_charged_to_the_tighter_cap() {
        let mut b = Budget::new(small());
        b.decoded_overflow(1);
        assert_eq!(
            b.hit(),
            Some(BudgetHit::DecodedBytesPerDepth {
                depth: 1,
                limit: 30
            })
        );
        let mut b = Budget::new(small());
        assert!(b.decoded(1, 28));
        assert!(b.decoded(2, 20));
        b.decoded_overflow(3);
        assert_eq!(b.hit(), Some(BudgetHit::DecodedBytesTotal { limit: 50 }));
    }
}
