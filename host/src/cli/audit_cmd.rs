//! `signet audit verify|show|tail`, `signet receipt verify`, `signet keys generate`:
//! clap types and the command functions. Each `run_*` returns the process exit code
//! (0 ok, 2 chain broken / receipt invalid / entry not found is 1); an `Err` means a
//! usage or I/O problem and should exit 1.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::audit::keys::{generate_ed25519, load_key, Keyring, SecretSources};
use crate::audit::query::{find_entry, sanitize, summary, tail, Filter};
use crate::audit::receipt::{verify_receipt, ReceiptKey};
use crate::audit::verify::{verify_path, BreakKind, HeadStatus, VerifyOptions, VerifyReport};

/// `signet audit ...`
#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Walk the HMAC chain and report every break; exit 0 intact, 2 broken, 1 error.
    Verify(VerifyArgs),
    /// Print one entry as pretty JSON (exit 1 if not found).
    Show {
        /// The entry id (= correlation id).
        entry_id: String,
        /// The audit log.
        #[arg(long, env = "SIGNET_AUDIT_LOG")]
        audit_log: PathBuf,
    },
    /// Print the last N entries (matching a filter), one line each.
    Tail {
        /// The audit log.
        path: PathBuf,
        /// How many entries.
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        n: usize,
        /// Print the raw JSON lines.
        #[arg(long)]
        json: bool,
        /// key=value[,key=value...], e.g. decision=block,check=rate_limit,shadow=true
        #[arg(long)]
        filter: Option<String>,
    },
    /// Sum up a log: totals, time range, counts by check / decision / owner, top refused owners, per day.
    ///
    /// Requests are counted from their `pipeline.complete` rows (one per
    /// request: allow, or block when refused); check decisions are the other
    /// rows (one per non-allow decision; `shadow` = recorded in audit mode, not
    /// enforced). Owners, top refused and the per-day table count requests (a
    /// log without request rows, e.g. from signet-sign, is counted per entry).
    /// --plot FILE.svg also draws the days as a stacked bar chart. Signatures
    /// are not checked here: run `signet audit verify` for that.
    ///
    /// Example: signet audit report audit.jsonl --since 7d --plot week.svg
    Report(super::report::Args),
}

/// Arguments of `signet audit verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A log file, or a directory whose *.jsonl files are each verified.
    pub path: PathBuf,
    /// The audit HMAC secret (hex).
    #[arg(long, env = "SIGNET_HMAC_SECRET", hide_env_values = true)]
    pub hmac_secret: Option<String>,
    /// Id of the key the secret belongs to.
    #[arg(long, env = "SIGNET_KEY_ID", default_value = "k1")]
    pub key_id: String,
    /// JSON keyring of retired keys: {"keys":[{"id":"k0","secret_hex":"..."}]}
    #[arg(long)]
    pub keyring: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Treat a missing <log>.head file as truncation.
    #[arg(long)]
    pub require_head: bool,
}

