//! Chain-level tests: writer + recovery + head + verifier together, including the
//! tamper matrix (each kind of tampering is detected with the right break kind).

use std::path::{Path, PathBuf};

use super::head::{head_path, read_head};
use super::keys::{HmacKey, Keyring};
use super::verify::{verify_file, verify_path, BreakKind, HeadStatus, VerifyOptions, VerifyReport};
use super::writer::{AuditWriter, FsyncPolicy, RecoveryWarning, WriterConfig, WriterError};
use super::{Decision, EntryId, NewEntry, OwnerType};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let n = EntryId::new_v4();
        let dir = std::env::temp_dir().join(format!("signet-audit-{tag}-{}", &n.as_str()[..8]));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn k1() -> HmacKey {
    HmacKey::new("k1", vec![0x11; 32]).unwrap()
}

fn ring() -> Keyring {
    Keyring::new(k1())
}

fn entry(i: usize) -> NewEntry {
    NewEntry::new(
        EntryId::new_v4(),
        "rate_limit",
        if i & 1 == 0 {
            Decision::Allow
        } else {
            Decision::Block
        },
        format!("reason {i} é"),
    )
    .owner(OwnerType::Human, "alice")
    .request_body(format!("{{\"n\":{i}}}").as_bytes())
    .meta("stage", "admission")
    .meta("latency_ms", 0.25 * i as f64)
    .meta("shadow", i % 3 < 1)
}

fn open(path: &Path, keys: Keyring, fsync: FsyncPolicy) -> (AuditWriter, Vec<RecoveryWarning>) {
    let mut cfg = WriterConfig::new(path, keys, "test");
    cfg.fsync = fsync;
    AuditWriter::open(cfg).unwrap()
}

fn write_n(path: &Path, keys: Keyring, n: usize) {
    let (w, warnings) = open(path, keys, FsyncPolicy::Batch);
    assert!(warnings.is_empty(), "{warnings:?}");
    for i in 0..n {
        w.append_blocking(entry(i)).unwrap();
    }
    w.close_blocking().unwrap();
}

fn verify(path: &Path, keys: &Keyring) -> VerifyReport {
    verify_file(path, keys, &VerifyOptions::default(), &mut |_, _| {}).unwrap()
}

fn kinds(r: &VerifyReport) -> Vec<BreakKind> {
    r.breaks.iter().map(|b| b.kind).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

#[test]
fn concurrent_async_appends_form_one_verified_chain() {
    let dir = TempDir::new("chain");
    let path = dir.path("sub/audit.jsonl");
    let (w, _) = open(&path, ring(), FsyncPolicy::Batch);
    let rt = runtime();
    let seqs = rt.block_on(async {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move { w.append(entry(i)).await.unwrap().seq })
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        w.close().await.unwrap();
        seqs
    });
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=200).collect::<Vec<u64>>());
    let stats = w.stats();
    assert_eq!(stats.appended, 200);
    // Group commit: one fsync per group (+1 at close), not one per entry.
    assert!(stats.fsyncs <= stats.groups + 1, "{stats:?}");
    let r = verify(&path, &ring());
    assert!(r.ok(), "{:?}", r.breaks);
    assert_eq!((r.total_entries, r.last_known_good_index), (200, 199));
    assert_eq!(r.head, HeadStatus::Valid { seq: 200 });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(matches!(
        w.append_blocking(entry(0)),
        Err(WriterError::Closed)
    ));
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn appends_made_in_one_scheduler_turn_reach_the_writer_as_one_group() {
    let dir = TempDir::new("turn");
    let path = dir.path("audit.jsonl");
    let (w, _) = open(&path, ring(), FsyncPolicy::Batch);
    let rt = current_thread();
    let seqs = rt.block_on(async {
        // Twenty appends started in the same turn, 2 ms apart: handed over
        // one by one, the writer thread would commit them in several groups.
        let appends = (0..20).map(|i| {
            let w = w.clone();
            async move {
                std::thread::sleep(std::time::Duration::from_millis(2));
                w.append(entry(i)).await.unwrap().seq
            }
        });
        futures_util::future::join_all(appends).await
    });
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>(), "in the order made");
    assert_eq!(w.stats().groups, 1, "{:?}", w.stats());
    // A later turn is a new group; a blocking append is sent on its own.
    rt.block_on(w.append(entry(20))).unwrap();
    assert_eq!(w.append_blocking(entry(21)).unwrap().seq, 22);
    assert_eq!(w.stats().groups, 3, "{:?}", w.stats());
    w.close_blocking().unwrap();
    assert_eq!(verify(&path, &ring()).total_entries, 22);
}

