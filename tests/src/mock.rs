//! A scriptable upstream for failure cases the demo cannot produce: error
//! statuses, redirects, hangs, slow or broken streams. std only, one thread
//! per connection, loopback only.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method and path.
    pub line: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

/// What to answer.
pub enum Reply {
    /// A JSON body with a status.
    Json(u16, String),
    /// SSE events, each sent after its delay (ms); the connection then closes.
    Sse(Vec<(u64, String)>),
    /// A redirect.
    Redirect(String),
    /// Accept and never answer (for timeouts), for this many ms.
    Hang(u64),
}

/// A running mock.
pub struct Mock {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Requests received.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

impl Mock {
    /// Start a mock answering every request with `handler`.
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (h, s): (Handler, _) = (Arc::new(handler), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (h, s) = (h.clone(), s.clone());
                std::thread::spawn(move || serve(conn, h, s));
            }
        });
        Mock { url, seen }
    }
}

fn serve(mut conn: TcpStream, h: Handler, seen: Arc<Mutex<Vec<Seen>>>) {
    let Ok(clone) = conn.try_clone() else { return };
    let mut r = BufReader::new(clone);
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).is_err() || l.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    let req = Seen {
        line: line.trim().to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    seen.lock().unwrap().push(req.clone());
    let head = |status: u16, ct: &str, extra: &str| {
        format!("HTTP/1.1 {status} X\r\ncontent-type: {ct}\r\nconnection: close\r\n{extra}\r\n")
    };
    match h(&req) {
        Reply::Json(status, body) => {
            let _ = conn.write_all(
                head(
                    status,
                    "application/json",
                    &format!("content-length: {}\r\n", body.len()),
                )
                .as_bytes(),
            );
            let _ = conn.write_all(body.as_bytes());
        }
        Reply::Redirect(to) => {
            let _ = conn.write_all(
                head(
                    302,
                    "text/plain",
                    &format!("location: {to}\r\ncontent-length: 0\r\n"),
                )
                .as_bytes(),
            );
        }
        Reply::Hang(ms) => std::thread::sleep(Duration::from_millis(ms)),
        Reply::Sse(events) => {
            if conn
                .write_all(head(200, "text/event-stream", "").as_bytes())
                .is_err()
            {
                return;
            }
            for (delay, ev) in events {
                std::thread::sleep(Duration::from_millis(delay));
                if conn
                    .write_all(ev.as_bytes())
                    .and_then(|_| conn.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    let _ = conn.flush();
}

/// OpenAI stream events for these text chunks, ending with `finish`.
pub fn openai_sse(chunks: &[&str], finish: &str) -> Vec<String> {
    let mut out = Vec::new();
    let base = |delta: serde_json::Value, fin: serde_json::Value| {
        let v = serde_json::json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": "mock",
            "choices": [{"index": 0, "delta": delta, "finish_reason": fin}]});
        format!("data: {v}\n\n")
    };
    for c in chunks {
        out.push(base(
            serde_json::json!({"content": c}),
            serde_json::Value::Null,
        ));
    }
    out.push(base(serde_json::json!({}), serde_json::json!(finish)));
    out.push("data: [DONE]\n\n".into());
    out
}