/// `signet receipt ...`
#[derive(Debug, clap::Subcommand)]
pub enum ReceiptCmd {
    /// Check an X-Signet-Receipt value offline; exit 0 valid, 2 invalid, 1 error.
    Verify {
        /// The header value (quote it).
        header: String,
        /// The audit HMAC secret (hex), for alg=hmac-sha256.
        #[arg(long, env = "SIGNET_HMAC_SECRET", hide_env_values = true)]
        hmac_secret: Option<String>,
        /// Ed25519 public key file, for alg=ed25519.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// The response body as delivered; its SHA-256 must match the receipt.
        #[arg(long)]
        body: Option<PathBuf>,
        /// Print the claims as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `signet keys ...`
#[derive(Debug, clap::Subcommand)]
pub enum KeysCmd {
    /// Create an Ed25519 key pair for receipts: PATH (private, 0600) and PATH.pub.
    Generate {
        /// Where to write the private key.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Run `signet audit ...`.
pub fn run_audit(cmd: AuditCmd) -> anyhow::Result<i32> {
    match cmd {
        AuditCmd::Verify(args) => run_verify(&args),
        AuditCmd::Show {
            entry_id,
            audit_log,
        } => match find_entry(&audit_log, &entry_id)? {
            Some(pretty) => {
                println!("{pretty}");
                Ok(0)
            }
            None => {
                eprintln!(
                    "no entry {} in {}",
                    sanitize(&entry_id),
                    audit_log.display()
                );
                Ok(1)
            }
        },
        AuditCmd::Tail {
            path,
            n,
            json,
            filter,
        } => {
            let filter: Filter = filter.as_deref().unwrap_or("").parse()?;
            for line in tail(&path, n, &filter)? {
                println!("{}", if json { line } else { summary(&line) });
            }
            Ok(0)
        }
        AuditCmd::Report(args) => super::report::run(args).map(i32::from),
    }
}

fn keyring_for(args: &VerifyArgs) -> anyhow::Result<Keyring> {
    let retired = match &args.keyring {
        Some(p) => Keyring::load_file(p)?,
        None => Vec::new(),
    };
    let sources = SecretSources {
        flag: args.hmac_secret.as_deref(),
        env_var: None,
        file: None,
    };
    let active = match load_key(&args.key_id, &sources, false) {
        Ok(k) => k,
        Err(crate::audit::keys::KeyError::Missing { .. }) if !retired.is_empty() => {
            retired[0].clone()
        }
        Err(e) => return Err(e.into()),
    };
    let origin = args
        .keyring
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Ok(Keyring::new(active).with_retired(retired, &origin)?)
}

fn run_verify(args: &VerifyArgs) -> anyhow::Result<i32> {
    let keys = keyring_for(args)?;
    let opts = VerifyOptions {
        require_head: args.require_head,
        ..VerifyOptions::default()
    };
    let mut bar = Progress::new();
    let reports = verify_path(&args.path, &keys, &opts, &mut |done, total| {
        bar.update(done, total)
    })?;
    bar.clear();
    let ok = reports.iter().all(VerifyReport::ok);
    if args.json {
        let body = if args.path.is_dir() {
            serde_json::json!({"ok": ok, "files": reports.iter().map(report_json).collect::<Vec<_>>()})
        } else {
            reports.first().map(report_json).unwrap_or_default()
        };
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        let many = reports.len() > 1 || args.path.is_dir();
        for r in &reports {
            print_report(r, many);
        }
        if many {
            let broken = reports.iter().filter(|r| !r.ok()).count();
            println!(
                "{} file(s): {} intact, {broken} broken",
                reports.len(),
                reports.len() - broken
            );
        }
    }
    Ok(if ok { 0 } else { 2 })
}

fn report_json(r: &VerifyReport) -> serde_json::Value {
    serde_json::json!({
        "ok": r.ok(),
        "path": r.path.display().to_string(),
        "bytes": r.bytes,
        "total_entries": r.total_entries,
        "last_known_good_index": r.last_known_good_index,
        "last_known_good_hmac": r.last_known_good_hmac,
        "breaks": r.breaks,
        "breaks_total": r.breaks_total,
        "head": r.head,
        "signet_version": env!("CARGO_PKG_VERSION"),
    })
}

fn print_report(r: &VerifyReport, with_path: bool) {
    if with_path {
        println!("== {}", r.path.display());
    }
    let head = match &r.head {
        HeadStatus::Valid { seq } => format!(", signed head at seq {seq}"),
        _ => String::new(),
    };
    if r.ok() {
        match r.total_entries {
            0 => println!("OK: 0 entries (chain is empty)"),
            n => println!(
                "OK: {n} entries, chain intact (last hmac={}...){head}",
                r.last_known_good_hmac.get(..16).unwrap_or("")
            ),
        }
    } else {
        println!(
            "BROKEN: {} issue(s) across {} entries (last good index {})",
            r.breaks_total, r.total_entries, r.last_known_good_index
        );
        for b in r.breaks.iter().take(50) {
            println!(
                "  line {} (index {}) [{}] entry={}: {}",
                b.line,
                b.index,
                b.kind.as_str(),
                sanitize(&b.entry_id),
                sanitize(&b.detail)
            );
        }
        if r.breaks_total > 50 {
            println!(
                "  ... and {} more (use --json for all)",
                r.breaks_total - 50
            );
        }
        let self_breaks = r
            .breaks
            .iter()
            .filter(|b| b.kind == BreakKind::SelfMismatch)
            .count() as u64;
        if r.total_entries > 1 && self_breaks == r.total_entries {
            println!("  hint: every entry failed its HMAC: wrong --hmac-secret or --key-id?");
        }
    }
    if r.head == HeadStatus::Missing {
        println!(
            "note: no head file ({}.head): truncation at the end of the log cannot be detected",
            r.path.display()
        );
    }
}

/// A hand-written progress bar on stderr, for large logs on a terminal.
struct Progress {
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
            last: None,
            drawn: false,
        }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.enabled
            || total < (8 << 20)
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let pct = done.saturating_mul(100) / total.max(1);
        let filled = usize::try_from(pct / 4).unwrap_or(25);
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(25 - filled.min(25)));
        let mb = |b: u64| b as f64 / 1e6;
        eprint!(
            "\r  verifying [{bar}] {pct:>3}%  {:.1}/{:.1} MB",
            mb(done),
            mb(total)
        );
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r{}\r", " ".repeat(60));
            let _ = std::io::stderr().flush();
        }
    }
}

