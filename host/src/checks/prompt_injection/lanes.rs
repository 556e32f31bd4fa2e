//! Where scans run. Small inputs (the ordinary request) go to tokio's
//! blocking pool. Large inputs — where decode bombs live — go to a small
//! dedicated pool whose threads run at the lowest CPU priority (nice 19 on
//! Linux), so however many hostile requests are being scanned, ordinary
//! requests' scans and the gate's reactor threads always run first. Work is
//! still bounded by the scanner's budgets; the check's timeout bounds the wait.
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// Inputs larger than this (bytes of extracted text) go to the low-priority lane.
pub const HEAVY_BYTES: usize = 16 * 1024;

/// Worker threads in the low-priority lane.
const HEAVY_WORKERS: usize = 2;

type Job = Box<dyn FnOnce() + Send + 'static>;

struct HeavyLane {
    tx: Mutex<mpsc::Sender<Job>>,
}

fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // Per-thread on Linux: setpriority(PRIO_PROCESS, tid) affects only this thread.
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
    }
}

fn lane() -> Option<&'static HeavyLane> {
    static LANE: OnceLock<Option<HeavyLane>> = OnceLock::new();
    LANE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..HEAVY_WORKERS {
            let rx = std::sync::Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("signet-scan-low-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        (started > 0).then(|| HeavyLane { tx: Mutex::new(tx) })
    })
    .as_ref()
}

/// Run `f` off the reactor: on the low-priority lane when `input_bytes` is
/// large, else on tokio's blocking pool. `Err` when the work could not run.
pub async fn run<T: Send + 'static>(
    input_bytes: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    if input_bytes > HEAVY_BYTES {
        if let Some(lane) = lane() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let job: Job = Box::new(move || {
                let _ = tx.send(f());
            });
            let sent = lane
                .tx
                .lock()
                .map_err(|_| "scan lane poisoned".to_string())?
                .send(job);
            sent.map_err(|_| "scan lane stopped".to_string())?;
            return rx.await.map_err(|_| "scan did not complete".to_string());
        }
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("scan did not complete: {e}"))
}
