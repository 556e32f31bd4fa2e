//! Incremental Server-Sent Events parsing. Bytes arrive in arbitrary pieces;
//! complete events come out with their raw bytes, so an event nobody changed
//! is forwarded byte for byte.

/// One complete SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The event's raw bytes including its terminating blank line.
    pub raw: Vec<u8>,
}

/// A parser fed with chunks of the byte stream.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    max_event_bytes: usize,
}

/// An event grew past the parser's size cap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an upstream SSE event exceeded {0} bytes")]
pub struct EventTooLarge(pub usize);

impl SseParser {
    /// A parser that refuses events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            buf: Vec::new(),
            max_event_bytes,
        }
    }

    /// Feed bytes; returns every event completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, EventTooLarge> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = find_event_end(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end).collect();
            if let Some(ev) = parse_event(raw) {
                out.push(ev);
            }
        }
        if self.buf.len() > self.max_event_bytes {
            return Err(EventTooLarge(self.max_event_bytes));
        }
        Ok(out)
    }

    /// Whatever is left when the stream ends (an unterminated final event).
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        let mut raw = std::mem::take(&mut self.buf);
        raw.extend_from_slice(b"\n\n");
        parse_event(raw)
    }
}

/// Index just past the blank line ending the first event, if complete.
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match buf.get(i + 1) {
                Some(b'\n') => return Some(i + 2),
                Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

fn parse_event(raw: Vec<u8>) -> Option<SseEvent> {
    let text = String::from_utf8_lossy(&raw);
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if event.is_none() && data.is_empty() {
        return None;
    }
    let data = data.join("\n");
    Some(SseEvent { event, data, raw })
}

/// Serialise an event (for events the gate writes or rewrites).
pub fn encode(event: Option<&str>, data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_pushes_come_out_whole() {
        let mut p = SseParser::new(1 << 20);
        let input = b"event: message_start\ndata: {\"a\":1}\n\ndata: x\r\n\r\n: comment\n\ndata: [DONE]\n\n";
        let mut got = Vec::new();
        for b in input.chunks(3) {
            got.extend(p.push(b).unwrap());
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].event.as_deref(), Some("message_start"));
        assert_eq!(got[0].data, "{\"a\":1}");
        assert_eq!(got[1].data, "x");
        assert_eq!(got[2].data, "[DONE]");
        assert_eq!(got[0].raw, b"event: message_start\ndata: {\"a\":1}\n\n");
        assert!(p.finish().is_none());
    }

    #[test]
    fn oversized_events_are_refused_and_tail_is_flushed() {
        let mut p = SseParser::new(8);
        assert!(p.push(b"data: 0123456789").is_err());
        let mut p = SseParser::new(100);
        p.push(b"data: tail").unwrap();
        assert_eq!(p.finish().unwrap().data, "tail");
        assert_eq!(
            encode(Some("error"), "a\nb"),
            b"event: error\ndata: a\ndata: b\n\n"
        );
    }
}
