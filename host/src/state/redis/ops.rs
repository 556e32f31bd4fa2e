//! Each [`StateBackend`] operation on Redis: the keys and arguments a script
//! gets, and its reply turned back into the backend's types. Semantics match
//! the memory backend (see `memory.rs` and `approvals.rs`); the scripts are in
//! `lua/`.
use ::redis::Value;
use sha2::{Digest, Sha256};

use super::{RedisState, APPROVAL_RETENTION_MS, HARD_QUOTA_IDLE_MS, LIST_LIMIT};
use crate::state::consent::session_digest;
use crate::state::{
    ApprovalRecord, ApprovalStatus, ApprovalUpdate, BudgetTotals, BudgetWindow, Reservation,
    ReserveBudget, ReserveOutcome, SessionBinding, StateBackend, StateError, StateOp, TakeOutcome,
    TakeTokens,
};

/// A reply that is not what the script returns.
fn bad_reply(v: &Value) -> String {
    let shown: String = format!("{v:?}").chars().take(200).collect();
    format!("unexpected reply {shown}")
}

fn items(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(bad_reply(&other)),
    }
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(bad_reply(other)),
    }
}

fn uint(v: &Value) -> Result<u64, String> {
    Ok(u64::try_from(int(v)?).unwrap_or(0))
}

fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        other => Err(bad_reply(other)),
    }
}

