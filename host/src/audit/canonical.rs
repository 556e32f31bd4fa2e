//! Canonical JSON: the exact bytes that an audit HMAC covers.
//!
//! The form is Python's `json.dumps(obj, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False, allow_nan=False)`, byte for byte, because signet-sign 0.1.x
//! signs entries that way and the two implementations must verify each other's logs:
//!
//! - object keys sorted by code point (= byte order of their UTF-8), no whitespace;
//! - strings: `"` `\` and the control characters U+0000..U+001F escaped (`\b \t \n
//!   \f \r` short forms, the rest as lowercase `\u00XX`); everything else, including
//!   non-ASCII, DEL, U+2028/2029 and `/`, written raw as UTF-8;
//! - integers in decimal; floats in Python's `repr` (shortest round-trip digits,
//!   fixed notation when the decimal exponent is in `-4 < e <= 16`, otherwise
//!   `1e-05` / `1e+16` style with at least two exponent digits, and `.0` on
//!   integral values); NaN and infinities are refused.
//!
//! This file writes `serde_json::Value`s (what the pipeline hands the writer);
//! [`super::json`] re-uses the string and float writers for values parsed from a log.

use serde_json::Value;

/// Why a value has no canonical form.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    /// NaN or an infinity: JSON has no literal for them and signet-sign refuses them.
    #[error("value at {path:?} (JSON pointer) is {value}: NaN and infinities have no canonical JSON form; record them as strings")]
    NonFinite {
        /// JSON-pointer-like location of the value.
        path: String,
        /// `NaN`, `inf` or `-inf`.
        value: String,
    },
}

/// Append the canonical JSON of `value` to `out`.
pub fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                write_py_float(f, out).map_err(|value| CanonicalError::NonFinite {
                    path: String::new(),
                    value,
                })?;
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out).map_err(|e| e.within(&i.to_string()))?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Sort explicitly: serde_json's map is only sorted without `preserve_order`.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(key, out);
                out.push(b':');
                write_value(item, out).map_err(|e| e.within(key))?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// The canonical JSON of `value` as a string.
pub fn to_canonical_string(value: &Value) -> Result<String, CanonicalError> {
    let mut out = Vec::new();
    write_value(value, &mut out)?;
    // Every byte came from a `&str` or from ASCII, so this cannot fail; map anyway.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

impl CanonicalError {
    /// Prefix the location with one more path segment (built only on error).
    fn within(self, segment: &str) -> Self {
        match self {
            CanonicalError::NonFinite { path, value } => CanonicalError::NonFinite {
                path: format!("/{segment}{path}"),
                value,
            },
        }
    }
}

/// Append `s` as a JSON string literal, escaped the way Python's
/// `json.dumps(..., ensure_ascii=False)` escapes it.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append `f` in Python's `repr(float)` form. Returns the Python spelling of the
/// value (`NaN`, `inf`, `-inf`) as the error when it is not finite.
pub fn write_py_float(f: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if f.is_nan() {
        return Err("NaN".to_owned());
    }
    if f.is_infinite() {
        return Err(if f > 0.0 { "inf" } else { "-inf" }.to_owned());
    }
    let sci = shortest_sci(f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1; // value = 0.DIGITS * 10^decpt
    if negative {
        out.push(b'-');
    }
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', decpt.unsigned_abs() as usize));
            out.extend_from_slice(digits.as_bytes());
        } else {
            let point = decpt.unsigned_abs() as usize;
            if point >= digits.len() {
                out.extend_from_slice(digits.as_bytes());
                out.extend(std::iter::repeat_n(b'0', point - digits.len()));
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits.as_bytes()[..point]);
                out.push(b'.');
                out.extend_from_slice(&digits.as_bytes()[point..]);
            }
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.extend_from_slice(first.as_bytes());
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest.as_bytes());
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        out.extend_from_slice(format!("{:02}", exp.unsigned_abs()).as_bytes());
    }
    Ok(())
}

