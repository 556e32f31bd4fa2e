//! Configuration: `signet.toml` parsed strictly (unknown keys are errors) into
//! validated types. Flags and `SIGNET_*` env vars are merged over the file by
//! the CLI; this module knows nothing of them.
//!
//! | file | owns |
//! |---|---|
//! | `raw.rs` | serde types mirroring the file, every key optional |
//! | `mod.rs` | validated types with defaults applied, `load`, `parse` |
//! | `default.toml` | the secure default pipeline (used with no config file; written by `signet init`) |
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod raw;

/// The secure default configuration text.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default.toml");

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// When the audit writer fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every entry.
    Always,
    /// Once per group commit (a receipt is released only after its entry is durable).
    #[default]
    Batch,
    /// Never (the OS decides).
    Never,
}

/// Receipt signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum ReceiptAlg {
    /// HMAC-SHA256 keyed by a key derived from the audit secret.
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    /// Ed25519 with `private_key_path`.
    #[serde(rename = "ed25519")]
    Ed25519,
}

/// Where shared state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// In this process.
    #[default]
    Memory,
    /// A Redis server shared by replicas.
    Redis,
}

/// A check's mode as configured (mapped onto the pipeline's modes by the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckMode {
    /// Decisions take effect.
    Enforce,
    /// Redactions take effect; blocks are recorded only.
    Transform,
    /// Observe only.
    Audit,
    /// In the background after the response.
    FireAndForget,
    /// Not loaded.
    Disabled,
}

/// A check's error policy as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// Fail closed.
    Fail,
    /// Treat as allow.
    Ignore,
    /// Treat as allow and switch the check off.
    Disable,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct Server {
    /// Bind address.
    pub host: String,
    /// Bind port.
    pub port: u16,
    /// Hide reasons and check names in refusals.
    pub strict_errors: bool,
    /// Every check in audit mode.
    pub shadow: bool,
    /// Request body cap (413 above it).
    pub max_request_body_bytes: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace_ms: u64,
}

/// `[upstream]`.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Base URL of the model server (none: flags or `--dev` must supply one).
    pub url: Option<String>,
    /// Name of the env var holding the upstream API key.
    pub api_key_env: Option<String>,
    /// Upstream request timeout.
    pub timeout_ms: u64,
    /// Label for `X-Signet-Upstream` (defaults to the URL's host).
    pub label: Option<String>,
}

/// `[audit]`.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Log path (none: flags or `--dev` must supply one).
    pub path: Option<PathBuf>,
    /// Signing key id.
    pub key_id: String,
    /// Name of the env var holding the hex secret.
    pub hmac_secret_env: String,
    /// fsync policy.
    pub fsync: Fsync,
    /// Keyring of retired keys.
    pub keyring: Option<PathBuf>,
}

/// `[receipts]`.
#[derive(Debug, Clone)]
pub struct Receipts {
    /// Algorithm.
    pub alg: ReceiptAlg,
    /// Ed25519 private key file.
    pub private_key_path: Option<PathBuf>,
}

/// `[state]`.
#[derive(Debug, Clone)]
pub struct State {
    /// Backend.
    pub backend: StateBackend,
    /// Redis URL.
    pub url: String,
    /// Longest wait for one Redis operation, connecting included (250); a
    /// slower answer fails the check closed with `state_unavailable`.
    pub timeout_ms: u64,
    /// Prefix of every Redis key (`signet:`).
    pub key_prefix: String,
}

