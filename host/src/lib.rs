//! signet: an OpenAI- and Anthropic-compatible LLM safety gate.
//!
//! | module | owns |
//! |---|---|
//! | [`cli`] | the `signet` command line and the wiring of everything below |
//! | [`config`] | `signet.toml`: strict raw types → validated config |
//! | [`pipeline`] | stages, modes, priorities, timeouts, fail-closed policy, per-request runs |
//! | [`checks`] | the `Check` trait, verdicts, request context, registry, built-in checks |
//! | [`plugins`] | discovery and loading of plugin libraries, the FFI adapter |
//! | [`protocol`] | OpenAI / Anthropic wire types, SSE, text and tool-call extraction |
pub mod checks;
pub mod cli;
pub mod config;
pub mod pipeline;
pub mod plugins;
pub mod protocol;
