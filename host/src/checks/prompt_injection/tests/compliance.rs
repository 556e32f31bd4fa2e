//! The shared compliance property: empty input, a 4 MB input, odd Unicode
//! (lone combining marks, every bidi control, private use, U+FFFD,
//! noncharacters, very long lines without spaces) never panic and do bounded
//! work.

use super::super::{InjectionConfig, Outcome};
use super::{b64, scanner};

fn bounded(r: &super::super::ScanReport) {
    let limits = InjectionConfig::default().limits();
    assert!(
        r.stats.work_steps <= limits.max_work_steps + (64 << 20),
        "{:?}",
        r.stats
    );
    assert!(r.stats.decoded_bytes <= limits.max_decoded_bytes_total + 1);
    assert!(r.stats.candidates <= limits.max_candidates + 1);
    assert!(r.stats.max_depth_reached <= limits.max_depth);
}

#[test]
fn empty_input() {
    let sc = scanner();
    for texts in [vec![], vec![""], vec!["", "", ""]] {
        let r = sc.scan(&texts);
        assert_eq!(r.outcome, Outcome::Allow);
        assert!(r.findings.is_empty() && r.budget_hit.is_none());
    }
}

#[test]
fn four_megabyte_prose() {
    let para =
        "The committee reviewed the quarterly figures and agreed to publish the report next week. \
                Customers asked about refunds, delivery times and the new loyalty programme. ";
    let text = para.repeat(4_000_000 / para.len());
    assert!(text.len() > 3_900_000);
    let r = scanner().scan(&[&text]);
    assert_eq!(
        r.outcome,
        Outcome::Allow,
        "{:?} {:?}",
        r.budget_hit,
        r.stats
    );
    bounded(&r);
}

/// Adversarial shapes, 512 KB each so the debug-mode suite stays fast; the
/// same shapes at 4 MB are timed in release by the measurement harness
/// (see the engine's report).
#[test]
fn adversarial_blobs() {
    let sc = scanner();
    const N: usize = 512 * 1024;
    let noise: String = (0..N as u32)
        .map(|i| {
            let a = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            char::from(a[(i.wrapping_mul(2654435761) >> 26) as usize])
        })
        .collect();
    for text in [
        "a".repeat(N),
        noise,
        "0".repeat(N),
        "%41".repeat(N / 3),
        "&#105;".repeat(N / 6),
        "\\u0041".repeat(N / 6),
        "i ".repeat(N / 2),
        "1 ".repeat(N / 2),
        "zorbly quaxed flimmering snorp ".repeat(N / 31),
        b64(&vec![0u8; N]),
    ] {
        let r = sc.scan(&[&text]);
        bounded(&r);
    }
}

#[test]
fn odd_unicode() {
    let sc = scanner();
    let mut all_bidi = String::new();
    for cp in (0x202A..=0x202E)
        .chain(0x2066..=0x2069)
        .chain([0x200E, 0x200F, 0x061C])
    {
        all_bidi.push(char::from_u32(cp).unwrap());
        all_bidi.push('x');
    }
    let cases = [
        "\u{0301}".to_owned(),
        "\u{0301}\u{0302}\u{0303}".repeat(10_000),
        all_bidi,
        "\u{E000}\u{F8FF}\u{F0000}\u{10FFFD}".to_owned(),
        "\u{FFFD}".repeat(1000),
        "\u{FFFF}\u{FFFE}\u{FDD0}".to_owned(),
        "\u{E0001}\u{E007F}\u{E0020}".to_owned(),
        "\u{FE0F}".repeat(5000),
        "\u{200D}".repeat(5000),
        "x".repeat(1_000_000),
        "\u{1F468}\u{200D}".repeat(50_000),
        "\u{0E47}".repeat(10_000),
        "\0\u{1}\u{7F}\u{9F}".to_owned(),
    ];
    for text in &cases {
        let r = sc.scan(&[text]);
        bounded(&r);
    }
    let refs: Vec<&str> = cases.iter().map(String::as_str).collect();
    bounded(&sc.scan(&refs));
}