/// Shortest round-trip digits in `d.ddde±x` form, chosen like Python's repr (David
/// Gay's dtoa, mode 0): of the shortest strings that round-trip, the one closest to
/// the exact binary value, ties to an even last digit. Rust's `{:e}` finds the
/// shortest length but may pick the other string of an exact tie (e.g. it prints
/// -1529357646096716.3 where Python prints ...716.2, the value being ...716.25), so
/// re-round correctly at that length and keep the result if it still round-trips.
fn shortest_sci(f: f64) -> String {
    let shortest = format!("{f:e}");
    let digits = shortest
        .split('e')
        .next()
        .unwrap_or("")
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    let nearest = format!("{f:.prec$e}", prec = digits.saturating_sub(1));
    if nearest != shortest && nearest.parse::<f64>() == Ok(f) {
        nearest
    } else {
        shortest
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn float(f: f64) -> String {
        let mut out = Vec::new();
        write_py_float(f, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Expected strings were produced by CPython 3.11 `json.dumps(v, sort_keys=True,
    /// separators=(",", ":"), ensure_ascii=False, allow_nan=False)`.
    #[test]
    fn floats_match_python_repr() {
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (1e-05, "1e-05"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (1.5e-7, "1.5e-07"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.0, "1.0"),
            (2.5, "2.5"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100.0, "100.0"),
            (1e22, "1e+22"),
            (12345.678, "12345.678"),
            (-3.25, "-3.25"),
            (0.30000000000000004, "0.30000000000000004"),
            (9007199254740993.0, "9007199254740992.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1.5e-323, "1.5e-323"),
            (1.0 / 3.0, "0.3333333333333333"),
            (9.999999999999999e-05, "9.999999999999999e-05"),
            (1.0000000000000002e16, "1.0000000000000002e+16"),
            (1.23e-18, "1.23e-18"),
            (4.35, "4.35"),
            (1e21, "1e+21"),
            (6.02214076e23, "6.02214076e+23"),
            (299792458.0, "299792458.0"),
            (-1e-300, "-1e-300"),
            (-1529357646096716.2, "-1529357646096716.2"),
            (0.5, "0.5"),
            (1e23, "1e+23"),
        ];
        for (value, expected) in cases {
            assert_eq!(float(*value), *expected, "repr of {value:e}");
        }
    }

    #[test]
    fn non_finite_floats_are_refused() {
        assert_eq!(
            write_py_float(f64::NAN, &mut Vec::new()),
            Err("NaN".to_owned())
        );
        assert_eq!(
            write_py_float(f64::NEG_INFINITY, &mut Vec::new()),
            Err("-inf".to_owned())
        );
    }

    #[test]
    fn strings_match_python_escaping() {
        let mut s: String = (0u8..0x21).map(char::from).collect();
        s.push_str("\u{7f}\u{80}\u{e9}\u{2028}\u{2029}\u{feff}\u{1F600}\"\\/");
        let expected = "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f \u{7f}\u{80}\u{e9}\u{2028}\u{2029}\u{feff}\u{1F600}\\\"\\\\/\"";
        assert_eq!(to_canonical_string(&json!(s)).unwrap(), expected);
    }

    #[test]
    fn objects_sort_by_code_point() {
        let v = json!({"b":1,"a":{"é":1,"z":[true,false,null],"A":-5,"_x":""},"ä":2,"a\u{0}":3,"\u{1F600}":4,"\u{ffff}":5});
        assert_eq!(
            to_canonical_string(&v).unwrap(),
            "{\"a\":{\"A\":-5,\"_x\":\"\",\"z\":[true,false,null],\"é\":1},\"a\\u0000\":3,\"b\":1,\"ä\":2,\"\u{ffff}\":5,\"\u{1F600}\":4}"
        );
        let v = json!({"k":[1,{"b":2,"a":null}], "":"", "é":"é"});
        assert_eq!(
            to_canonical_string(&v).unwrap(),
            "{\"\":\"\",\"k\":[1,{\"a\":null,\"b\":2}],\"é\":\"é\"}"
        );
    }

    #[test]
    fn integers_print_in_full() {
        assert_eq!(
            to_canonical_string(&json!(u64::MAX)).unwrap(),
            "18446744073709551615"
        );
        assert_eq!(
            to_canonical_string(&json!(i64::MIN)).unwrap(),
            "-9223372036854775808"
        );
    }
}
