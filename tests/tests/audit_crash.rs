//! Crash safety of the audit log: `kill -9` the gate under concurrent load,
//! restart it on the same log; the chain continues and verifies, and every
//! response that carried a receipt has its entry in the log (a receipt is
//! released only after its entry is durable, `fsync = "batch"`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use signet_e2e::post_raw;
use signet_e2e::proc::{demo_upstream, Gate};

#[test]
fn kill_9_under_load_loses_no_receipted_entry_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo_upstream(dir.path());
    let config = "[audit]\nfsync = \"batch\"\n\n[[checks]]\nkind = \"owner_resolution\"\n";
    let mut gate = Gate::start(config, &demo.url, &[]);
    let url = format!("{}/v1/chat/completions", gate.url());
    let receipted = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (url, receipted, stop) = (url.clone(), receipted.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 2_000 {
                    n += 1;
                    // Alternate allowed and refused requests: both carry receipts.
                    let owner: &[(&str, &str)] = if n % 2 == 0 { &[("x-commit-owner", "human:load")] } else { &[] };
                    let body = json!({"messages": [{"role": "user", "content": format!("client {i} request {n}")}]});
                    let r = std::panic::catch_unwind(|| post_raw(&url, owner, body.to_string().as_bytes()));
                    let Ok(r) = r else { break };
                    if r.header("x-signet-receipt").is_some() {
                        let id = r.header("x-signet-correlation-id").unwrap().to_string();
                        receipted.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    // Let load build up, then kill without any chance to flush.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while receipted.lock().unwrap().len() < 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    gate.kill9();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let receipted = receipted.lock().unwrap().clone();
    assert!(
        receipted.len() >= 200,
        "load did not build up: {} receipts",
        receipted.len()
    );

    // Restart on the same log: recovery continues the chain.
    gate.restart();
    let after = post_raw(
        &format!("{}/v1/chat/completions", gate.url()),
        &[("x-commit-owner", "human:after")],
        b"{\"messages\":[]}",
    );
    assert_eq!(after.status, 200, "{}", after.body);
    let Gate {
        svc, dir: gate_dir, ..
    } = gate;
    assert_eq!(svc.terminate(), Some(0));

    let text = std::fs::read_to_string(gate_dir.path().join("audit.jsonl")).unwrap();
    let ids: HashSet<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["entry_id"].as_str().unwrap_or_default().to_string())
        .collect();
    let missing: Vec<&String> = receipted.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} receipted entries missing after kill -9, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    let log = gate_dir.path().join("audit.jsonl");
    let out = signet_e2e::signet(
        &[
            "audit",
            "verify",
            log.to_str().unwrap(),
            "--hmac-secret",
            signet_e2e::proc::SECRET_HEX,
            "--json",
        ],
        gate_dir.path(),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "chain must verify after crash + restart: {report}"
    );
    assert!(report["total_entries"].as_u64().unwrap() as usize > receipted.len());
}