/// One `[[checks]]` entry.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// Kind.
    pub kind: String,
    /// Instance name.
    pub name: String,
    /// Mode.
    pub mode: CheckMode,
    /// Priority override (else the kind's default).
    pub priority: Option<i32>,
    /// Error policy.
    pub on_error: ErrorPolicy,
    /// Per-hook timeout.
    pub timeout_ms: u64,
    /// `[checks.config]` as JSON (`{}` when absent).
    pub config: serde_json::Value,
    /// Position in the file (0-based).
    pub order: usize,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (none: the built-in default).
    pub source: Option<PathBuf>,
    /// `[server]`.
    pub server: Server,
    /// `[upstream]`.
    pub upstream: Upstream,
    /// `[audit]`.
    pub audit: Audit,
    /// `[receipts]`.
    pub receipts: Receipts,
    /// `[plugins] dir`, resolved against the config file's directory.
    pub plugins_dir: PathBuf,
    /// `[state]`.
    pub state: State,
    /// `[admin]`: the approvals admin API, UI and approval timings.
    pub admin: Admin,
    /// The pipeline, in file order.
    pub checks: Vec<CheckSpec>,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Name of the env var holding the admin bearer token; the admin API and
    /// `/signet/ui` are off when unset.
    pub token_env: Option<String>,
    /// POSTed a JSON notice when an approval is created (optional).
    pub webhook_url: Option<String>,
    /// Timeout of one webhook call.
    pub webhook_timeout_ms: u64,
    /// A pending approval nobody decided expires after this (3600).
    pub pending_ttl_s: u64,
    /// Default approval-token lifetime (900).
    pub token_ttl_s: u64,
    /// Longest approval-token lifetime an approver may ask for (86400).
    pub max_token_ttl_s: u64,
    /// Approvals retained by the state backend (10000).
    pub max_approvals: usize,
    /// How often expired approvals are swept and recorded (1000).
    pub sweep_interval_ms: u64,
}

/// Loading or validating the config failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown / mistyped keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// Values that parse but make no sense; every problem listed.
    #[error("{path}: {}", problems.join("; "))]
    Invalid {
        /// The file.
        path: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

/// What is wrong with `[state]` (the URL is checked only for the Redis backend).
fn state_problems(state: &raw::RawState) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(t) = state.timeout_ms {
        if !(1..=60_000).contains(&t) {
            problems.push(format!(
                "[state] timeout_ms must be between 1 and 60000, got {t} (fix: timeout_ms = 250; keep it well under the checks' timeout_ms)"
            ));
        }
    }
    if let Some(p) = &state.key_prefix {
        if p.is_empty() || p.len() > 64 || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems.push(format!(
                "[state] key_prefix {p:?} must be 1 to 64 characters without spaces (fix: key_prefix = \"signet:\")"
            ));
        }
    }
    if state.backend == Some(StateBackend::Redis) {
        if let Some(url) = &state.url {
            if url.starts_with("rediss://") {
                problems.push(format!(
                    "[state] url {url:?}: TLS (rediss://) is not supported by this build (fix: reach Redis over loopback or a private network with redis://, or through a TLS tunnel)"
                ));
            } else if !["redis://", "redis+unix://", "unix://"]
                .iter()
                .any(|s| url.starts_with(s))
            {
                problems.push(format!(
                    "[state] url {url:?} must start with redis:// or redis+unix:// (fix: url = \"redis://127.0.0.1:6379\")"
                ));
            }
        }
    }
    problems
}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &path.display().to_string(), &base).map(|mut c| {
        c.source = Some(path.to_path_buf());
        c
    })
}

/// The secure default configuration (no file).
pub fn default_config() -> Result<Config, ConfigError> {
    parse(DEFAULT_CONFIG_TOML, "<built-in default>", Path::new("."))
}

