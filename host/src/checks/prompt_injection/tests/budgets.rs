//! Budgets: every cap stops the scan in bounded work, names itself, and turns
//! into the `on_budget_exceeded` outcome.

use std::io::Write;

use serde_json::json;

use super::super::{BudgetHit, Outcome};
use super::{b64, is_block, scanner, scanner_with, ATTACK};

/// gzip of `members` MiB of zeros: one compressed member, repeated (gzip
/// allows concatenated members), so the test builds it in milliseconds.
fn zero_bomb(members: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![0u8; 1 << 20]).unwrap();
    let member = e.finish().unwrap();
    member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * members)
        .collect()
}

#[test]
fn gigabyte_gzip_bomb_is_never_expanded() {
    let text = b64(&zero_bomb(1024)); // 1 GiB of zeros once inflated
    let r = scanner().scan(&[&text]);
    assert!(is_block(&r.outcome), "{r:?}");
    assert!(
        matches!(
            r.budget_hit,
            Some(
                BudgetHit::DecodedBytesPerDepth { depth: 2, .. }
                    | BudgetHit::DecodedBytesTotal { .. }
            )
        ),
        "{:?}",
        r.budget_hit
    );
    // Never more than the caps (4 MiB per depth, 8 MiB in all), plus one byte.
    assert!(r.stats.decoded_bytes <= (8 << 20) + 1, "{:?}", r.stats);
}

#[test]
fn each_on_budget_exceeded_value() {
    let text = b64(&zero_bomb(8));
    for (v, want) in [
        ("block", "block"),
        ("escalate", "escalate"),
        ("allow_with_audit", "audit"),
    ] {
        let sc = scanner_with(json!({
            "on_budget_exceeded": v, "max_decoded_bytes_per_depth": 1 << 20
        }));
        let r = sc.scan(&[&text]);
        assert!(r.budget_hit.is_some());
        let got = match r.outcome {
            Outcome::Block { .. } => "block",
            Outcome::Escalate { .. } => "escalate",
            Outcome::AllowWithAudit { .. } => "audit",
            Outcome::Allow => "allow",
        };
        assert_eq!(got, want, "{v}");
    }
}

#[test]
fn findings_outrank_a_lenient_budget_action() {
    let sc =
        scanner_with(json!({ "on_budget_exceeded": "allow_with_audit", "max_scan_bytes": 80 }));
    let text = format!("{ATTACK} {}", "padding ".repeat(40));
    let r = sc.scan(&[&text]);
    assert!(
        is_block(&r.outcome),
        "attack in the scanned prefix still blocks"
    );
    assert!(matches!(
        r.budget_hit,
        Some(BudgetHit::ScanBytes { limit: 80, .. })
    ));
}

#[test]
fn input_longer_than_max_scan_bytes() {
    let text = "A perfectly ordinary sentence. ".repeat(20);
    let sc = scanner_with(json!({ "max_scan_bytes": 100 }));
    let r = sc.scan(&[&text]);
    assert!(is_block(&r.outcome));
    assert_eq!(
        r.budget_hit,
        Some(BudgetHit::ScanBytes {
            limit: 100,
            input: text.len()
        })
    );
    let sc =
        scanner_with(json!({ "max_scan_bytes": 100, "on_budget_exceeded": "allow_with_audit" }));
    assert!(matches!(
        sc.scan(&[&text]).outcome,
        Outcome::AllowWithAudit { .. }
    ));
}

#[test]
fn nesting_deeper_than_max_depth() {
    let nest = |n: usize| {
        let mut x = ATTACK.to_owned();
        for _ in 0..n {
            x = b64(x.as_bytes());
        }
        x
    };
    let sc = scanner_with(json!({ "max_depth": 16 }));
    let r = sc.scan(&[&nest(16)]);
    assert!(is_block(&r.outcome) && r.budget_hit.is_none(), "{r:?}");
    let r = sc.scan(&[&nest(17)]);
    assert!(is_block(&r.outcome), "{r:?}");
    assert_eq!(r.budget_hit, Some(BudgetHit::Depth { limit: 16 }));
    assert!(r.findings.is_empty());
    let r = scanner().scan(&[&nest(30)]);
    assert_eq!(r.budget_hit, Some(BudgetHit::Depth { limit: 24 }));
}

