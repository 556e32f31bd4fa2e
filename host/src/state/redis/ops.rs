//! Each [`StateBackend`] operation on Redis: the keys and arguments a script
//! gets, and its reply turned back into the backend's types. Semantics match
//! the memory backend (see `memory.rs` and `approvals.rs`); the scripts are in
//! `lua/`.
use ::redis::Value;
use sha2::{Digest, Sha256};

use super::{RedisState, APPROVAL_RETENTION_MS, HARD_QUOTA_IDLE_MS, LIST_LIMIT};
use crate::state::consent::session_digest;
use crate::state::{
    ApprovalRecord, ApprovalStatus, ApprovalUpdate, BudgetTotals, Reservation, ReserveBudget,
    ReserveOutcome, SessionBinding, StateBackend, StateError, StateOp, TakeOutcome, TakeTokens,
};

/// A script reply that is not what the script returns.
fn bad_reply(v: &Value) -> ::redis::RedisError {
    let shown: String = format!("{v:?}").chars().take(200).collect();
    ::redis::RedisError::from((
        ::redis::ErrorKind::UnexpectedReturnType,
        "unexpected script reply",
        shown,
    ))
}

fn items(v: Value) -> Result<Vec<Value>, ::redis::RedisError> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(bad_reply(&other)),
    }
}

fn int(v: &Value) -> Result<i64, ::redis::RedisError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(bad_reply(other)),
    }
}

fn uint(v: &Value) -> Result<u64, ::redis::RedisError> {
    Ok(u64::try_from(int(v)?).unwrap_or(0))
}

fn text(v: &Value) -> Result<String, ::redis::RedisError> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        other => Err(bad_reply(other)),
    }
}