/// Poll `fut` once.
async fn poll_once<F: std::future::Future>(
    mut fut: std::pin::Pin<&mut F>,
) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
}

#[test]
fn an_append_dropped_before_its_batch_is_handed_over_is_still_written() {
    let dir = TempDir::new("dropped");
    let path = dir.path("audit.jsonl");
    let (w, _) = open(&path, ring(), FsyncPolicy::Batch);
    let rt = current_thread();
    rt.block_on(async {
        let mut first = Box::pin(w.append(entry(0)));
        // One poll: the entry is gathered and its future is yielding.
        assert!(poll_once(first.as_mut()).await.is_pending());
        let mut second = Box::pin(w.append(entry(1)));
        assert!(poll_once(second.as_mut()).await.is_pending());
        // Dropping the first hands over both; the second is answered
        // (stranded, it would wait forever: bounded here).
        drop(first);
        let answered = tokio::time::timeout(std::time::Duration::from_secs(10), second).await;
        assert_eq!(answered.expect("handed over").unwrap().seq, 2);
        // A flush behind gathered appends waits for them too.
        let mut third = Box::pin(w.append(entry(2)));
        assert!(poll_once(third.as_mut()).await.is_pending());
        w.flush().await.unwrap();
        assert_eq!(w.stats().appended, 3);
        assert_eq!(third.await.unwrap().seq, 3);
    });
    w.close_blocking().unwrap();
    let r = verify(&path, &ring());
    assert!(r.ok(), "{:?}", r.breaks);
    assert_eq!(r.total_entries, 3);
}

#[test]
fn reopening_continues_the_chain_and_sequence() {
    let dir = TempDir::new("reopen");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 3);
    let (w, warnings) = open(&path, ring(), FsyncPolicy::Batch);
    assert!(warnings.is_empty());
    assert_eq!(w.append_blocking(entry(9)).unwrap().seq, 4);
    w.close_blocking().unwrap();
    let r = verify(&path, &ring());
    assert!(r.ok(), "{:?}", r.breaks);
    assert_eq!(r.total_entries, 4);
}

#[test]
fn fire_and_forget_entries_are_group_committed_and_flushed_on_close() {
    let dir = TempDir::new("submit");
    let path = dir.path("audit.jsonl");
    let (w, _) = open(&path, ring(), FsyncPolicy::Batch);
    for i in 0..500 {
        w.submit(entry(i)).unwrap();
    }
    w.close_blocking().unwrap();
    let stats = w.stats();
    assert_eq!(stats.appended, 500);
    // Queued entries are drained into a few groups, one fsync each (+1 at close).
    assert!(stats.groups < 50, "{stats:?}");
    assert!(stats.fsyncs <= stats.groups + 1, "{stats:?}");
    assert_eq!(verify(&path, &ring()).total_entries, 500);
}

