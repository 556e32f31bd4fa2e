//! Numbers standing for characters: decimal code points (`105 103 110 …`,
//! `105,103,110`, one per line) and 8-bit binary groups (`01101001 01100111`
//! or one long run whose length is a multiple of 8). A sequence needs at
//! least four numbers; one that maps to control characters or no letters is
//! dropped later as binary, so lists of quantities and dates cost nothing.

use super::{byte_runs, Data, Decoded, Sink};

const MIN_NUMBERS: usize = 4;

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b',' | b';' | b'\t' | b'\n' | b'\r')
}

/// Sequences of separated decimal numbers (1..=7 digits): `(start, numbers)`.
fn decimal_sequences(b: &[u8]) -> Vec<(usize, Vec<u32>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts_number = b.get(i).is_some_and(u8::is_ascii_digit)
            && (i == 0 || b.get(i - 1).is_some_and(|&c| is_sep(c)));
        if !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        let mut nums: Vec<u32> = Vec::new();
        loop {
            let n = b
                .get(i..)
                .map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count());
            let ends_ok = b.get(i + n).is_none_or(|&c| is_sep(c) || c == b'.');
            if n == 0 || n > 7 || !ends_ok {
                break;
            }
            let v = b
                .get(i..i + n)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<u32>().ok());
            let Some(v) = v else { break };
            nums.push(v);
            i += n;
            let mut j = i;
            while j < b.len() && j - i < 3 && b.get(j).copied().is_some_and(is_sep) {
                j += 1;
            }
            if j == i || !b.get(j).is_some_and(u8::is_ascii_digit) {
                break;
            }
            i = j;
        }
        if nums.len() >= MIN_NUMBERS {
            out.push((start, nums));
        }
        i = i.max(start + 1);
    }
    out
}

fn emit(sink: &mut dyn Sink, name: &'static str, start: usize, bytes: Vec<u8>) -> bool {
    let d = Decoded {
        name,
        start,
        data: Data::Bytes(bytes),
    };
    sink.emit(d)
}

fn run_decimal(text: &str, sink: &mut dyn Sink) -> bool {
    for (start, nums) in decimal_sequences(text.as_bytes()) {
        if !sink.candidate() || !sink.steps(nums.len()) {
            return false;
        }
        if nums.iter().any(|&n| char::from_u32(n).is_none()) {
            continue;
        }
        let s: String = nums.iter().filter_map(|&n| char::from_u32(n)).collect();
        if !emit(sink, "decimal", start, s.into_bytes()) {
            return false;
        }
    }
    true
}

fn bits_to_bytes(bits: impl Iterator<Item = u8>) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut n) = (0u8, 0);
    for bit in bits {
        acc = acc << 1 | (bit & 1);
        n += 1;
        if n == 8 {
            out.push(acc);
            acc = 0;
            n = 0;
        }
    }
    out
}

fn run_binary(text: &str, sink: &mut dyn Sink) -> bool {
    let is_bin = |b: u8| matches!(b, b'0' | b'1' | b' ' | b'\n' | b'\r' | b'\t' | b',');
    for (s, e) in byte_runs(text, 32, is_bin) {
        let Some(run) = text.get(s..e) else { continue };
        let groups: Vec<&str> = run
            .split(|c: char| !matches!(c, '0' | '1'))
            .filter(|g| !g.is_empty())
            .collect();
        let digits: usize = groups.iter().map(|g| g.len()).sum();
        let grouped = groups.len() >= MIN_NUMBERS && groups.iter().all(|g| g.len() == 8);
        let solid = groups.len() == 1 && digits.is_multiple_of(8);
        if !(grouped || solid) || digits < 32 {
            continue;
        }
        if !sink.candidate() || !sink.steps(digits) {
            return false;
        }
        let bits = groups.iter().flat_map(|g| g.bytes()).map(|c| c - b'0');
        if !emit(sink, "binary", s, bits_to_bytes(bits)) {
            return false;
        }
    }
    true
}

/// Find and decode decimal code points and binary groups in `text`.
pub(super) fn run(text: &str, sink: &mut dyn Sink) -> bool {
    run_decimal(text, sink) && run_binary(text, sink)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fuzz, texts};
    use super::*;

    #[test]
    fn decimal_forms() {
        assert_eq!(texts(run, "105 103 110 111 114 101"), ["ignore"]);
        assert_eq!(texts(run, "x: 105,103,110,111,114,101."), ["ignore"]);
        assert_eq!(texts(run, "105\n103\n110\n111"), ["igno"]);
    }

    #[test]
    fn binary_forms() {
        let bin: Vec<String> = "ignore".bytes().map(|b| format!("{b:08b}")).collect();
        assert_eq!(texts(run, &bin.join(" ")), ["ignore"]);
        assert_eq!(texts(run, &bin.concat()), ["ignore"]);
    }

    #[test]
    fn malformed_never_panics() {
        fuzz(run);
        let _ = texts(run, "99999999 1 2 3 4 5");
        let _ = texts(run, "1114112 55296 0 1");
    }
}