fn record(json: &str) -> Result<ApprovalRecord, ::redis::RedisError> {
    serde_json::from_str(json).map_err(|e| {
        ::redis::RedisError::from((
            ::redis::ErrorKind::UnexpectedReturnType,
            "stored approval is not a record",
            e.to_string(),
        ))
    })
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
    fn bucket_keys(&self, kind: &str, ns: &str) -> (String, String) {
        (self.key(&[kind, ns, "lru"]), self.key(&[kind, ns, "tick"]))
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

    async fn budget(
        &self,
        op: &'static str,
        ns: &str,
        key: &str,
        window: crate::state::BudgetWindow,
        max_keys: usize,
        tail: &[String],
    ) -> Result<Vec<u64>, StateError> {
        let (lru, tick) = self.bucket_keys("tb", ns);
        let budget_key = self.key(&["tb", ns, "b", key]);
        let mut inv = self.scripts.budget.prepare_invoke();
        inv.key(&budget_key).key(&lru).key(&tick);
        inv.arg(if op == "settle_budget" {
            "settle"
        } else {
            "reserve"
        })
        .arg(self.now_arg())
        .arg(window.length_ms.max(1))
        .arg(u8::from(window.rolling))
        .arg(max_keys.max(1));
        for a in tail {
            inv.arg(a);
        }
        self.run(op, |mut c| async move {
            let v: Value = inv.invoke_async(&mut c).await?;
            items(v)?.iter().map(uint).collect()
        })
        .await
    }
}

impl StateBackend for RedisState {
    fn backend_name(&self) -> &'static str {
        "redis"
    }

    fn take_tokens(&self, req: TakeTokens) -> StateOp<'_, TakeOutcome> {
        StateOp::Pending(Box::pin(async move {
            let (lru, tick) = self.bucket_keys("rl", &req.namespace);
            let mut inv = self.scripts.take.prepare_invoke();
            inv.key(&lru).key(&tick);
            for k in &req.keys {
                inv.key(self.key(&["rl", &req.namespace, "b", k]));
            }
            let rate = if req.refill_per_second.is_finite() && req.refill_per_second > 0.0 {
                req.refill_per_second
            } else {
                0.0
            };
            inv.arg(self.now_arg())
                .arg(req.cost)
                .arg(req.capacity)
                .arg(rate.to_string())
                .arg(req.max_keys.max(1))
                .arg(HARD_QUOTA_IDLE_MS);
            self.run("take_tokens", |mut c| async move {
                let v: Value = inv.invoke_async(&mut c).await?;
                let r = items(v)?;
                match r.as_slice() {
                    [ok, remaining] if int(ok)? == 1 => Ok(TakeOutcome::Taken {
                        remaining: uint(remaining)?,
                    }),
                    [_, index, wait] => Ok(TakeOutcome::Limited {
                        key_index: usize::try_from(uint(index)?).unwrap_or(0),
                        retry_after_ms: uint(wait)?,
                    }),
                    _ => Err(bad_reply(&Value::Array(r))),
                }
            })
            .await
        }))
    }

    fn reserve_budget(&self, req: ReserveBudget) -> StateOp<'_, ReserveOutcome> {
        StateOp::Pending(Box::pin(async move {
            let mut id = [0u8; 12];
            getrandom::fill(&mut id)
                .map_err(|e| self.unavailable("reserve_budget", e.to_string()))?;
            let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let tail = [req.cap.to_string(), req.amount.to_string(), id.clone()];
            let r = self
                .budget(
                    "reserve_budget",
                    &req.namespace,
                    &req.key,
                    req.window,
                    req.max_keys,
                    &tail,
                )
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
                other => {
                    Err(self.unavailable("reserve_budget", format!("unexpected reply {other:?}")))
                }
            }
        }))
    }

    fn settle_budget(&self, r: Reservation, charge: u64) -> StateOp<'_, BudgetTotals> {
        StateOp::Pending(Box::pin(async move {
            let tail = [r.id.clone(), charge.to_string()];
            let t = self
                .budget(
                    "settle_budget",
                    &r.namespace,
                    &r.key,
                    r.window,
                    r.max_keys,
                    &tail,
                )
                .await?;
            match t.as_slice() {
                [used, reserved] => Ok(BudgetTotals {
                    used: *used,
                    reserved: *reserved,
                }),
                other => {
                    Err(self.unavailable("settle_budget", format!("unexpected reply {other:?}")))
                }
            }
        }))
    }

    fn create_approval(&self, rec: ApprovalRecord, max: usize) -> StateOp<'_, ApprovalRecord> {
        StateOp::Pending(Box::pin(async move {
            let json = encode(&rec)?;
            let mut inv = self.scripts.approval_create.prepare_invoke();
            inv.key(self.approval_key(&rec.id))
                .key(self.dedupe_key(&rec))
                .key(self.key(&["ap", "idx"]));
            inv.arg(&rec.id)
                .arg(&json)
                .arg(rec.created_ns.to_string())
                .arg(rec.expires_ns.to_string())
                .arg(rec.created_ns / 1_000)
                .arg(max.max(1))
                .arg(record_ttl_ms(&rec))
                .arg(ms_until(rec.expires_ns))
                .arg(APPROVAL_RETENTION_MS.saturating_mul(2))
                .arg(self.key(&["ap", "rec", ""]));
            self.run("create_approval", |mut c| async move {
                let v: Value = inv.invoke_async(&mut c).await?;
                match items(v)?.as_slice() {
                    [_, stored] => record(&text(stored)?),
                    other => Err(bad_reply(&Value::Array(other.to_vec()))),
                }
            })
            .await
        }))
    }

    fn get_approval(&self, id: String) -> StateOp<'_, Option<ApprovalRecord>> {
        StateOp::Pending(Box::pin(async move {
            let key = self.approval_key(&id);
            self.run("get_approval", |mut c| async move {
                let v: Option<String> = ::redis::cmd("HGET")
                    .arg(&key)
                    .arg("j")
                    .query_async(&mut c)
                    .await?;
                v.as_deref().map(record).transpose()
            })
            .await
        }))
    }

    fn list_approvals(&self) -> StateOp<'_, Vec<ApprovalRecord>> {
        StateOp::Pending(Box::pin(async move {
            let mut inv = self.scripts.approval_list.prepare_invoke();
            inv.key(self.key(&["ap", "idx"]))
                .arg(self.key(&["ap", "rec", ""]))
                .arg(LIST_LIMIT);
            self.run("list_approvals", |mut c| async move {
                let v: Value = inv.invoke_async(&mut c).await?;
                items(v)?
                    .iter()
                    .map(|j| text(j).and_then(|j| record(&j)))
                    .collect()
            })
            .await
        }))
    }

    fn update_approval(
        &self,
        expected: ApprovalStatus,
        rec: ApprovalRecord,
    ) -> StateOp<'_, ApprovalUpdate> {
        StateOp::Pending(Box::pin(async move {
            let json = encode(&rec)?;
            let mut inv = self.scripts.approval_update.prepare_invoke();
            inv.key(self.approval_key(&rec.id))
                .key(self.dedupe_key(&rec));
            inv.arg(&rec.id)
                .arg(expected.as_str())
                .arg(rec.status.as_str())
                .arg(&json)
                .arg(rec.expires_ns.to_string())
                .arg(record_ttl_ms(&rec));
            self.run("update_approval", |mut c| async move {
                let v: Value = inv.invoke_async(&mut c).await?;
                match items(v)?.as_slice() {
                    [code] if int(code)? == 0 => Ok(ApprovalUpdate::Missing),
                    [code] if int(code)? == 2 => Ok(ApprovalUpdate::Updated(rec)),
                    [_, stored] => Ok(ApprovalUpdate::Conflict(record(&text(stored)?)?)),
                    other => Err(bad_reply(&Value::Array(other.to_vec()))),
                }
            })
            .await
        }))
    }

    fn revoke_owner(&self, owner: String, ttl_ms: u64) -> StateOp<'_, ()> {
        StateOp::Pending(Box::pin(async move {
            let key = self.revocation_key(&owner);
            self.run("revoke_owner", |mut c| async move {
                let mut cmd = ::redis::cmd("SET");
                cmd.arg(&key).arg("1");
                if ttl_ms > 0 {
                    cmd.arg("PX").arg(ttl_ms);
                }
                cmd.query_async::<()>(&mut c).await
            })
            .await
        }))
    }

    fn restore_owner(&self, owner: String) -> StateOp<'_, bool> {
        StateOp::Pending(Box::pin(async move {
            let key = self.revocation_key(&owner);
            self.run("restore_owner", |mut c| async move {
                let n: i64 = ::redis::cmd("DEL").arg(&key).query_async(&mut c).await?;
                Ok(n > 0)
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
            self.run("owner_revoked", |mut c| async move {
                let n: i64 = ::redis::cmd("EXISTS")
                    .arg(&keys)
                    .query_async(&mut c)
                    .await?;
                Ok(n > 0)
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
        StateOp::Pending(Box::pin(async move {
            let mut inv = self.scripts.session_bind.prepare_invoke();
            inv.key(self.key(&["sess", &session_digest(&session)]))
                .arg(&owner)
                .arg(ttl_ms.max(1));
            self.run("bind_session", |mut c| async move {
                let v: Value = inv.invoke_async(&mut c).await?;
                match items(v)?.as_slice() {
                    [code] if int(code)? == 1 => Ok(SessionBinding::Bound),
                    [_, holder] => Ok(SessionBinding::Mismatch {
                        owner: text(holder)?,
                    }),
                    other => Err(bad_reply(&Value::Array(other.to_vec()))),
                }
            })
            .await
        }))
    }
}
