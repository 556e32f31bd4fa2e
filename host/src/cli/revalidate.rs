//! The HTTP revalidator `continuing_consent` asks whether an owner may still
//! receive output; built on the upstream module's client (the only place
//! that speaks HTTP outward) and installed at startup.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::checks::{RevalidateCall, RevalidateFuture, Revalidator};
use crate::upstream::Upstream;

/// Revalidation over HTTP, one pooled client per origin.
#[derive(Default)]
pub struct HttpRevalidator {
    clients: Mutex<HashMap<String, Upstream>>,
}

fn split(url: &str) -> Option<(&str, &str)> {
    let scheme_end = url.find("://")? + 3;
    match url[scheme_end..].find('/') {
        Some(i) => Some((&url[..scheme_end + i], &url[scheme_end + i..])),
        None => Some((url, "/")),
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl HttpRevalidator {
    fn client(&self, origin: &str) -> Result<Upstream, String> {
        let mut map = self
            .clients
            .lock()
            .map_err(|_| "revalidator client map poisoned".to_string())?;
        if let Some(c) = map.get(origin) {
            return Ok(c.clone());
        }
        let c = Upstream::new(origin, origin, None, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        map.insert(origin.to_string(), c.clone());
        Ok(c)
    }
}

impl Revalidator for HttpRevalidator {
    fn revalidate<'a>(&'a self, call: RevalidateCall<'a>) -> RevalidateFuture<'a> {
        Box::pin(async move {
            let (origin, path) = split(call.url)
                .ok_or_else(|| format!("revalidate_url {:?} is not a URL", call.url))?;
            let client = self.client(origin)?;
            let owner = call.owner.qualified();
            let resp = if call.method == "GET" {
                let sep = if path.contains('?') { '&' } else { '?' };
                client.send("GET", &format!("{path}{sep}owner={}", percent(&owner)), &[], None).await
            } else {
                let body = serde_json::json!({"owner": owner, "owner_type": call.owner.kind.as_str(),
                    "owner_id": call.owner.id, "correlation_id": call.correlation_id});
                client.send("POST", path, &[], Some(bytes::Bytes::from(body.to_string()))).await
            }
            .map_err(|e| e.to_string())?;
            let status = resp.status;
            let body = resp.bytes().await.map_err(|e| e.to_string())?;
            if !(200..300).contains(&status) {
                return Err(format!("revalidation answered HTTP {status}"));
            }
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|_| "revalidation answer is not JSON".to_string())?;
            match v.get("valid").and_then(serde_json::Value::as_bool) {
                Some(valid) => Ok(valid),
                None => Err("revalidation answer has no boolean \"valid\"".into()),
            }
        })
    }
}

/// Install the HTTP revalidator for this process.
pub fn install() {
    crate::checks::install_revalidator(Arc::new(HttpRevalidator::default()));
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_and_encodes() {
        assert_eq!(
            super::split("http://h:1/a/b?x=1"),
            Some(("http://h:1", "/a/b?x=1"))
        );
        assert_eq!(super::split("https://h"), Some(("https://h", "/")));
        assert_eq!(super::percent("human:a b/é"), "human%3Aa%20b%2F%C3%A9");
    }
}
