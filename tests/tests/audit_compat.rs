//! Cross-implementation test: our audit log and signet-sign 0.1.10.1's (the Python
//! reference) must verify with each other's verifier, byte for byte.
//!
//! Needs a Python venv with `signet-sign==0.1.10.1` installed: `$SIGNET_TEST_VENV`,
//! or `<workspace>/target/venv` (created by `.ci/setup-venv.sh`). A missing venv is
//! a failure, not a skip.
//!
//! Run with: `cargo test -p signet-e2e --test audit_compat` (the crate needs
//! `signet = { path = "../host" }` and `serde_json` as dependencies).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use signet::audit::verify::{verify_file, BreakKind, VerifyOptions};
use signet::audit::{
    AuditWriter, Decision, EntryId, FsyncPolicy, HmacKey, Keyring, NewEntry, OwnerType,
    WriterConfig,
};

const SECRET_HEX: &str = "5c1e7a0f9b2d4c6e8a1b3d5f7092c4e6a8b0d2f4163a5c7e9b1d3f5a7c9e0b2d";

fn venv() -> PathBuf {
    let dir = std::env::var_os("SIGNET_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."))
                .join("target/venv")
        });
    let ok = dir.join("bin/python").exists() && dir.join("bin/signet").exists();
    assert!(
        ok,
        "no Python venv with signet-sign at {} (set SIGNET_TEST_VENV or run .ci/setup-venv.sh, \
         which creates it with `pip install signet-sign==0.1.10.1`)",
        dir.display()
    );
    dir
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "signet-compat-{tag}-{}",
            &EntryId::new_v4().as_str()[..8]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ring() -> Keyring {
    Keyring::new(HmacKey::from_hex("k1", SECRET_HEX, "test", true).unwrap())
}

/// Entries that exercise the canonical form: floats in both notations, big and
/// negative integers, non-ASCII, U+2028, control characters, nesting, empty values.
fn tricky_entry(i: usize) -> NewEntry {
    NewEntry::new(
        EntryId::new_v4(),
        ["rate_limit", "prompt_injection", "tool_call_inspector"][i % 3],
        [
            Decision::Allow,
            Decision::Block,
            Decision::Redact,
            Decision::Escalate,
        ][i % 4],
        format!("reason {i}: caf\u{e9} \u{1F600} \u{2028} tab\tquote\" back\\ ctl\u{1} del\u{7f}"),
    )
    .owner(
        [
            OwnerType::Human,
            OwnerType::Agent,
            OwnerType::Policy,
            OwnerType::Unresolved,
        ][i % 4],
        format!("owner-{i}"),
    )
    .approval_chain(if i & 1 == 0 {
        vec![]
    } else {
        vec!["bob".into(), "carol".into()]
    })
    .request_body(format!("{{\"i\":{i}}}").as_bytes())
    .meta("shadow", i % 3 < 1)
    .meta(
        "f",
        serde_json::json!([
            0.1,
            1e-05,
            1e16,
            1e15,
            1.5e-7,
            -0.0,
            2.5,
            1e300,
            5e-324,
            0.1 * i as f64
        ]),
    )
    .meta("ints", serde_json::json!([0, -1, u64::MAX, i64::MIN]))
    .meta(
        "nested",
        serde_json::json!({"z": {"b": [], "a": {}}, "\u{e9}": null, "A": ""}),
    )
}