#[test]
fn candidate_flood() {
    let flood: String = (0..3000u32).map(|i| format!("QUJD{i:08}RUZH ")).collect();
    let sc = scanner_with(json!({ "max_candidates": 500 }));
    let r = sc.scan(&[&flood]);
    assert_eq!(r.budget_hit, Some(BudgetHit::Candidates { limit: 500 }));
    assert!(is_block(&r.outcome));
    assert_eq!(r.stats.candidates, 501);
    let sc = scanner_with(json!({ "max_candidates": 500, "on_budget_exceeded": "escalate" }));
    assert!(matches!(
        sc.scan(&[&flood]).outcome,
        Outcome::Escalate { .. }
    ));
}

#[test]
fn decoded_bytes_total_and_per_depth() {
    let blobs: Vec<String> = (0..6)
        .map(|i| {
            b64(
                format!("benign sentence number {i} about the weather and tea. ")
                    .repeat(8)
                    .as_bytes(),
            )
        })
        .collect();
    let text = blobs.join(" ");
    let r = scanner().scan(&[&text]);
    assert_eq!(r.outcome, Outcome::Allow, "{r:?}");
    let sc = scanner_with(json!({ "max_decoded_bytes_total": 1000 }));
    let r = sc.scan(&[&text]);
    assert_eq!(
        r.budget_hit,
        Some(BudgetHit::DecodedBytesTotal { limit: 1000 })
    );
    assert!(r.stats.decoded_bytes <= 1000 + 500);
    let sc = scanner_with(json!({ "max_decoded_bytes_per_depth": 1000 }));
    let r = sc.scan(&[&text]);
    assert_eq!(
        r.budget_hit,
        Some(BudgetHit::DecodedBytesPerDepth {
            depth: 1,
            limit: 1000
        })
    );
}

#[test]
fn work_steps_cap() {
    let text = "An ordinary paragraph about tea. ".repeat(300);
    let sc = scanner_with(json!({ "max_work_steps": 5000 }));
    let r = sc.scan(&[&text]);
    assert_eq!(r.budget_hit, Some(BudgetHit::WorkSteps { limit: 5000 }));
    assert!(is_block(&r.outcome));
}

#[test]
fn work_is_deterministic() {
    let text = format!(
        "{} {}",
        b64(b"hello there, general"),
        "some words ".repeat(50)
    );
    let a = scanner().scan(&[&text]);
    let b = scanner().scan(&[&text]);
    assert_eq!(a, b);
    assert!(a.stats.work_steps > 0 && a.stats.scanned_bytes >= text.len());
}

/// The inline first pass of the check (`check::inline_limits`) must finish
/// ordinary requests up to the inline body size within its caps, or every
/// such request pays for a second, full scan off the reactor.
#[test]
fn inline_caps_cover_ordinary_prose() {
    let prose = "Hi team, quick update on the quarterly numbers: revenue is up 4% over last quarter, \
churn is flat, and the new onboarding flow shipped on Tuesday. Could you summarise the attached notes for the \
board, keep it under two paragraphs, and flag anything that needs a decision before Friday? Thanks! ";
    let scanner = super::super::Scanner::new(super::super::InjectionConfig::default()).unwrap();
    let limits = crate::checks::prompt_injection::check::inline_limits(scanner.config().limits());
    for n in [1, 4, 12] {
        let text = prose.repeat(n);
        let r = scanner.scan_with(&[text.as_str()], limits);
        eprintln!("{} bytes: {} work steps", text.len(), r.stats.work_steps);
        assert!(
            r.budget_hit.is_none(),
            "{} bytes: {:?}",
            text.len(),
            r.budget_hit
        );
        assert_eq!(r.outcome, scanner.scan(&[text.as_str()]).outcome);
    }
}
