//! `signet serve`: run the gate. Flags override `SIGNET_*` env vars, which
//! override the config file. `--dev` = ephemeral key + `audit.jsonl` + verbose
//! errors + the built-in demo upstream when no upstream is given.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::builder::BoolishValueParser;

use super::assemble::{
    build_pipeline, load_config, load_registry, origin, redis_backend, show_dir,
};
use super::ConfigArg;
use crate::audit::{
    self, AuditWriter, FsyncPolicy, HmacKey, Keyring, ReceiptSigner, SecretSources, WriterConfig,
};
use crate::checks::Request;
use crate::config::{Fsync, LogFormat, ReceiptAlg};
use crate::pipeline::{AuditLog, Decided, DecisionSink, Row, WriterLog};
use crate::server::{self, AppState, Inflight, Metrics};
use crate::upstream::Upstream;

/// `signet serve` flags (each also settable as `SIGNET_<FLAG>`).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// Model server base URL, e.g. https://api.openai.com (default: [upstream] url; with --dev, the built-in demo).
    #[arg(long, env = "SIGNET_UPSTREAM")]
    upstream: Option<String>,
    /// Address to bind [default: 127.0.0.1].
    #[arg(long, env = "SIGNET_HOST")]
    host: Option<String>,
    /// Port to bind; 0 picks a free one [default: 8443].
    #[arg(long, env = "SIGNET_PORT")]
    port: Option<u16>,
    /// Audit log path (JSONL, HMAC-chained) [default: [audit] path; with --dev, audit.jsonl].
    #[arg(long, env = "SIGNET_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Audit HMAC secret, hex, at least 32 bytes [default: env named by [audit] hmac_secret_env, SIGNET_HMAC_SECRET].
    #[arg(long, env = "SIGNET_HMAC_SECRET", hide_env_values = true)]
    hmac_secret: Option<String>,
    /// Audit key id [default: k1].
    #[arg(long, env = "SIGNET_KEY_ID")]
    key_id: Option<String>,
    /// Allow a random throwaway audit key when none is configured (logs then verify only with the printed key).
    #[arg(long, env = "SIGNET_ALLOW_EPHEMERAL_KEY", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    allow_ephemeral_key: Option<bool>,
    /// Every check in audit mode: record would-be decisions, refuse nothing.
    #[arg(long, env = "SIGNET_SHADOW", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    shadow: Option<bool>,
    /// Hide reasons and check names from refused clients.
    #[arg(long, env = "SIGNET_STRICT_ERRORS", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    strict_errors: Option<bool>,
    /// Log format.
    #[arg(long, env = "SIGNET_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Development mode: ephemeral key, audit.jsonl, the demo upstream when no upstream is given.
    #[arg(long, env = "SIGNET_DEV", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    dev: Option<bool>,
    /// Instance id of this replica: `_instance` in its audit entries and `{instance}` in the audit path [default: the host name].
    #[arg(long, env = "SIGNET_INSTANCE")]
    instance: Option<String>,
}

/// Background (fire-and-forget) decisions go to the audit log too.
struct AuditSink(Arc<dyn AuditLog>);

impl DecisionSink for AuditSink {
    fn record(&self, req: &Request, d: Decided) {
        let row = Row::from_decided(self.0.new_id(), req, &d);
        drop(self.0.append(row, false));
    }
}

fn fsync(f: Fsync) -> FsyncPolicy {
    match f {
        Fsync::Always => FsyncPolicy::Always,
        Fsync::Batch => FsyncPolicy::Batch,
        Fsync::Never => FsyncPolicy::Never,
    }
}

/// A replica's instance id: letters, digits, `_`, `.`, `-` (it becomes part of a file name).
fn instance_id(raw: &str) -> anyhow::Result<String> {
    let id = raw.trim();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        || id.starts_with('.')
    {
        bail!("--instance {raw:?}: use 1 to 64 letters, digits, '_', '.' or '-' (not starting with '.'), e.g. --instance gw-2");
    }
    Ok(id.to_string())
}