fn record(json: &str) -> Result<ApprovalRecord, String> {
    serde_json::from_str(json).map_err(|e| format!("stored approval is not a record: {e}"))
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Milliseconds from now until `deadline_ns`, at least one second.
fn ms_until(deadline_ns: u64) -> u64 {
    (deadline_ns.saturating_sub(now_ns()) / 1_000_000).max(1_000)
}

/// How long to keep a record: until its last deadline plus the retention.
fn record_ttl_ms(r: &ApprovalRecord) -> u64 {
    let last = [
        r.created_ns,
        r.expires_ns,
        r.token_expires_ns,
        r.decided_ns,
        r.consumed_ns,
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    ms_until(last).saturating_add(APPROVAL_RETENTION_MS)
}

fn encode(r: &ApprovalRecord) -> Result<String, StateError> {
    serde_json::to_string(r).map_err(|e| StateError::Unavailable {
        backend: "redis",
        detail: format!("cannot encode approval {}: {e}", r.id),
    })
}

impl RedisState {
    fn lru_keys(&self, kind: &str, ns: &str) -> [String; 2] {
        [self.key(&[kind, ns, "lru"]), self.key(&[kind, ns, "tick"])]
    }

    fn approval_key(&self, id: &str) -> String {
        self.key(&["ap", "rec", id])
    }

    fn dedupe_key(&self, r: &ApprovalRecord) -> String {
        self.key(&["ap", "pend", &sha256_hex(&r.dedupe_key())])
    }

    fn revocation_key(&self, owner: &str) -> String {
        self.key(&["cc", "rev", owner])
    }

    /// Turn a reply that does not parse into the operation's failure.
    fn parsed<T>(&self, op: &'static str, r: Result<T, String>) -> Result<T, StateError> {
        r.map_err(|e| self.unavailable(op, e))
    }

    /// The budget script (`reserve` or `settle`) for one budget; its integers.
    async fn budget(
        &self,
        op: &'static str,
        ns: &str,
        key: &str,
        window: BudgetWindow,
        max_keys: usize,
        tail: [String; 3],
    ) -> Result<Vec<u64>, StateError> {
        let [lru, tick] = self.lru_keys("tb", ns);
        let keys = vec![self.key(&["tb", ns, "b", key]), lru, tick];
        let mut args = vec![
            if op == "settle_budget" {
                "settle"
            } else {
                "reserve"
            }
            .to_string(),
            self.now_arg().to_string(),
            window.length_ms.max(1).to_string(),
            u8::from(window.rolling).to_string(),
            max_keys.max(1).to_string(),
        ];
        args.extend(tail);
        let v = self.eval(op, &self.scripts.budget, keys, args).await?;
        self.parsed(op, items(v).and_then(|r| r.iter().map(uint).collect()))
    }
}

impl StateBackend for RedisState {
    fn backend_name(&self) -> &'static str {
        "redis"
    }

    fn take_tokens(&self, req: TakeTokens) -> StateOp<'_, TakeOutcome> {
        const OP: &str = "take_tokens";
        StateOp::Pending(Box::pin(async move {
            let mut keys = self.lru_keys("rl", &req.namespace).to_vec();
            keys.extend(
                req.keys
                    .iter()
                    .map(|k| self.key(&["rl", &req.namespace, "b", k])),
            );
            let rate = if req.refill_per_second.is_finite() && req.refill_per_second > 0.0 {
                req.refill_per_second
            } else {
                0.0
            };
            let args = vec![
                self.now_arg().to_string(),
                req.cost.to_string(),
                req.capacity.to_string(),
                rate.to_string(),
                req.max_keys.max(1).to_string(),
                HARD_QUOTA_IDLE_MS.to_string(),
            ];
            let v = self.eval(OP, &self.scripts.take, keys, args).await?;
            let outcome = items(v).and_then(|r| match r.as_slice() {
                [ok, remaining] if int(ok)? == 1 => Ok(TakeOutcome::Taken {
                    remaining: uint(remaining)?,
                }),
                [_, index, wait] => Ok(TakeOutcome::Limited {
                    key_index: usize::try_from(uint(index)?).unwrap_or(0),
                    retry_after_ms: uint(wait)?,
                }),
                _ => Err(bad_reply(&Value::Array(r))),
            });
            self.parsed(OP, outcome)
        }))
    }

    fn reserve_budget(&self, req: ReserveBudget) -> StateOp<'_, ReserveOutcome> {
        const OP: &str = "reserve_budget";
        StateOp::Pending(Box::pin(async move {
            let mut id = [0u8; 12];
            getrandom::fill(&mut id).map_err(|e| self.unavailable(OP, e.to_string()))?;
            let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let tail = [req.cap.to_string(), req.amount.to_string(), id.clone()];
            let r = self
                .budget(OP, &req.namespace, &req.key, req.window, req.max_keys, tail)
                .await?;
            match r.as_slice() {
                [1, used, reserved] => Ok(ReserveOutcome::Granted {
                    reservation: Reservation {
                        namespace: req.namespace,
                        key: req.key,
                        id,
                        amount: req.amount,
                        window: req.window,
                        max_keys: req.max_keys,
                    },
                    totals: BudgetTotals {
                        used: *used,
                        reserved: *reserved,
                    },
                }),
                [0, used, reserved, retry] => Ok(ReserveOutcome::Exceeded {
                    totals: BudgetTotals {
                        used: *used,
                        reserved: *reserved,
                    },
                    retry_after_ms: *retry,
                }),
                other => Err(self.unavailable(OP, format!("unexpected reply {other:?}"))),
            }
        }))
    }

    fn settle_budget(&self, r: Reservation, charge: u64) -> StateOp<'_, BudgetTotals> {
        const OP: &str = "settle_budget";
        StateOp::Pending(Box::pin(async move {
            let tail = [r.id.clone(), charge.to_string(), String::new()];
            let t = self
                .budget(OP, &r.namespace, &r.key, r.window, r.max_keys, tail)
                .await?;
            match t.as_slice() {
                [used, reserved] => Ok(BudgetTotals {
                    used: *used,
                    reserved: *reserved,
                }),
                other => Err(self.unavailable(OP, format!("unexpected reply {other:?}"))),
            }
        }))
    }

    fn create_approval(&self, rec: ApprovalRecord, max: usize) -> StateOp<'_, ApprovalRecord> {
        const OP: &str = "create_approval";
        StateOp::Pending(Box::pin(async move {
            let json = encode(&rec)?;
            let keys = vec![
                self.approval_key(&rec.id),
                self.dedupe_key(&rec),
                self.key(&["ap", "idx"]),
            ];
            let args = vec![
                rec.id.clone(),
                json,
                rec.created_ns.to_string(),
                rec.expires_ns.to_string(),
                (rec.created_ns / 1_000).to_string(),
                max.max(1).to_string(),
                record_ttl_ms(&rec).to_string(),
                ms_until(rec.expires_ns).to_string(),
                APPROVAL_RETENTION_MS.saturating_mul(2).to_string(),
                self.key(&["ap", "rec", ""]),
            ];
            let v = self
                .eval(OP, &self.scripts.approval_create, keys, args)
                .await?;
            let stored = items(v).and_then(|r| match r.as_slice() {
                [_, stored] => record(&text(stored)?),
                other => Err(bad_reply(&Value::Array(other.to_vec()))),
            });
            self.parsed(OP, stored)
        }))
    }

    fn get_approval(&self, id: String) -> StateOp<'_, Option<ApprovalRecord>> {
        const OP: &str = "get_approval";
        StateOp::Pending(Box::pin(async move {
            let key = self.approval_key(&id);
            let v: Option<String> = self
                .run(OP, |mut c| {
                    let key = key.clone();
                    async move {
                        ::redis::cmd("HGET")
                            .arg(&key)
                            .arg("j")
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            self.parsed(OP, v.as_deref().map(record).transpose())
        }))
    }

    fn list_approvals(&self) -> StateOp<'_, Vec<ApprovalRecord>> {
        const OP: &str = "list_approvals";
        StateOp::Pending(Box::pin(async move {
            let keys = vec![self.key(&["ap", "idx"])];
            let args = vec![self.key(&["ap", "rec", ""]), LIST_LIMIT.to_string()];
            let v = self
                .eval(OP, &self.scripts.approval_list, keys, args)
                .await?;
            let list =
                items(v).and_then(|r| r.iter().map(|j| text(j).and_then(|j| record(&j))).collect());
            self.parsed(OP, list)
        }))
    }

    fn update_approval(
        &self,
        expected: ApprovalStatus,
        rec: ApprovalRecord,
    ) -> StateOp<'_, ApprovalUpdate> {
        const OP: &str = "update_approval";
        StateOp::Pending(Box::pin(async move {
            let json = encode(&rec)?;
            let keys = vec![self.approval_key(&rec.id), self.dedupe_key(&rec)];
            let args = vec![
                rec.id.clone(),
                expected.as_str().to_string(),
                rec.status.as_str().to_string(),
                json,
                rec.expires_ns.to_string(),
                record_ttl_ms(&rec).to_string(),
            ];
            let v = self
                .eval(OP, &self.scripts.approval_update, keys, args)
                .await?;
            let update = items(v).and_then(|r| match r.as_slice() {
                [code] if int(code)? == 0 => Ok(ApprovalUpdate::Missing),
                [code] if int(code)? == 2 => Ok(ApprovalUpdate::Updated(rec)),
                [_, stored] => Ok(ApprovalUpdate::Conflict(record(&text(stored)?)?)),
                other => Err(bad_reply(&Value::Array(other.to_vec()))),
            });
            self.parsed(OP, update)
        }))
    }

    fn revoke_owner(&self, owner: String, ttl_ms: u64) -> StateOp<'_, ()> {
        StateOp::Pending(Box::pin(async move {
            let key = self.revocation_key(&owner);
            self.run("revoke_owner", |mut c| {
                let key = key.clone();
                async move {
                    let mut cmd = ::redis::cmd("SET");
                    cmd.arg(&key).arg("1");
                    if ttl_ms > 0 {
                        cmd.arg("PX").arg(ttl_ms);
                    }
                    cmd.query_async::<()>(&mut c).await
                }
            })
            .await
        }))
    }

    fn restore_owner(&self, owner: String) -> StateOp<'_, bool> {
        StateOp::Pending(Box::pin(async move {
            let key = self.revocation_key(&owner);
            self.run("restore_owner", |mut c| {
                let key = key.clone();
                async move {
                    let n: i64 = ::redis::cmd("DEL").arg(&key).query_async(&mut c).await?;
                    Ok(n > 0)
                }
            })
            .await
        }))
    }

    fn owner_revoked(&self, owners: Vec<String>) -> StateOp<'_, bool> {
        StateOp::Pending(Box::pin(async move {
            if owners.is_empty() {
                return Ok(false);
            }
            let keys: Vec<String> = owners.iter().map(|o| self.revocation_key(o)).collect();
            self.run("owner_revoked", |mut c| {
                let keys = keys.clone();
                async move {
                    let n: i64 = ::redis::cmd("EXISTS")
                        .arg(&keys)
                        .query_async(&mut c)
                        .await?;
                    Ok(n > 0)
                }
            })
            .await
        }))
    }

    fn bind_session(
        &self,
        session: String,
        owner: String,
        ttl_ms: u64,
    ) -> StateOp<'_, SessionBinding> {
        const OP: &str = "bind_session";
        StateOp::Pending(Box::pin(async move {
            let keys = vec![self.key(&["sess", &session_digest(&session)])];
            let args = vec![owner, ttl_ms.max(1).to_string()];
            let v = self
                .eval(OP, &self.scripts.session_bind, keys, args)
                .await?;
            let bound = items(v).and_then(|r| match r.as_slice() {
                [code] if int(code)? == 1 => Ok(SessionBinding::Bound),
                [_, holder] => Ok(SessionBinding::Mismatch {
                    owner: text(holder)?,
                }),
                other => Err(bad_reply(&Value::Array(other.to_vec()))),
            });
            self.parsed(OP, bound)
        }))
    }
}