/// Run `signet receipt ...`.
pub fn run_receipt(cmd: ReceiptCmd) -> anyhow::Result<i32> {
    let ReceiptCmd::Verify {
        header,
        hmac_secret,
        public_key,
        body,
        json,
    } = cmd;
    let wants_ed25519 = header.contains("alg=ed25519");
    let key = match (hmac_secret, public_key) {
        (_, Some(p)) if wants_ed25519 => ReceiptKey::from_public_key_file(&p)?,
        (Some(s), _) => ReceiptKey::from_hex_secret(&s, "--hmac-secret")?,
        (None, Some(p)) => ReceiptKey::from_public_key_file(&p)?,
        (None, None) => {
            bail!("pass --hmac-secret HEX (alg=hmac-sha256) or --public-key PATH (alg=ed25519)")
        }
    };
    let body = match &body {
        Some(p) => {
            Some(std::fs::read(p).with_context(|| format!("reading --body {}", p.display()))?)
        }
        None => None,
    };
    let verdict = verify_receipt(&header, &key).and_then(|claims| match &body {
        Some(b) => claims.check_body(b).map(|()| claims),
        None => Ok(claims),
    });
    match verdict {
        Ok(claims) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&claims)?);
            } else {
                println!(
                    "VALID: entry {} {} by {} at {} (status {}, owner {}:{}){}",
                    sanitize(&claims.entry_id),
                    claims.decision.as_str(),
                    sanitize(&claims.check),
                    sanitize(&claims.stage),
                    claims.status,
                    claims.owner_type.as_str(),
                    sanitize(&claims.owner_id),
                    if body.is_some() { ", body matches" } else { "" }
                );
            }
            Ok(0)
        }
        Err(e) => {
            println!("INVALID: {}", sanitize(&e.to_string()));
            Ok(2)
        }
    }
}