/// The audit key, and whether it is a throwaway one made for this run.
fn audit_key(a: &Args, cfg: &crate::config::Config, dev: bool) -> anyhow::Result<(HmacKey, bool)> {
    let key_id = a.key_id.clone().unwrap_or_else(|| cfg.audit.key_id.clone());
    let sources = SecretSources {
        flag: a.hmac_secret.as_deref(),
        env_var: Some(&cfg.audit.hmac_secret_env),
        file: None,
    };
    match audit::load_key(&key_id, &sources, true) {
        Ok(k) => Ok((k, false)),
        Err(audit::KeyError::Missing { env }) if a.allow_ephemeral_key.unwrap_or(false) || dev => {
            let k = HmacKey::ephemeral(&key_id).context("generating an ephemeral audit key")?;
            eprintln!("WARNING: no audit HMAC secret configured; using an EPHEMERAL key for this run only.");
            eprintln!("         key id {key_id}, secret {} (printed once; keep it to verify this log)", k.secret_hex());
            eprintln!("         set {env} (hex, >= 32 bytes) or --hmac-secret for a durable key.");
            Ok((k, true))
        }
        Err(e) => Err(anyhow::anyhow!(
            "{e}\nfix: export {}=$(openssl rand -hex 32), or pass --hmac-secret HEX, or run with --allow-ephemeral-key / --dev",
            cfg.audit.hmac_secret_env
        )),
    }
}

