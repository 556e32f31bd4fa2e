//! Small HTTP calls that are not model traffic: the approval webhook (fire
//! and forget, bounded) and the admin client the `signet approvals` CLI uses.
use std::time::Duration;

use serde_json::Value;

fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    super::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// POSTs JSON notices to one URL in the background.
pub struct Webhook {
    client: reqwest::Client,
    url: String,
}

impl Webhook {
    /// A webhook to `url`; each call is bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        Ok(Webhook {
            client: client(timeout)?,
            url: url.to_string(),
        })
    }

    /// Send `body` without waiting (call from inside the runtime). Failures
    /// and non-2xx answers are logged to stderr.
    pub fn post(&self, body: Value) {
        let req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let url = self.url.clone();
        tokio::spawn(async move {
            match req.send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => eprintln!("signet: approval webhook {url} answered {}", r.status()),
                Err(e) => eprintln!("signet: approval webhook {url} failed: {e}"),
            }
        });
    }
}

/// One admin-API call: `method` `url` with a bearer token and an optional
/// JSON body. Answers the status and the JSON body (`null` when not JSON).
pub async fn admin_call(
    method: &str,
    url: &str,
    bearer: &str,
    body: Option<Value>,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    let c = client(timeout)?;
    let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = c.request(m, url).bearer_auth(bearer);
    if let Some(b) = body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_connect() {
            format!("cannot connect to {url}: is the gate running there? (pass --self URL)")
        } else if e.is_timeout() {
            format!("{url} did not answer within {} ms", timeout.as_millis())
        } else {
            format!("{url}: {e}")
        }
    })?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}