/// Parse and validate config text; relative paths resolve against `base`.
pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
    let mut raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: origin.to_string(),
        message: e.to_string(),
    })?;
    let mut problems = Vec::new();
    let server = raw.server.unwrap_or_default();
    let upstream = raw.upstream.unwrap_or_default();
    let audit = raw.audit.unwrap_or_default();
    let receipts = raw.receipts.unwrap_or_default();
    let state = raw.state.unwrap_or_default();
    let resolve = |p: &str| {
        if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        }
    };

    if let Some(url) = &upstream.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(format!(
                "[upstream] url {url:?} must start with http:// or https://"
            ));
        }
    }
    if server.max_request_body_bytes == Some(0) {
        problems.push("[server] max_request_body_bytes must be greater than 0".into());
    }
    problems.extend(state_problems(&state));
    let receipts_alg = receipts.alg.unwrap_or_default();
    if receipts_alg == ReceiptAlg::Ed25519 && receipts.private_key_path.is_none() {
        problems.push(
            "[receipts] alg = \"ed25519\" needs private_key_path (create one with `signet keys generate`)".into(),
        );
    }
    let mut names = std::collections::HashSet::new();
    let mut checks = Vec::new();
    for (order, c) in raw.checks.into_iter().enumerate() {
        let name = c.name.unwrap_or_else(|| c.kind.clone());
        if c.kind.trim().is_empty() {
            problems.push(format!("[[checks]] #{}: kind must not be empty", order + 1));
        }
        if !names.insert(name.clone()) {
            problems.push(format!(
                "[[checks]] #{}: instance name {name:?} is used twice; give one of them a distinct `name`",
                order + 1
            ));
        }
        if c.timeout_ms == Some(0) {
            problems.push(format!(
                "[[checks]] {name}: timeout_ms must be greater than 0"
            ));
        }
        let config = match c.config {
            Some(t) => match serde_json::to_value(&t) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!(
                        "[[checks]] {name}: config cannot be represented as JSON: {e}"
                    ));
                    serde_json::Value::Null
                }
            },
            None => serde_json::json!({}),
        };
        checks.push(CheckSpec {
            kind: c.kind,
            name,
            mode: c.mode.unwrap_or(CheckMode::Enforce),
            priority: c.priority,
            on_error: c.on_error.unwrap_or(ErrorPolicy::Fail),
            timeout_ms: c.timeout_ms.unwrap_or(1000),
            config,
            order,
        });
    }
    let admin = admin_settings(raw.admin.take().unwrap_or_default(), &mut problems);
    if state.backend == Some(StateBackend::Redis) && state.url.is_none() {
        // The default URL is used; nothing to report.
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: origin.to_string(),
            problems,
        });
    }
    Ok(Config {
        source: None,
        server: Server {
            host: server.host.unwrap_or_else(|| "127.0.0.1".into()),
            port: server.port.unwrap_or(8443),
            strict_errors: server.strict_errors.unwrap_or(false),
            shadow: server.shadow.unwrap_or(false),
            max_request_body_bytes: server.max_request_body_bytes.unwrap_or(4 * 1024 * 1024),
            log_format: server.log_format.unwrap_or_default(),
            shutdown_grace_ms: server.shutdown_grace_ms.unwrap_or(10_000),
        },
        upstream: Upstream {
            url: upstream.url,
            api_key_env: upstream.api_key_env,
            timeout_ms: upstream.timeout_ms.unwrap_or(60_000),
            label: upstream.label,
        },
        audit: Audit {
            path: audit.path.as_deref().map(resolve),
            key_id: audit.key_id.unwrap_or_else(|| "k1".into()),
            hmac_secret_env: audit
                .hmac_secret_env
                .unwrap_or_else(|| "SIGNET_HMAC_SECRET".into()),
            fsync: audit.fsync.unwrap_or_default(),
            keyring: audit.keyring.as_deref().map(resolve),
        },
        receipts: Receipts {
            alg: receipts_alg,
            private_key_path: receipts.private_key_path.as_deref().map(resolve),
        },
        plugins_dir: resolve(
            raw.plugins
                .and_then(|p| p.dir)
                .as_deref()
                .unwrap_or("plugins"),
        ),
        state: State {
            backend: state.backend.unwrap_or_default(),
            url: state.url.unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            timeout_ms: state.timeout_ms.unwrap_or(250),
            key_prefix: state.key_prefix.unwrap_or_else(|| "signet:".into()),
        },
        admin,
        checks,
    })
}

