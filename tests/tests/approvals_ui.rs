//! `/signet/ui` in a real browser: headless Debian Chromium driven over the
//! W3C WebDriver protocol (chromedriver, plain HTTP + JSON). An approver signs
//! in with the admin token, sees the held tool call with its context (an
//! attacker's markup in the arguments shown as text, never rendered), approves
//! it, reads the minted token off the page — and that token gets the call
//! through the gate once. A second approval is denied through the page.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages
//! chromium, chromium-driver): `.ci/setup-browser.sh` installs them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use signet_e2e::proc::{demo_upstream, Gate};
use signet_e2e::{post_raw, Resp};

const ADMIN_TOKEN: &str = "ui-admin-token-0123456789abcdef";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

const CONFIG: &str = r#"
[admin]
token_env = "SIGNET_ADMIN_TOKEN"

[[checks]]
kind = "owner_resolution"

[[checks]]
kind = "tool_call_inspector"
[checks.config.tools.refund]
risk_tier = "high"
irreversible = true
"#;

struct Driver {
    child: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self
            .agent
            .delete(&format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    fn start() -> Driver {
        for bin in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: run .ci/setup-browser.sh (Debian packages chromium and chromium-driver)"
            );
        }
        let port = free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = agent
                .get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|b| serde_json::from_str::<Value>(&b).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut d = Driver {
            child,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let v = d.send("POST", "/session", Some(caps));
        d.session = v["sessionId"].as_str().expect("a session").to_string();
        d
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut r = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(b.unwrap_or(json!({})).to_string()),
        }
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "{method} {path}: {text}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.send("POST", "/url", Some(json!({"url": url})));
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        self.send(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e[ELEMENT].as_str().unwrap().to_string())
        .collect()
    }

    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self.find_all(css).into_iter().next() {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on the page:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.send(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.send("POST", &format!("/element/{e}/click"), None);
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.send("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn source(&self) -> String {
        self.send("GET", "/source", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn chat(gate: &Gate, text: &str, token: Option<&str>) -> Resp {
    let body = json!({"model": "demo", "messages": [{"role": "user", "content": text}]});
    let mut headers = vec![("x-commit-owner", "human:alice")];
    if let Some(t) = token {
        headers.push(("x-signet-approval", t));
    }
    post_raw(
        &format!("{}/v1/chat/completions", gate.url()),
        &headers,
        body.to_string().as_bytes(),
    )
}

fn no_calls(b: &Value) -> bool {
    b["choices"][0]["message"]["tool_calls"]
        .as_array()
        .is_none_or(Vec::is_empty)
}

fn held(gate: &Gate, text: &str) -> String {
    let r = chat(gate, text, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert!(no_calls(&b), "{}", r.body);
    b["signet"]["refused_tool_calls"][0]["approval_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_approver_approves_and_denies_through_the_web_page() {
    let up = demo_upstream(Path::new("."));
    let gate = Gate::start_env(CONFIG, &up.url, &[], &[("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)]);
    // The model's tool arguments carry markup; the page must show it as text.
    let refund = r#"tool:refund {"order":"<img src=x id=pwned onerror=alert(1)>","amount":500}"#;
    let id = held(&gate, refund);
    let other = held(&gate, r#"tool:refund {"order":"C3","amount":7}"#);

    let d = Driver::start();
    let ui = format!("{}/signet/ui", gate.url());
    d.go(&ui);
    // Not signed in: only the sign-in form, no approvals.
    d.find("#token");
    assert!(d.find_all(".approval").is_empty());
    d.type_into("#token", "wrong-token-0000000000");
    d.click("#sign-in");
    let err = d.text("#error");
    assert!(err.contains("wrong admin token"), "{err}");
    d.type_into("#token", ADMIN_TOKEN);
    d.click("#sign-in");

    // Signed in: both held calls, with their context, markup inert.
    let card = format!("#approval-{id}");
    d.find(&card);
    assert_eq!(d.text("#pending-count"), "2");
    let shown = d.text(&format!("{card} pre.context"));
    assert!(shown.contains("<img src=x id=pwned"), "{shown}");
    assert!(
        d.find_all("#pwned").is_empty(),
        "markup from the model was rendered"
    );
    assert!(d.find_all("img").is_empty());

    // Approve one.
    d.type_into(
        &format!("{card} form[action$='/approve'] input[name=approver]"),
        "human:dana",
    );
    d.click(&format!("{card} button.approve"));
    let token = d.text("#approval-token");
    assert!(token.starts_with("sat1."), "{token}");

    // Deny the other.
    d.click("#back");
    let other_card = format!("#approval-{other}");
    d.type_into(
        &format!("{other_card} form[action$='/deny'] input[name=approver]"),
        "human:dana",
    );
    d.type_into(&format!("{other_card} input[name=reason]"), "wrong order");
    d.click(&format!("{other_card} button.deny"));
    assert!(d.text("#result").contains("denied by human:dana"));
    d.click("#back");
    assert_eq!(d.text("#pending-count"), "0");

    // The token from the page gets exactly that call through, once.
    let r = chat(&gate, refund, Some(&token));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "refund",
        "{}",
        r.body
    );
    let r = chat(&gate, refund, Some(&token));
    assert!(no_calls(&r.json()), "replay: {}", r.body);

    let rows = gate.wait_for_row(|r| r["metadata"]["event"] == "approval.denied");
    let approved = rows
        .iter()
        .find(|r| r["metadata"]["event"] == "approval.approved")
        .unwrap();
    assert_eq!(approved["approval_chain"], json!(["human:dana"]));
    assert_eq!(approved["metadata"]["approval_id"], id.as_str());
    let (code, report) = gate.verify();
    assert_eq!(code, Some(0), "{report}");
}