pub(super) fn run(a: Args) -> anyhow::Result<u8> {
    let mut cfg = load_config(&a.config)?;
    let dev = a.dev.unwrap_or(false);
    if let Some(v) = a.shadow {
        cfg.server.shadow = v;
    }
    // --dev means verbose errors unless strict errors are asked for explicitly.
    cfg.server.strict_errors = a.strict_errors.unwrap_or(cfg.server.strict_errors && !dev);
    let host = a.host.clone().unwrap_or_else(|| cfg.server.host.clone());
    let port = a.port.unwrap_or(cfg.server.port);
    // --dev is --audit-log audit.jsonl (an explicit --audit-log still wins).
    let dev_default = dev.then(|| PathBuf::from("audit.jsonl"));
    let audit_path = match a.audit_log.clone().or(dev_default).or_else(|| cfg.audit.path.clone()) {
        Some(p) => p,
        None => bail!("no audit log path: set [audit] path in the config, pass --audit-log PATH, or use --dev"),
    };
    let (key, ephemeral) = audit_key(&a, &cfg, dev)?;
    let mut keyring = Keyring::new(key.clone());
    if let Some(kr) = &cfg.audit.keyring {
        let retired = Keyring::load_file(kr)?;
        keyring = keyring.with_retired(retired, &kr.display().to_string())?;
    }
    let instance = match &a.instance {
        Some(i) => instance_id(i)?,
        None => audit::default_instance(),
    };
    let path = audit::expand_instance(&audit_path, &instance);
    if ephemeral && dev {
        move_aside_previous_dev_log(&path)?;
    }
    let mut wc = WriterConfig::new(path.clone(), keyring, instance);
    wc.fsync = fsync(cfg.audit.fsync);
    let (writer, warnings) = AuditWriter::open(wc)
        .with_context(|| format!("opening the audit log {}", path.display()))?;
    for w in warnings {
        eprintln!("audit: {w}");
    }
    let alg = match cfg.receipts.alg {
        ReceiptAlg::HmacSha256 => audit::ReceiptAlg::HmacSha256,
        ReceiptAlg::Ed25519 => audit::ReceiptAlg::Ed25519,
    };
    let signer = ReceiptSigner::from_config(alg, &key, cfg.receipts.private_key_path.as_deref())?;
    let log = Arc::new(WriterLog::new(writer, signer));
    let audit_log: Arc<dyn AuditLog> = log.clone();

    // Installed before any check is built: checks take the shared backend then.
    let redis = redis_backend(&cfg)?;
    if let Some(r) = &redis {
        crate::state::install_shared(r.clone());
    }
    super::revalidate::install();
    let (registry, libraries) = load_registry(&cfg.plugins_dir)?;
    let metrics = Arc::new(Metrics::default());
    let pipeline = match build_pipeline(
        &cfg,
        &registry,
        &libraries,
        Arc::new(AuditSink(audit_log.clone())),
    ) {
        Ok(p) => Arc::new(
            p.with_observer(metrics.clone())
                .with_approvals(approvals_service(&cfg, &key)?),
        ),
        Err(problems) => bail!(
            "config {} has problems:\n  - {}",
            origin(&cfg),
            problems.join("\n  - ")
        ),
    };

    let admin = admin_token(&cfg)?.map(server::admin::Admin::new);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(async move {
        let upstream_url = a.upstream.clone().or_else(|| cfg.upstream.url.clone());
        let (url, label, _demo) = match upstream_url {
            Some(u) => {
                let label = cfg.upstream.label.clone().unwrap_or_else(|| u.clone());
                (u, label, None)
            }
            None if dev => {
                let (u, handle) = server::demo::start(0).await?;
                (u, server::demo::LABEL.to_string(), Some(handle))
            }
            None => bail!(
                "no upstream: set [upstream] url, pass --upstream URL, or use --dev for the built-in demo upstream"
            ),
        };
        let api_key = match &cfg.upstream.api_key_env {
            Some(var) => Some(
                std::env::var(var).with_context(|| format!("[upstream] api_key_env names {var}, which is not set"))?,
            ),
            None => None,
        };
        let upstream = Upstream::new(&url, &label, api_key, Duration::from_millis(cfg.upstream.timeout_ms))?;
        let listener = server::bind_nodelay(&host, port)
            .await
            .with_context(|| format!("cannot listen on {host}:{port}"))?;
        let addr = listener.local_addr()?;
        println!("signet {} gate", env!("CARGO_PKG_VERSION"));
        println!("  config:   {}", origin(&cfg));
        println!("  upstream: {url}  [{label}]");
        println!(
            "  audit:    {} (fsync {:?}, key {})",
            path.display(),
            cfg.audit.fsync,
            key.id()
        );
        match &redis {
            Some(r) => {
                println!(
                    "  state:    redis {} (prefix {:?}, timeout {} ms, shared by replicas)",
                    r.shown_url(),
                    cfg.state.key_prefix,
                    cfg.state.timeout_ms
                );
                if let Err(e) = r.ping().await {
                    eprintln!("WARNING: the Redis state backend is not answering: {e}");
                    eprintln!("         starting anyway: checks that need shared state refuse requests with 503 state_unavailable until Redis answers (no restart needed).");
                }
            }
            None => println!("  state:    memory (this process only)"),
        }
        let loaded: Vec<String> = libraries
            .iter()
            .filter(|l| l.status == crate::plugins::Status::Loaded)
            .map(|l| {
                format!(
                    "{} {}",
                    l.library.as_deref().unwrap_or("?"),
                    l.version.as_deref().unwrap_or("?")
                )
            })
            .collect();
        println!(
            "  plugins:  {} [{}]",
            show_dir(&cfg.plugins_dir).display(),
            loaded.join(", ")
        );
        for l in libraries.iter().filter(|l| l.status != crate::plugins::Status::Loaded) {
            println!(
                "    not loaded: {}: {}",
                l.path.display(),
                l.error.as_deref().unwrap_or("?")
            );
        }
        if cfg.server.shadow {
            println!("  SHADOW MODE: every check records would-be decisions and refuses nothing");
        }
        println!("  pipeline:");
        for (i, c) in pipeline.checks().iter().enumerate() {
            println!(
                "    {:>2}. {:<11} {:<24} {:<16} prio {}",
                i + 1,
                c.stage.as_str(),
                c.name,
                c.mode.as_str(),
                c.priority
            );
        }
        match &cfg.admin.token_env {
            Some(env) => println!("  admin:    /signet/approvals and /signet/ui (bearer token from ${env})"),
            None => println!("  admin:    off (set [admin] token_env to approve escalations)"),
        }
        let shutdown = shutdown_signal();
        println!("listening on http://{addr}");
        let state = Arc::new(AppState {
            pipeline,
            upstream,
            audit: audit_log,
            metrics,
            strict_errors: cfg.server.strict_errors,
            max_body: usize::try_from(cfg.server.max_request_body_bytes).unwrap_or(usize::MAX),
            inflight: Inflight::default(),
            log: server::RequestLog::stdout(a.log_format.unwrap_or(cfg.server.log_format)),
            admin,
        });
        server::admin::spawn_sweeper(
            state.clone(),
            Duration::from_millis(cfg.admin.sweep_interval_ms),
        );
        let grace = Duration::from_millis(cfg.server.shutdown_grace_ms);
        server::serve(state, listener, shutdown, grace).await?;
        println!("signet: shutting down; flushing the audit log");
        log.writer().close().await.context("closing the audit log")?;
        Ok::<u8, anyhow::Error>(0)
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

/// The admin bearer token from the env var `[admin] token_env` names.
fn admin_token(cfg: &crate::config::Config) -> anyhow::Result<Option<String>> {
    let Some(env) = &cfg.admin.token_env else {
        return Ok(None);
    };
    let token = std::env::var(env).unwrap_or_default();
    let token = token.trim();
    if token.is_empty() {
        bail!(
            "[admin] token_env names {env}, which is not set; export {env}=$(openssl rand -hex 32), or remove token_env to keep the admin API off"
        );
    }
    if token.len() < 16 {
        bail!("the admin token in {env} is {} characters; use at least 16 (e.g. openssl rand -hex 32)", token.len());
    }
    Ok(Some(token.to_string()))
}

/// The approvals service: records in the shared state backend when one is
/// installed (replicas), else in this process; tokens keyed from the audit secret.
fn approvals_service(
    cfg: &crate::config::Config,
    key: &audit::HmacKey,
) -> anyhow::Result<Arc<crate::approvals::Approvals>> {
    use crate::approvals::{ApprovalSettings, Approvals};
    let store: Arc<dyn crate::state::StateBackend> =
        crate::state::shared().unwrap_or_else(|| Arc::new(crate::state::MemoryState::new()));
    let text = match &cfg.source {
        Some(p) => std::fs::read(p).unwrap_or_default(),
        None => crate::config::DEFAULT_CONFIG_TOML.as_bytes().to_vec(),
    };
    let digest = format!("sha256:{}", audit::entry::sha256_hex(&text));
    let settings = ApprovalSettings {
        pending_ttl: Duration::from_secs(cfg.admin.pending_ttl_s),
        default_token_ttl: Duration::from_secs(cfg.admin.token_ttl_s),
        max_token_ttl: Duration::from_secs(cfg.admin.max_token_ttl_s),
        max_records: cfg.admin.max_approvals,
    };
    let mut service = Approvals::new(
        store,
        key.derive(crate::approvals::token::KEY_LABEL),
        settings,
        digest,
    );
    if let Some(url) = &cfg.admin.webhook_url {
        let hook =
            crate::upstream::Webhook::new(url, Duration::from_millis(cfg.admin.webhook_timeout_ms))
                .map_err(|e| anyhow::anyhow!("[admin] webhook_url: {e}"))?;
        service = service.with_notifier(Arc::new(server::admin::Webhook(hook)));
    }
    Ok(Arc::new(service))
}

/// A throwaway key cannot continue a chain signed by an earlier run's
/// throwaway key: under `--dev`, move such a log (and its head) aside, never
/// delete it.
fn move_aside_previous_dev_log(path: &std::path::Path) -> anyhow::Result<()> {
    let nonempty = std::fs::metadata(path)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    if !nonempty {
        return Ok(());
    }
    let stamp = audit::now_ns();
    for p in [path.to_path_buf(), audit::head::head_path(path)] {
        if p.exists() {
            let dest = p.with_file_name(format!(
                "{}.prev-{stamp}",
                p.file_name().unwrap_or_default().to_string_lossy()
            ));
            std::fs::rename(&p, &dest).with_context(|| format!("moving {} aside", p.display()))?;
            eprintln!(
                "dev: {} was signed by an earlier run's throwaway key; moved to {}",
                p.display(),
                dest.display()
            );
        }
    }
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM received after this call: the
/// handlers are installed before it returns (so before the gate says it is
/// listening), never lazily on the future's first poll.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, Signal, SignalKind};
        async fn first(s: std::io::Result<Signal>) {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        let (int, term) = (
            first(signal(SignalKind::interrupt())),
            first(signal(SignalKind::terminate())),
        );
        async move {
            tokio::select! {
                _ = int => {},
                _ = term => {},
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