#[test]
fn fsync_policies_ack_after_write_and_sync_as_configured() {
    for (policy, min_fsyncs) in [
        (FsyncPolicy::Always, 20),
        (FsyncPolicy::Batch, 1),
        (FsyncPolicy::Never, 0),
    ] {
        let dir = TempDir::new("fsync");
        let path = dir.path("audit.jsonl");
        let (w, _) = open(&path, ring(), policy);
        for i in 0..20 {
            let id = EntryId::new_v4();
            let e = NewEntry {
                entry_id: id.clone(),
                ..entry(i)
            };
            w.append_blocking(e).unwrap();
            // Acknowledged means written: the line is in the file already.
            assert!(
                std::fs::read_to_string(&path)
                    .unwrap()
                    .contains(id.as_str()),
                "{policy:?}"
            );
        }
        if policy == FsyncPolicy::Batch {
            // Acked after the write; the syncer fsyncs behind the writer on its
            // own, without a flush or close asking it to.
            let t = std::time::Instant::now();
            while w.stats().fsyncs == 0 && t.elapsed() < std::time::Duration::from_secs(10) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let before_close = w.stats().fsyncs;
        match policy {
            FsyncPolicy::Always | FsyncPolicy::Batch => {
                assert!(before_close >= min_fsyncs, "{policy:?}: {before_close}")
            }
            FsyncPolicy::Never => assert_eq!(before_close, 0),
        }
        if policy == FsyncPolicy::Batch {
            assert!(before_close <= 20);
        }
        w.close_blocking().unwrap();
        assert!(w.stats().fsyncs > before_close, "close fsyncs ({policy:?})");
        assert!(verify(&path, &ring()).ok());
    }
}

#[test]
fn a_second_writer_on_the_same_log_is_refused() {
    let dir = TempDir::new("lock");
    let path = dir.path("audit.jsonl");
    let (w, _) = open(&path, ring(), FsyncPolicy::Batch);
    let err = AuditWriter::open(WriterConfig::new(&path, ring(), "other")).unwrap_err();
    assert!(matches!(err, WriterError::Locked { .. }));
    assert!(
        err.to_string().contains(&path.display().to_string())
            && err.to_string().contains("{instance}")
    );
    w.close_blocking().unwrap();
    let (w2, _) = open(&path, ring(), FsyncPolicy::Batch);
    w2.close_blocking().unwrap();
}

#[test]
fn torn_tail_is_moved_aside_and_the_chain_continues() {
    let dir = TempDir::new("torn");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 3);
    let good = std::fs::read(&path).unwrap();
    let torn = b"{\"approval_chain\":[],\"check_na";
    std::fs::write(&path, [good.as_slice(), torn].concat()).unwrap();
    let (w, warnings) = open(&path, ring(), FsyncPolicy::Batch);
    let [RecoveryWarning::TornTail {
        moved_to,
        bytes,
        offset,
        ..
    }] = warnings.as_slice()
    else {
        panic!("{warnings:?}")
    };
    assert_eq!((*bytes, *offset), (torn.len() as u64, good.len() as u64));
    assert_eq!(std::fs::read(moved_to).unwrap(), torn);
    assert!(warnings[0].to_string().contains("torn"));
    assert_eq!(w.append_blocking(entry(3)).unwrap().seq, 4);
    w.close_blocking().unwrap();
    let r = verify(&path, &ring());
    assert!(r.ok(), "{:?}", r.breaks);
    assert_eq!(r.total_entries, 4);
}

#[test]
fn garbage_lines_after_the_last_entry_are_torn_too() {
    let dir = TempDir::new("torn2");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 2);
    let good = std::fs::read(&path).unwrap();
    std::fs::write(&path, [good.as_slice(), b"\0\0\0\0\n{\"half\":\n"].concat()).unwrap();
    let (w, warnings) = open(&path, ring(), FsyncPolicy::Batch);
    assert!(
        matches!(warnings.as_slice(), [RecoveryWarning::TornTail { .. }]),
        "{warnings:?}"
    );
    w.append_blocking(entry(2)).unwrap();
    w.close_blocking().unwrap();
    assert!(verify(&path, &ring()).ok());
}

#[test]
fn a_whole_entry_missing_only_its_newline_is_kept() {
    let dir = TempDir::new("nonl");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 2);
    let mut good = std::fs::read(&path).unwrap();
    good.pop();
    std::fs::write(&path, &good).unwrap();
    let (w, warnings) = open(&path, ring(), FsyncPolicy::Batch);
    assert!(warnings.is_empty(), "{warnings:?}");
    w.append_blocking(entry(2)).unwrap();
    w.close_blocking().unwrap();
    let r = verify(&path, &ring());
    assert!(r.ok() && r.total_entries == 3, "{r:?}");
}