fn python_verify(venv: &Path, log: &Path) -> (i32, serde_json::Value) {
    let out = Command::new(venv.join("bin/signet"))
        .args(["audit", "verify"])
        .arg(log)
        .args(["--hmac-secret", SECRET_HEX, "--key-id", "k1", "--json"])
        .env_remove("SIGNET_HMAC_SECRET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "signet-sign printed no JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn write_ours(log: &Path, keys: Keyring, n: usize, from: usize) {
    let mut cfg = WriterConfig::new(log, keys, "compat");
    cfg.fsync = FsyncPolicy::Never;
    let (w, warnings) = AuditWriter::open(cfg).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    for i in from..from + n {
        w.append_blocking(tricky_entry(i)).unwrap();
    }
    w.close_blocking().unwrap();
}

#[test]
fn our_log_verifies_with_signet_sign() {
    let venv = venv();
    let dir = TempDir::new("ours");
    let log = dir.0.join("audit.jsonl");
    write_ours(&log, ring(), 40, 0);
    let (code, report) = python_verify(&venv, &log);
    assert_eq!(code, 0, "signet-sign rejected our log: {report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["total_entries"], 40);

    // And signet-sign really checks: one altered byte is a self_mismatch there too.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("reason 7:", "reason 8:", 1)).unwrap();
    let (code, report) = python_verify(&venv, &log);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["breaks"][0]["kind"], "self_mismatch");
    assert_eq!(report["breaks"][0]["index"], 7);
}

const PY_WRITER: &str = r#"
import sys
from signet.audit.backend import JsonlBackend
from signet.audit.chain import HmacChain
from signet.audit.keyring import Key, KeyRing
from signet.core.audit import AuditEntry, Decision
from signet.core.owner import Owner, OwnerType
path, secret, n = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
chain = HmacChain(JsonlBackend(path), KeyRing(active=Key("k1", secret)))
owners = [OwnerType.HUMAN, OwnerType.AGENT, OwnerType.POLICY, OwnerType.UNRESOLVED]
decisions = [Decision.ALLOW, Decision.BLOCK, Decision.REDACT, Decision.ESCALATE]
for i in range(n):
    chain.append(AuditEntry(
        owner=Owner(owner_type=owners[i % 4], owner_id=f"py-{i}", approval_chain=tuple(["a"] * (i % 3))),
        check_name="regex_content", decision=decisions[i % 4],
        reason=f"py {i} caf\u00e9 \U0001F600 \u2028 \x01 \"q\" \\",
        request_fingerprint="sha256:" + "ab" * 32,
        metadata={"f": [0.1, 1e-05, 1e16, 123456789012345678.0, i / 7], "big": 2 ** 70 + i,
                  "neg": -5, "s": "\u00e9\x1f", "nested": {"b": [True, False, None], "a": {}}},
    ))
"#;

#[test]
fn signet_sign_log_verifies_with_ours_and_our_writer_extends_it() {
    let venv = venv();
    let dir = TempDir::new("theirs");
    let log = dir.0.join("audit.jsonl");
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", PY_WRITER])
        .arg(&log)
        .args([SECRET_HEX, "25"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python writer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let r = verify_file(&log, &ring(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(r.ok(), "{:?}", r.breaks);
    assert_eq!(r.total_entries, 25);

    // Tampering in their log is found by us with their kind names.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(10);
    let cut = dir.0.join("cut.jsonl");
    std::fs::write(&cut, lines.join("\n") + "\n").unwrap();
    let r = verify_file(&cut, &ring(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(r.breaks[0].kind, BreakKind::LinkMismatch);
    assert_eq!(r.breaks[0].index, 10);

    // Our writer continues their chain; both verifiers accept the mixed log.
    write_ours(&log, ring(), 5, 100);
    let r = verify_file(&log, &ring(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(r.ok() && r.total_entries == 30, "{r:?}");
    let (code, report) = python_verify(&venv, &log);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["total_entries"], 30);
}

const PY_FLOATS: &str = r#"
import json, random, struct
random.seed(20261122)
def c(o): return json.dumps(o, sort_keys=True, separators=(",",":"), ensure_ascii=False, allow_nan=False)
vals = []
for _ in range(3000):
    f = struct.unpack("<d", struct.pack("<Q", random.getrandbits(64)))[0]
    if f == f and f not in (float("inf"), float("-inf")):
        vals.append(f)
vals += [random.uniform(-1e6, 1e6) for _ in range(2000)] + [random.random() * 10 ** random.randint(-30, 30) for _ in range(2000)]
doc = {"v": vals, "s": "".join(chr(random.randint(1, 0x2FFF)) for _ in range(500))}
print(json.dumps(doc))
print(c(doc))
"#;

/// Python's float repr and string escaping on thousands of random values: our
/// re-canonicalisation of Python's plain `json.dumps` output must equal Python's
/// canonical form.
#[test]
fn canonical_form_matches_python_on_random_values() {
    let venv = venv();
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", PY_FLOATS])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let (plain, canonical) = (lines.next().unwrap(), lines.next().unwrap());
    let ours = signet::audit::json::parse(plain).unwrap().canonical();
    if ours != canonical {
        let at = ours
            .bytes()
            .zip(canonical.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "differs at byte {at}: ours {:?} python {:?}",
            &ours[at.saturating_sub(20)..(at + 40).min(ours.len())],
            &canonical[at.saturating_sub(20)..(at + 40).min(canonical.len())]
        );
    }
    // The writer's path (serde_json::Value holding the same f64s) agrees too.
    let value = to_value(&signet::audit::json::parse(canonical).unwrap());
    let via_value = signet::audit::canonical::to_canonical_string(&value).unwrap();
    assert!(
        via_value == canonical,
        "the serde_json::Value path differs from Python"
    );
}

/// Our exact parse → serde_json::Value (serde_json's own float parser is not
/// round-trip exact without its `float_roundtrip` feature, so it is not used here).
fn to_value(j: &signet::audit::json::Json<'_>) -> serde_json::Value {
    use signet::audit::json::Json;
    match j {
        Json::Null => serde_json::Value::Null,
        Json::Bool(b) => (*b).into(),
        Json::Int(t) => serde_json::from_str(t).unwrap(),
        Json::Float(f) => (*f).into(),
        Json::Str(s) => s.to_string().into(),
        Json::Arr(items) => items.iter().map(to_value).collect(),
        Json::Obj(m) => m
            .iter()
            .map(|(k, v)| (k.to_string(), to_value(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}