/// Run `signet keys ...`.
pub fn run_keys(cmd: KeysCmd) -> anyhow::Result<i32> {
    let KeysCmd::Generate { out } = cmd;
    let pair = generate_ed25519(&out)?;
    println!(
        "wrote {} (private, mode 0600) and {} (public)",
        pair.private_path.display(),
        pair.public_path.display()
    );
    println!("key id: {}", pair.key_id);
    println!(
        "use it with [receipts] alg = \"ed25519\", private_key_path = {:?}",
        display(&pair.private_path)
    );
    Ok(0)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::audit::keys::HmacKey;
    use crate::audit::receipt::{body_digest, Claims, ReceiptSigner};
    use crate::audit::{AuditWriter, Decision, EntryId, NewEntry, OwnerType, WriterConfig};

    const SECRET: &str = "4242424242424242424242424242424242424242424242424242424242424242";

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "signet-cli-{tag}-{}",
            &EntryId::new_v4().as_str()[..8]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn verify_args(path: &Path, secret: &str) -> AuditCmd {
        AuditCmd::Verify(VerifyArgs {
            path: path.to_owned(),
            hmac_secret: Some(secret.to_owned()),
            key_id: "k1".into(),
            keyring: None,
            json: true,
            require_head: false,
        })
    }

    #[test]
    fn audit_commands_exit_with_the_documented_codes() {
        let dir = temp("audit");
        let log = dir.join("audit.jsonl");
        let key = HmacKey::from_hex("k1", SECRET, "test", true).unwrap();
        let (w, _) = AuditWriter::open(WriterConfig::new(&log, Keyring::new(key), "t")).unwrap();
        let id = EntryId::new_v4();
        w.append_blocking(
            NewEntry::new(id.clone(), "rate_limit", Decision::Block, "slow down")
                .meta("shadow", true),
        )
        .unwrap();
        w.append_blocking(NewEntry::new(
            EntryId::new_v4(),
            "pipeline",
            Decision::Allow,
            "ok",
        ))
        .unwrap();
        w.close_blocking().unwrap();

        assert_eq!(run_audit(verify_args(&log, SECRET)).unwrap(), 0);
        assert_eq!(
            run_audit(verify_args(&dir, SECRET)).unwrap(),
            0,
            "a directory of chains"
        );
        let bad_secret = "43".repeat(32);
        assert_eq!(
            run_audit(verify_args(&log, &bad_secret)).unwrap(),
            2,
            "wrong key = broken"
        );
        let err = run_audit(verify_args(&log, "xyz")).unwrap_err().to_string();
        assert!(
            err.contains("--hmac-secret") && err.contains("hex"),
            "{err}"
        );
        assert!(run_audit(verify_args(&dir.join("missing.jsonl"), SECRET)).is_err());

        let show = |entry_id: &str| AuditCmd::Show {
            entry_id: entry_id.into(),
            audit_log: log.clone(),
        };
        assert_eq!(run_audit(show(id.as_str())).unwrap(), 0);
        assert_eq!(
            run_audit(show("00000000-0000-4000-8000-000000000000")).unwrap(),
            1
        );
        let tail = AuditCmd::Tail {
            path: log.clone(),
            n: 5,
            json: false,
            filter: Some("decision=block,shadow=true".into()),
        };
        assert_eq!(run_audit(tail).unwrap(), 0);
        let bad = AuditCmd::Tail {
            path: log.clone(),
            n: 5,
            json: false,
            filter: Some("decision".into()),
        };
        assert!(run_audit(bad).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn receipt_and_keys_commands() {
        let dir = temp("receipt");
        let claims = Claims {
            entry_id: "e1".into(),
            ts_ns: 1,
            decision: Decision::Allow,
            check: "pipeline".into(),
            stage: "record".into(),
            status: 200,
            owner_type: OwnerType::Agent,
            owner_id: "bot".into(),
            request_fingerprint: "sha256:00".into(),
            response_sha256: body_digest(b"hello"),
        };
        let body = dir.join("body");
        std::fs::write(&body, b"hello").unwrap();
        let key = HmacKey::from_hex("k1", SECRET, "test", true).unwrap();
        let header = ReceiptSigner::hmac(&key).sign(&claims);
        let verify = |header: &str,
                      secret: Option<&str>,
                      public_key: Option<PathBuf>,
                      body: Option<PathBuf>| {
            run_receipt(ReceiptCmd::Verify {
                header: header.into(),
                hmac_secret: secret.map(String::from),
                public_key,
                body,
                json: false,
            })
        };
        assert_eq!(
            verify(&header, Some(SECRET), None, Some(body.clone())).unwrap(),
            0
        );
        assert_eq!(
            verify(&header, Some(&"43".repeat(32)), None, None).unwrap(),
            2
        );
        std::fs::write(&body, b"hellO").unwrap();
        assert_eq!(
            verify(&header, Some(SECRET), None, Some(body.clone())).unwrap(),
            2
        );
        assert!(verify(&header, None, None, None).is_err());

        let out = dir.join("receipt.key");
        assert_eq!(run_keys(KeysCmd::Generate { out: out.clone() }).unwrap(), 0);
        assert!(
            run_keys(KeysCmd::Generate { out: out.clone() }).is_err(),
            "never overwrites"
        );
        let signer =
            ReceiptSigner::ed25519(crate::audit::keys::load_ed25519_private(&out).unwrap());
        let header = signer.sign(&claims);
        let public = dir.join("receipt.key.pub");
        assert_eq!(
            verify(&header, Some(SECRET), Some(public.clone()), None).unwrap(),
            0
        );
        assert_eq!(
            verify(&header.replace("sig=", "sig=00"), None, Some(public), None).unwrap(),
            2
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