#[test]
fn a_wrong_secret_or_altered_last_entry_stops_the_writer_instead_of_cutting() {
    let dir = TempDir::new("wrongkey");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 2);
    let before = std::fs::read(&path).unwrap();
    let wrong = Keyring::new(HmacKey::new("k1", vec![0x22; 32]).unwrap());
    let err = AuditWriter::open(WriterConfig::new(&path, wrong, "t")).unwrap_err();
    assert!(matches!(err, WriterError::TailUnverified { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was cut");
}

#[test]
fn the_signed_head_exposes_truncation_and_forgery() {
    let dir = TempDir::new("head");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 5);
    assert_eq!(read_head(&head_path(&path)).unwrap().unwrap().seq, 5);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Drop the last two entries: the chain itself is still consistent...
    std::fs::write(&path, lines[..3].join("\n") + "\n").unwrap();
    let r = verify(&path, &ring());
    assert_eq!(kinds(&r), vec![BreakKind::Truncated]);
    assert!(
        r.breaks[0].detail.contains("seq 4 is missing"),
        "{}",
        r.breaks[0].detail
    );
    // A forged head (seq lowered to hide the cut) fails its signature.
    let head = std::fs::read_to_string(head_path(&path)).unwrap();
    std::fs::write(head_path(&path), head.replace("\"seq\":5", "\"seq\":3")).unwrap();
    assert_eq!(kinds(&verify(&path, &ring())), vec![BreakKind::HeadInvalid]);
    // Without a head, truncation is only a note, unless the head is required.
    std::fs::remove_file(head_path(&path)).unwrap();
    let r = verify(&path, &ring());
    assert!(r.ok() && r.head == HeadStatus::Missing);
    let strict = VerifyOptions {
        require_head: true,
        ..VerifyOptions::default()
    };
    let r = verify_file(&path, &ring(), &strict, &mut |_, _| {}).unwrap();
    assert_eq!(kinds(&r), vec![BreakKind::Truncated]);
}

#[test]
fn a_writer_starting_on_a_truncated_log_keeps_the_stale_head_as_evidence() {
    let dir = TempDir::new("stalehead");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 4);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&path, lines[..2].join("\n") + "\n").unwrap();
    let (w, warnings) = open(&path, ring(), FsyncPolicy::Batch);
    let [RecoveryWarning::StaleHead {
        moved_to, detail, ..
    }] = warnings.as_slice()
    else {
        panic!("{warnings:?}")
    };
    assert!(detail.contains("entries 3..=4 are missing"), "{detail}");
    assert!(moved_to.exists());
    w.close_blocking().unwrap();
}

#[test]
fn rotated_keys_verify_through_the_keyring() {
    let dir = TempDir::new("rotate");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 3);
    let k2 = HmacKey::new("k2", vec![0x22; 32]).unwrap();
    let rotated = Keyring::new(k2.clone())
        .with_retired(vec![k1()], "test")
        .unwrap();
    write_n(&path, rotated.clone(), 2);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("\"_signing_key_id\":\"k2\"").count(), 2);
    assert!(verify(&path, &rotated).ok());
    // Without the retired key the old entries cannot be checked.
    let r = verify(&path, &Keyring::new(k2));
    assert_eq!(kinds(&r), vec![BreakKind::UnknownKey; 3]);
}