fn admin_settings(a: raw::RawAdmin, problems: &mut Vec<String>) -> Admin {
    let admin = Admin {
        token_env: a.token_env,
        webhook_url: a.webhook_url,
        webhook_timeout_ms: a.webhook_timeout_ms.unwrap_or(2000),
        pending_ttl_s: a.pending_ttl_s.unwrap_or(3600),
        token_ttl_s: a.token_ttl_s.unwrap_or(900),
        max_token_ttl_s: a.max_token_ttl_s.unwrap_or(86_400),
        max_approvals: a.max_approvals.unwrap_or(10_000),
        sweep_interval_ms: a.sweep_interval_ms.unwrap_or(1000),
    };
    if let Some(env) = &admin.token_env {
        let ok = !env.is_empty()
            && env
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            problems.push(format!(
                "[admin] token_env must name an environment variable (e.g. \"SIGNET_ADMIN_TOKEN\"), not {env:?}; put the token itself in that variable"
            ));
        }
    }
    if let Some(u) = &admin.webhook_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            problems.push(format!(
                "[admin] webhook_url must be an http:// or https:// URL, got {u:?}"
            ));
        }
    }
    for (key, v) in [
        ("pending_ttl_s", admin.pending_ttl_s),
        ("token_ttl_s", admin.token_ttl_s),
        ("max_token_ttl_s", admin.max_token_ttl_s),
        ("webhook_timeout_ms", admin.webhook_timeout_ms),
        ("sweep_interval_ms", admin.sweep_interval_ms),
    ] {
        if v == 0 {
            problems.push(format!("[admin] {key} must be greater than 0"));
        }
    }
    if admin.token_ttl_s > admin.max_token_ttl_s {
        problems.push(format!(
            "[admin] token_ttl_s ({}) is longer than max_token_ttl_s ({}); lower it or raise the max",
            admin.token_ttl_s, admin.max_token_ttl_s
        ));
    }
    if admin.max_approvals == 0 {
        problems.push("[admin] max_approvals must be greater than 0".into());
    }
    admin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_and_has_a_pipeline() {
        let c = default_config().unwrap();
        assert!(c.checks.iter().any(|c| c.kind == "owner_resolution"));
        assert_eq!(c.server.port, 8443);
        assert_eq!(c.audit.fsync, Fsync::Batch);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let e = parse("[server]\nhots = \"x\"\n", "t.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("hots"), "{e}");
        let e = parse(
            "[[checks]]\nkind = \"a\"\nmdoe = \"audit\"\n",
            "t.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mdoe"), "{e}");
        let e = parse(
            "[[checks]]\nkind = \"a\"\nmode = \"loud\"\n",
            "t.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("loud") && e.contains("enforce"), "{e}");
    }

    #[test]
    fn every_problem_is_listed() {
        let text =
            "[upstream]\nurl = \"ftp://x\"\n[[checks]]\nkind = \"a\"\ntimeout_ms = 0\n[[checks]]\nkind = \"a\"\n";
        match parse(text, "t.toml", Path::new("/etc/signet")).unwrap_err() {
            ConfigError::Invalid { problems, .. } => assert_eq!(problems.len(), 3, "{problems:?}"),
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn state_settings_have_defaults_and_are_validated() {
        let c = parse("[state]\nbackend = \"redis\"\n", "t.toml", Path::new(".")).unwrap();
        assert_eq!(c.state.backend, StateBackend::Redis);
        assert_eq!(c.state.url, "redis://127.0.0.1:6379");
        assert_eq!(c.state.timeout_ms, 250);
        assert_eq!(c.state.key_prefix, "signet:");
        let text = "[state]\nbackend = \"redis\"\nurl = \"rediss://x:6380\"\ntimeout_ms = 0\nkey_prefix = \"a b\"\n";
        match parse(text, "t.toml", Path::new(".")).unwrap_err() {
            ConfigError::Invalid { problems, .. } => {
                assert_eq!(problems.len(), 3, "{problems:?}");
                assert!(problems.iter().any(|p| p.contains("TLS")), "{problems:?}");
                assert!(problems.iter().all(|p| p.contains("fix:")), "{problems:?}");
            }
            e => panic!("unexpected {e}"),
        }
        let e = parse(
            "[state]\nbackend = \"redis\"\nurl = \"http://x\"\n",
            "t.toml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("redis://"), "{e}");
        let e = parse("[state]\ntimeout = 5\n", "t.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("timeout"), "{e}");
    }

    #[test]
    fn check_config_becomes_json_and_paths_resolve() {
        let text = "[plugins]\ndir = \"p\"\n[[checks]]\nkind = \"rate_limit\"\nname = \"rl\"\n[checks.config]\ncapacity = 5\nrefill_per_second = 0.5\n";
        let c = parse(text, "t.toml", Path::new("/etc/signet")).unwrap();
        assert_eq!(c.plugins_dir, PathBuf::from("/etc/signet/p"));
        assert_eq!(c.checks[0].name, "rl");
        assert_eq!(
            c.checks[0].config,
            serde_json::json!({"capacity": 5, "refill_per_second": 0.5})
        );
    }
}
