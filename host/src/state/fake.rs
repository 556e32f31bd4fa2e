//! A state backend that is down (tests): every operation waits `delay`, then
//! fails with `connection refused`, as a Redis backend does when Redis is gone.
#![cfg(test)]
use std::time::Duration;

use super::{
    ApprovalRecord, ApprovalStatus, ApprovalUpdate, BudgetTotals, Reservation, ReserveBudget,
    ReserveOutcome, SessionBinding, StateBackend, StateError, StateOp, TakeOutcome, TakeTokens,
};

/// Down for every operation, after `delay`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DownState {
    pub(crate) delay: Duration,
}

impl DownState {
    fn down<'a, T: Send + 'a>(&self) -> StateOp<'a, T> {
        let delay = self.delay;
        StateOp::Pending(Box::pin(async move {
            tokio::time::sleep(delay).await;
            Err(StateError::Unavailable {
                backend: "down",
                detail: "op at redis://127.0.0.1:1: connection refused".into(),
            })
        }))
    }
}

impl StateBackend for DownState {
    fn backend_name(&self) -> &'static str {
        "down"
    }
    fn take_tokens(&self, _: TakeTokens) -> StateOp<'_, TakeOutcome> {
        self.down()
    }
    fn reserve_budget(&self, _: ReserveBudget) -> StateOp<'_, ReserveOutcome> {
        self.down()
    }
    fn settle_budget(&self, _: Reservation, _: u64) -> StateOp<'_, BudgetTotals> {
        self.down()
    }
    fn create_approval(&self, _: ApprovalRecord, _: usize) -> StateOp<'_, ApprovalRecord> {
        self.down()
    }
    fn get_approval(&self, _: String) -> StateOp<'_, Option<ApprovalRecord>> {
        self.down()
    }
    fn list_approvals(&self) -> StateOp<'_, Vec<ApprovalRecord>> {
        self.down()
    }
    fn update_approval(&self, _: ApprovalStatus, _: ApprovalRecord) -> StateOp<'_, ApprovalUpdate> {
        self.down()
    }
    fn revoke_owner(&self, _: String, _: u64) -> StateOp<'_, ()> {
        self.down()
    }
    fn restore_owner(&self, _: String) -> StateOp<'_, bool> {
        self.down()
    }
    fn owner_revoked(&self, _: Vec<String>) -> StateOp<'_, bool> {
        self.down()
    }
    fn bind_session(&self, _: String, _: String, _: u64) -> StateOp<'_, SessionBinding> {
        self.down()
    }
}