#[test]
fn chunking_and_threads_do_not_change_the_result() {
    let dir = TempDir::new("chunks");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 300);
    let text = std::fs::read_to_string(&path).unwrap();
    // Tamper with a few lines so there is something to find.
    let tampered =
        text.replacen("reason 100 é", "reason 100 e", 1)
            .replacen("reason 7 é", "reason 8 é", 1);
    std::fs::write(&path, format!("\u{feff}{tampered}")).unwrap();
    let base = verify_file(
        &path,
        &ring(),
        &VerifyOptions {
            threads: 1,
            ..VerifyOptions::default()
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(kinds(&base), vec![BreakKind::SelfMismatch; 2]);
    for (threads, chunk_bytes) in [(2, 64), (2, 1000), (3, 4096), (2, 1 << 20)] {
        let opts = VerifyOptions {
            threads,
            chunk_bytes,
            ..VerifyOptions::default()
        };
        let mut last = 0;
        let r = verify_file(&path, &ring(), &opts, &mut |done, _| last = done).unwrap();
        assert_eq!(r, base, "threads={threads} chunk={chunk_bytes}");
        assert_eq!(last, std::fs::metadata(&path).unwrap().len());
    }
}

#[test]
fn an_over_long_line_is_reported_and_skipped_not_buffered() {
    let dir = TempDir::new("longline");
    let path = dir.path("audit.jsonl");
    write_n(&path, ring(), 4);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.insert(2, "x".repeat(5000));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let opts = VerifyOptions {
        chunk_bytes: 512,
        max_line: 2000,
        ..VerifyOptions::default()
    };
    let r = verify_file(&path, &ring(), &opts, &mut |_, _| {}).unwrap();
    assert_eq!(r.total_entries, 5);
    assert_eq!(kinds(&r), vec![BreakKind::MalformedLine]);
    assert_eq!((r.breaks[0].index, r.breaks[0].line), (2, 3));
    assert!(
        r.breaks[0].detail.contains("longer than 2000 bytes"),
        "{:?}",
        r.breaks
    );
    assert_eq!(r.last_known_good_index, 4);
}

#[test]
fn a_directory_of_replicas_is_verified_file_by_file() {
    let dir = TempDir::new("replicas");
    for name in ["audit-a.jsonl", "audit-b.jsonl"] {
        write_n(&dir.path(name), ring(), 3);
    }
    let b = dir.path("audit-b.jsonl");
    let text = std::fs::read_to_string(&b).unwrap();
    std::fs::write(&b, text.replacen("reason 1", "reason X", 1)).unwrap();
    let reports = verify_path(&dir.0, &ring(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(reports.len(), 2, "head files and others are skipped");
    assert!(reports[0].ok());
    assert_eq!(kinds(&reports[1]), vec![BreakKind::SelfMismatch]);
}

#[test]
fn instance_placeholder_expands() {
    let p = super::expand_instance(Path::new("/var/log/signet/audit-{instance}.jsonl"), "gw-2");
    assert_eq!(p, Path::new("/var/log/signet/audit-gw-2.jsonl"));
    assert!(!super::default_instance().is_empty());
}

/// Each tampering of a valid log, and the break kind that must report it.
#[test]
fn tamper_matrix() {
    let dir = TempDir::new("tamper");
    let original = dir.path("original.jsonl");
    write_n(&original, ring(), 6);
    let text = std::fs::read_to_string(&original).unwrap();
    let head = std::fs::read(head_path(&original)).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let join = |ls: &[String]| ls.join("\n") + "\n";
    let hmac_of = |l: &str| l.split("\"hmac\":\"").nth(1).unwrap()[..64].to_owned();

    let mut cases: Vec<(&str, String, BreakKind, u64)> = Vec::new();
    cases.push(("untouched", text.clone(), BreakKind::SelfMismatch, u64::MAX));
    let mut l = lines.clone();
    l[2] = l[2].replacen("reason 2", "reason 3", 1);
    cases.push(("one byte of a reason", join(&l), BreakKind::SelfMismatch, 2));
    let mut l = lines.clone();
    l.remove(2);
    cases.push(("delete a middle line", join(&l), BreakKind::LinkMismatch, 2));
    let mut l = lines.clone();
    l.swap(2, 3);
    cases.push(("swap two lines", join(&l), BreakKind::LinkMismatch, 2));
    let mut l = lines.clone();
    let forged = l[2]
        .replacen("reason 2", "reason 2 (approved)", 1)
        .replace(&hmac_of(&l[2]), &"ab".repeat(32));
    l.insert(
        3,
        forged.replacen(
            &format!("\"prev_hmac\":\"{}\"", hmac_of(&l[1])),
            &format!("\"prev_hmac\":\"{}\"", hmac_of(&l[2])),
            1,
        ),
    );
    cases.push(("insert a forged line", join(&l), BreakKind::SelfMismatch, 3));
    let mut l = lines.clone();
    l.pop();
    cases.push(("delete the last line", join(&l), BreakKind::Truncated, 5));
    let mut half = join(&lines);
    half.truncate(half.len() - lines[5].len() / 2);
    cases.push(("truncate mid-line", half, BreakKind::MalformedLine, 5));
    let mut l = lines.clone();
    let prev = hmac_of(&l[2]);
    let flipped = format!(
        "{}{}",
        if prev.starts_with('0') { '1' } else { '0' },
        &prev[1..]
    );
    l[3] = l[3].replace(
        &format!("\"prev_hmac\":\"{prev}\""),
        &format!("\"prev_hmac\":\"{flipped}\""),
    );
    cases.push((
        "flip a prev_hmac character",
        join(&l),
        BreakKind::LinkMismatch,
        3,
    ));
    let mut l = lines.clone();
    l[4] = l[4].replace("\"_signing_key_id\":\"k1\"", "\"_signing_key_id\":\"k9\"");
    cases.push(("change a key id", join(&l), BreakKind::UnknownKey, 4));

    for (name, content, kind, index) in cases {
        let path = dir.path("case.jsonl");
        std::fs::write(&path, &content).unwrap();
        std::fs::write(head_path(&path), &head).unwrap();
        let r = verify(&path, &ring());
        if index == u64::MAX {
            assert!(r.ok(), "{name}: {:?}", r.breaks);
            continue;
        }
        assert!(!r.ok(), "{name}: not detected");
        assert_eq!(
            r.breaks[0].index, index,
            "{name}: first break at the tampered entry: {:?}",
            r.breaks
        );
        assert!(
            r.breaks.iter().any(|b| (b.kind, b.index) == (kind, index)),
            "{name}: expected {kind:?} at {index}: {:?}",
            r.breaks
        );
        if name == "flip a prev_hmac character" {
            assert!(
                !kinds(&r).contains(&BreakKind::SelfMismatch),
                "{name}: self_mismatch is suppressed on a link break"
            );
        }
        if name == "delete a middle line" {
            assert!(
                r.breaks
                    .iter()
                    .any(|b| b.kind == BreakKind::SeqGap && b.detail.contains("seq 3 is missing")),
                "{:?}",
                r.breaks
            );
        }
        if name == "truncate mid-line" {
            assert!(kinds(&r).contains(&BreakKind::Truncated), "{:?}", r.breaks);
        }
    }
}

#[test]
fn the_head_catches_up_while_the_writer_runs_and_never_runs_ahead() {
    let dir = TempDir::new("head-lag");
    let path = dir.path("audit.jsonl");
    let (w, _) = open(&path, ring(), FsyncPolicy::Batch);
    for i in 0..50 {
        w.append_blocking(entry(i)).unwrap();
        // Whatever the head says at any moment, the log already holds it.
        if let Some(h) = read_head(&head_path(&path)).unwrap() {
            assert!(h.seq <= (i as u64) + 1, "head {} ahead of the log", h.seq);
        }
    }
    // Idle for longer than HEAD_EVERY: the head is rewritten without a close.
    std::thread::sleep(super::writer::HEAD_EVERY * 4);
    assert_eq!(read_head(&head_path(&path)).unwrap().unwrap().seq, 50);
    assert_eq!(verify(&path, &ring()).head, HeadStatus::Valid { seq: 50 });
    // A flush brings it up to date at once.
    w.append_blocking(entry(50)).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(w.flush())
        .unwrap();
    assert_eq!(read_head(&head_path(&path)).unwrap().unwrap().seq, 51);
    w.close_blocking().unwrap();
}
