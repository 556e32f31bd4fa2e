//! Where scans run. Small inputs (the ordinary request) go to tokio's
//! blocking pool. Large inputs — where decode bombs live — go to a small
//! dedicated pool whose threads run only when nothing else wants the CPU
//! (`SCHED_IDLE` on Linux; nice 19 where that is refused), so however many
//! hostile requests are being scanned, ordinary requests' scans and the
//! gate's reactor threads always run first. Work is still bounded by the
//! scanner's budgets; the check's timeout bounds the wait.
//!
//! Why `SCHED_IDLE` and not only nice 19: a nice-19 thread still holds its CPU
//! until the scheduler's next tick or slice end when a normal thread wakes,
//! and wake-up placement counts its CPU as busy. A `SCHED_IDLE` thread is
//! preempted at once by any normal thread, and its CPU counts as idle. With
//! the gate on one CPU and two decode bombs in flight, `signet bench
//! injection` measured an ordinary p99 ratio of 1.05–1.49× at nice 19 and
//! 0.85–1.01× under `SCHED_IDLE` (see the README). The price is paid by large
//! legitimate inputs when the gate's CPU is busy: they wait longer (up to ~1 s
//! against ~0.5 s at nice 19 in the README's run), and a CPU busy for longer
//! than the check's timeout turns that wait into a refusal (fail closed).
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

/// Put the calling thread in the idle scheduling class, or at nice 19 where
/// that is refused. Returns which one took effect.
fn lower_priority() -> Priority {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        if thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            ThreadPriority::Min,
            idle,
        )
        .is_ok()
        {
            return Priority::Idle;
        }
        // Per-thread on Linux: setpriority(PRIO_PROCESS, tid) affects only this thread.
        if rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19).is_ok() {
            return Priority::Nice19;
        }
    }
    Priority::Unchanged
}

/// The CPU priority a lane thread ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priority {
    Idle,
    Nice19,
    Unchanged,
}

impl Priority {
    fn describe(self) -> &'static str {
        match self {
            Priority::Idle => "SCHED_IDLE",
            Priority::Nice19 => "running at nice 19 instead",
            Priority::Unchanged => "its priority is unchanged",
        }
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
                    let got = lower_priority();
                    if cfg!(target_os = "linux") && got != Priority::Idle {
                        eprintln!(
                            "signet: scan lane thread {i} could not enter SCHED_IDLE ({}); \
                             large inputs' scans may delay ordinary requests more",
                            got.describe()
                        );
                    }
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};

    fn policy() -> Option<ThreadSchedulePolicy> {
        thread_priority::thread_schedule_policy().ok()
    }

    #[tokio::test]
    async fn large_inputs_are_scanned_in_the_idle_class_small_ones_are_not() {
        let heavy = run(HEAVY_BYTES + 1, policy).await.unwrap();
        assert_eq!(
            heavy,
            Some(ThreadSchedulePolicy::Normal(
                NormalThreadSchedulePolicy::Idle
            ))
        );
        let light = run(HEAVY_BYTES, policy).await.unwrap();
        assert_eq!(
            light,
            Some(ThreadSchedulePolicy::Normal(
                NormalThreadSchedulePolicy::Other
            ))
        );
    }
}
