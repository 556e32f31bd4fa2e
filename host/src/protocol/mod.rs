//! Wire formats: OpenAI and Anthropic request/response shapes, SSE parsing,
//! and the extraction of semantic text and tool calls that checks look at.
//! Depends on serde only.
//!
//! | file | owns |
//! |---|---|
//! | `response.rs` | unary responses: text segments, tool calls, usage, rewriting |
//! | `stream.rs` | one streamed event: text deltas, tool-call fragments, finish, usage |
//! | `sse.rs` | incremental SSE parsing and encoding |
//! | `text.rs` | semantic text of a request (messages, system prompts, tool definitions and results) and per-part rewriting |
pub mod response;
pub mod sse;
pub mod stream;
pub mod text;
