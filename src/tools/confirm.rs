//! Confirmation of risky writes (`--confirm auto|always|never`, `--confirm-threshold`).
//!
//! A write tool, after planning and before sending, calls [`ToolContext::confirm`] with a
//! [`ConfirmAsk`]. When the policy wants confirmation for it ([`ToolContext::wants_confirmation`]),
//! the client is asked through MCP elicitation (legacy: an `elicitation/create` request; on
//! the 2026-07-28 protocol: the multi-round-trip `input_required` result), or, with
//! `--confirm always` and a client that cannot be asked, the call must carry the
//! `confirm_token` a dry run of the same arguments returned ([`ToolContext::confirm_token`]).
//! Declined, cancelled or unconfirmed: `Err(ToolError::NotConfirmed)`, and nothing is sent.

// Parts are used by the write tools as they move onto the pipeline (issue #10).
#![allow(dead_code)]

use rmcp::RoleServer;
use rmcp::service::RequestContext;

use crate::config::ConfirmMode;
use crate::tools::ToolError;
use crate::tools::context::ToolContext;
use crate::tools::writes::WriteControl;

/// Why a write asks for confirmation even below the batch threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfirmReason {
    /// Records are deleted.
    Delete,
    /// A previous write is undone.
    Undo,
    /// sync_tables applies its plan.
    SyncApply,
    /// A field's type changes.
    FieldTypeChange,
}

/// What the user is asked to confirm.
#[derive(Debug, Clone)]
pub(crate) struct ConfirmAsk {
    /// The tool asking.
    pub(crate) tool: &'static str,
    /// One line: what will happen ("Delete 3 records from Tasks in appXXX").
    pub(crate) summary: String,
    /// How many records the write touches.
    pub(crate) count: usize,
    /// A few of them, by primary field (or ID).
    pub(crate) sample: Vec<String>,
    /// Why it is risky, besides its size.
    pub(crate) reason: Option<ConfirmReason>,
}

impl ToolContext {
    /// Whether the policy asks before this write: never with `--confirm never`; else for every
    /// write with a reason, and for writes of more than `--confirm-threshold` records.
    pub(crate) fn wants_confirmation(&self, reason: Option<ConfirmReason>, count: usize) -> bool {
        let o = self.options();
        o.confirm != ConfirmMode::Never && (reason.is_some() || count > o.confirm_threshold)
    }

    /// Ask before sending `ask` (see the module docs). `Ok(())`: go on and send.
    pub(crate) async fn confirm(
        &self,
        _rc: &RequestContext<RoleServer>,
        _control: &WriteControl,
        ask: ConfirmAsk,
    ) -> Result<(), ToolError> {
        if !self.wants_confirmation(ask.reason, ask.count) {
            return Ok(());
        }
        // Elicitation and confirm tokens: see the module docs (being implemented).
        Ok(())
    }

    /// The token a dry run returns, bound to this call's tool and arguments, when the server
    /// would require one to apply them (`--confirm always`, client without elicitation).
    pub(crate) fn confirm_token(
        &self,
        _rc: &RequestContext<RoleServer>,
        _ask: &ConfirmAsk,
    ) -> Option<String> {
        None
    }
}
