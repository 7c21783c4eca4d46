//! Confirmation of risky writes (`--confirm auto|always|never`, `--confirm-threshold`).
//!
//! A write tool, after planning and before sending, calls [`ToolContext::confirm`] with a
//! [`ConfirmAsk`]. When the policy wants confirmation for it ([`ToolContext::wants_confirmation`]),
//! the client is asked through MCP elicitation (legacy: an `elicitation/create` request; on
//! the 2026-07-28 protocol: the multi-round-trip `input_required` result), or, with
//! `--confirm always` and a client that cannot be asked, the call must carry the
//! `confirm_token` a dry run of the same arguments returned ([`ToolContext::confirm_token`]).
//! Declined, cancelled or unconfirmed: `Err(ToolError::NotConfirmed)`, and nothing is sent.
//!
//! - A client is asked only when it declared form elicitation (in `initialize`, or on 2026 in
//!   the request's `_meta`).
//! - MRTR: a tool fn cannot return an `input_required` result, so `AirtableServer::call_tool`
//!   attaches a [`CallInput`] to the request context (the raw arguments, the retry's
//!   `inputResponses` / `requestState`, and a slot). `confirm` fills the slot and returns
//!   [`ToolError::InputRequired`]; `call_tool` turns the filled slot into the interim result.
//! - `requestState` and `confirm_token` are sealed with rmcp's `RequestStateCodec`
//!   (HMAC-SHA256; key: 32 random bytes per process, or `AIRTABLE_MCP_STATE_KEY` shared by
//!   replicas), bound to the principal (token fingerprint), the tool and a digest of the
//!   canonical arguments (without `dry_run` / `confirm_token`), valid [`CONFIRM_TTL`], and
//!   redeemed once (in this process).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequestParams, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationSchema, InputRequest, InputRequests, InputRequiredResult, InputResponses,
    JsonObject, RequestStateCodec, SealOptions,
};
use rmcp::service::RequestContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::ConfirmMode;
use crate::env;
use crate::tools::ToolError;
use crate::tools::context::ToolContext;
use crate::tools::writes::WriteControl;

/// How long a confirm_token or a pending confirmation stays valid.
pub(crate) const CONFIRM_TTL: Duration = Duration::from_secs(300);

/// The key of the elicitation in an MRTR `inputRequests` / `inputResponses` map.
const INPUT_KEY: &str = "confirm";

/// How many sample labels the question shows.
const SAMPLE_MAX: usize = 5;

/// Why a write asks for confirmation even below the batch threshold.
// No field-type reason: the Web API's update_field changes only names and descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfirmReason {
    /// Records are deleted.
    Delete,
    /// A previous write is undone.
    Undo,
    /// sync_tables applies its plan.
    SyncApply,
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

impl ConfirmAsk {
    /// The question shown to the user: summary, count, a sample, and that nothing is sent
    /// unless they accept.
    fn message(&self) -> String {
        let mut m = self.summary.trim_end_matches('.').to_owned();
        m.push_str(&format!(
            ".\n{} record{}",
            self.count,
            if self.count == 1 { "" } else { "s" }
        ));
        let shown: Vec<&str> = self
            .sample
            .iter()
            .take(SAMPLE_MAX)
            .map(String::as_str)
            .collect();
        if !shown.is_empty() {
            m.push_str(": ");
            m.push_str(&shown.join(", "));
            if self.count > shown.len() {
                m.push_str(&format!(", and {} more", self.count - shown.len()));
            }
        }
        m.push_str(".\nNothing is sent unless you accept.");
        m
    }
}

/// What `call_tool` hands the tools about the call itself (in the request context's
/// extensions): what confirmation binds to, the MRTR retry's inputs, and the slot for an
/// interim `input_required` result.
#[derive(Clone, Default)]
pub(crate) struct CallInput {
    arguments: Option<Arc<JsonObject>>,
    input_responses: Option<Arc<InputResponses>>,
    request_state: Option<String>,
    pending: PendingInput,
}

/// Where `confirm` leaves an interim `input_required` result for `call_tool`.
#[derive(Clone, Default)]
pub(crate) struct PendingInput(Arc<Mutex<Option<InputRequiredResult>>>);

impl PendingInput {
    /// The interim result a tool asked for, if any.
    pub(crate) fn take(&self) -> Option<InputRequiredResult> {
        lock(&self.0).take()
    }

    fn put(&self, result: InputRequiredResult) {
        *lock(&self.0) = Some(result);
    }
}

impl CallInput {
    /// Attach the call's inputs to `rc` (before the router runs the tool); the returned slot
    /// holds an `input_required` result when a tool asked for one.
    pub(crate) fn attach(
        request: &CallToolRequestParams,
        rc: &mut RequestContext<RoleServer>,
    ) -> PendingInput {
        // Only write tools confirm: read tools (big exports too) skip the copy.
        let writes = crate::tools::find_spec(&request.name)
            .is_some_and(|s| s.access == crate::tools::Access::Write);
        let input = CallInput {
            arguments: request
                .arguments
                .as_ref()
                .filter(|_| writes)
                .map(|a| Arc::new(a.clone())),
            input_responses: request.input_responses.clone().map(Arc::new),
            request_state: request.request_state.clone(),
            pending: PendingInput::default(),
        };
        let pending = input.pending.clone();
        rc.extensions.insert(input);
        pending
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Canonical JSON of a call's arguments (object keys sorted at every level, `dry_run` and
/// `confirm_token` left out), hashed: what a confirmation is bound to.
pub(crate) fn arguments_digest(arguments: Option<&JsonObject>) -> String {
    fn canonical(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), canonical(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    let mut args = arguments.cloned().unwrap_or_default();
    args.remove("dry_run");
    args.remove("confirm_token");
    let text = canonical(&Value::Object(args)).to_string();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What a sealed value is for: a confirm_token cannot stand in for a requestState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    ConfirmToken,
    RequestState,
}

/// Whose call, which tool, which arguments: the associated data of a sealed value.
#[derive(Debug, Clone)]
struct Binding {
    principal: String,
    tool: &'static str,
    digest: String,
}

impl Binding {
    fn associated_data(&self, purpose: Purpose) -> Vec<u8> {
        let p = match purpose {
            Purpose::ConfirmToken => "confirm_token",
            Purpose::RequestState => "request_state",
        };
        format!(
            "airtable-mcp/{p}\n{}\n{}\n{}",
            self.principal, self.tool, self.digest
        )
        .into_bytes()
    }
}

/// The sealed payload: expiry (unix ms) and a nonce for single use.
#[derive(Serialize, Deserialize)]
struct Sealed {
    exp: u64,
    n: String,
}

/// Why a sealed value was refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Forged, tampered with, or for another principal / tool / arguments / purpose.
    Mismatch,
    /// Older than [`CONFIRM_TTL`].
    Expired,
    /// Already redeemed.
    Used,
}

/// Seals and opens confirm tokens and request states; remembers the redeemed ones.
struct Sealer {
    codec: RequestStateCodec,
    /// Nonce → expiry (unix ms) of redeemed values, pruned as they expire.
    redeemed: Mutex<HashMap<String, u64>>,
}

impl Sealer {
    fn new(key: &[u8]) -> Result<Self, String> {
        let codec = RequestStateCodec::try_new(key).map_err(|e| {
            format!(
                "{}: {e} (give at least 32 random bytes, hex or base64)",
                env::AIRTABLE_MCP_STATE_KEY
            )
        })?;
        Ok(Sealer {
            codec,
            redeemed: Mutex::new(HashMap::new()),
        })
    }

    /// From `AIRTABLE_MCP_STATE_KEY` (hex or base64), else 32 random bytes.
    fn from_env() -> Result<Self, String> {
        match std::env::var(env::AIRTABLE_MCP_STATE_KEY) {
            Ok(v) if !v.trim().is_empty() => Sealer::new(&decode_key(v.trim())?),
            _ => Sealer::new(&rand::random::<[u8; 32]>()),
        }
    }

    fn seal(&self, purpose: Purpose, binding: &Binding, now: u64) -> String {
        let payload = Sealed {
            exp: now.saturating_add(CONFIRM_TTL.as_millis() as u64),
            n: hex::encode(rand::random::<[u8; 16]>()),
        };
        let ad = binding.associated_data(purpose);
        // The payload is two plain fields: serialising it cannot fail.
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        self.codec
            .seal_with(&bytes, &SealOptions::new().associated_data(&ad))
    }

    /// Check `sealed` for `binding` at `now` without redeeming it.
    fn open(
        &self,
        purpose: Purpose,
        binding: &Binding,
        sealed: &str,
        now: u64,
    ) -> Result<Sealed, Refusal> {
        let ad = binding.associated_data(purpose);
        let bytes = self
            .codec
            .open_with(sealed.trim(), &ad)
            .map_err(|_| Refusal::Mismatch)?;
        let payload: Sealed = serde_json::from_slice(&bytes).map_err(|_| Refusal::Mismatch)?;
        if now >= payload.exp {
            return Err(Refusal::Expired);
        }
        if lock(&self.redeemed).contains_key(&payload.n) {
            return Err(Refusal::Used);
        }
        Ok(payload)
    }

    /// Mark `payload` used; false when it already was.
    fn redeem(&self, payload: &Sealed, now: u64) -> bool {
        let mut used = lock(&self.redeemed);
        used.retain(|_, exp| *exp > now);
        used.insert(payload.n.clone(), payload.exp).is_none()
    }

    /// Open and redeem in one step.
    fn redeem_sealed(
        &self,
        purpose: Purpose,
        binding: &Binding,
        sealed: &str,
        now: u64,
    ) -> Result<(), Refusal> {
        let payload = self.open(purpose, binding, sealed, now)?;
        if self.redeem(&payload, now) {
            Ok(())
        } else {
            Err(Refusal::Used)
        }
    }
}

/// A key given as hex (64+ digits) or base64 (standard or URL-safe, padded or not).
fn decode_key(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    // Hex first: an even run of hex digits is read as hex.
    if let Ok(k) = hex::decode(text) {
        return Ok(k);
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(text).ok())
        .ok_or_else(|| {
            format!(
                "{} is neither hex nor base64: give at least 32 random bytes, e.g. the output of `openssl rand -hex 32`",
                env::AIRTABLE_MCP_STATE_KEY
            )
        })
}

/// The process's sealer (created on first use).
fn sealer() -> Result<&'static Sealer, ToolError> {
    static SEALER: OnceLock<Result<Sealer, String>> = OnceLock::new();
    SEALER
        .get_or_init(|| {
            let s = Sealer::from_env();
            if let Err(e) = &s {
                tracing::error!("confirmation state key: {e}");
            }
            s
        })
        .as_ref()
        .map_err(|e| {
            ToolError::Unavailable(format!(
                "Risky writes cannot be confirmed: {e}. Nothing was sent."
            ))
        })
}

/// Now, in unix milliseconds: the wall clock, plus how far tokio's clock was advanced in
/// tests (`tokio::time::advance`; zero otherwise), so expiry can be tested without waiting.
fn now_ms() -> u64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ahead = tokio::time::Instant::now()
        .into_std()
        .saturating_duration_since(std::time::Instant::now());
    u64::try_from((wall + ahead).as_millis()).unwrap_or(u64::MAX)
}

/// Whether the client declared form elicitation (an empty `elicitation: {}` means form).
fn can_elicit(rc: &RequestContext<RoleServer>) -> bool {
    rc.client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// Whether the request speaks 2026-07-28 or later (no server-to-client requests: MRTR).
fn stateless(rc: &RequestContext<RoleServer>) -> bool {
    rc.protocol_version().is_some_and(|v| !v.has_initialize())
}

/// The form: one required boolean `confirm`.
fn confirm_request(ask: &ConfirmAsk) -> Result<ElicitRequestParams, ToolError> {
    let schema = ElicitationSchema::builder()
        .required_bool_with(INPUT_KEY, |b| {
            b.title("Apply?").description(
                "Check to apply this change; leave unchecked or decline to send nothing.",
            )
        })
        .build()
        .map_err(|e| {
            ToolError::Invalid(format!(
                "internal error building the confirmation form: {e}"
            ))
        })?;
    Ok(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: ask.message(),
        requested_schema: schema,
    })
}

/// How the user answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accepted,
    Declined,
    Cancelled,
    /// Accepted the form but left `confirm` false.
    Unchecked,
}

impl Answer {
    fn of(result: &ElicitResult) -> Self {
        match result.action {
            ElicitationAction::Accept => {
                let yes = result
                    .content
                    .as_ref()
                    .and_then(|c| c.get(INPUT_KEY))
                    .is_some_and(|v| v.as_bool() == Some(true));
                if yes {
                    Answer::Accepted
                } else {
                    Answer::Unchecked
                }
            }
            ElicitationAction::Decline => Answer::Declined,
            // Cancel, and any action a later protocol adds: nothing is sent.
            _ => Answer::Cancelled,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Answer::Accepted => "accepted",
            Answer::Declined => "declined",
            Answer::Cancelled => "cancelled",
            Answer::Unchecked => "unchecked",
        }
    }

    /// Ok to send, or why not.
    fn verdict(self, ask: &ConfirmAsk) -> Result<(), ToolError> {
        tracing::info!(
            tool = ask.tool,
            count = ask.count,
            outcome = self.as_str(),
            "write confirmation"
        );
        match self {
            Answer::Accepted => Ok(()),
            Answer::Declined | Answer::Unchecked => Err(ToolError::NotConfirmed(format!(
                "{}: the user declined the confirmation: nothing was sent. Do not retry unless the user asks for it.",
                ask.summary
            ))),
            Answer::Cancelled => Err(ToolError::NotConfirmed(format!(
                "{}: the user cancelled the confirmation: nothing was sent. Do not retry unless the user asks for it.",
                ask.summary
            ))),
        }
    }
}

impl ToolContext {
    /// Whether the policy asks before this write: never with `--confirm never`; else for every
    /// write with a reason, and for writes of more than `--confirm-threshold` records.
    pub(crate) fn wants_confirmation(&self, reason: Option<ConfirmReason>, count: usize) -> bool {
        let o = self.options();
        o.confirm != ConfirmMode::Never && (reason.is_some() || count > o.confirm_threshold)
    }

    /// What this call's confirmation is bound to (None outside `call_tool`).
    fn binding(&self, rc: &RequestContext<RoleServer>, tool: &'static str) -> Option<Binding> {
        let input = rc.extensions.get::<CallInput>()?;
        Some(Binding {
            principal: self.principal().to_owned(),
            tool,
            digest: arguments_digest(input.arguments.as_deref()),
        })
    }

    /// Ask before sending `ask` (see the module docs). `Ok(())`: go on and send.
    pub(crate) async fn confirm(
        &self,
        rc: &RequestContext<RoleServer>,
        control: &WriteControl,
        ask: ConfirmAsk,
    ) -> Result<(), ToolError> {
        if !self.wants_confirmation(ask.reason, ask.count) {
            return Ok(());
        }
        if can_elicit(rc) {
            if stateless(rc) {
                return self.confirm_mrtr(rc, &ask);
            }
            return confirm_legacy(rc, &ask).await;
        }
        match self.options().confirm {
            ConfirmMode::Always => self.confirm_with_token(rc, control, &ask),
            ConfirmMode::Auto | ConfirmMode::Never => {
                tracing::info!(
                    tool = ask.tool,
                    count = ask.count,
                    outcome = "not_asked",
                    "write confirmation: the client cannot be asked (--confirm auto)"
                );
                Ok(())
            }
        }
    }

    /// `--confirm always`, client without elicitation: the call must carry a valid token.
    fn confirm_with_token(
        &self,
        rc: &RequestContext<RoleServer>,
        control: &WriteControl,
        ask: &ConfirmAsk,
    ) -> Result<(), ToolError> {
        let how = "Call again with dry_run=true, show the preview to the user, and once they agree repeat the same call (same arguments) with confirm_token set to the token the dry run returned; it is valid 5 minutes and once.";
        let Some(token) = control.confirm_token.as_deref() else {
            tracing::info!(
                tool = ask.tool,
                count = ask.count,
                outcome = "token_missing",
                "write confirmation"
            );
            return Err(ToolError::NotConfirmed(format!(
                "{}: this server asks for confirmation before this write (--confirm always) and this client cannot show a confirmation dialog, so nothing was sent. {how}",
                ask.summary
            )));
        };
        let binding = self.binding(rc, ask.tool).ok_or_else(|| {
            ToolError::NotConfirmed("The call's arguments are unknown, so its confirm_token cannot be checked: nothing was sent.".into())
        })?;
        let outcome = sealer()?.redeem_sealed(Purpose::ConfirmToken, &binding, token, now_ms());
        let why = match outcome {
            Ok(()) => {
                tracing::info!(
                    tool = ask.tool,
                    count = ask.count,
                    outcome = "token_accepted",
                    "write confirmation"
                );
                return Ok(());
            }
            Err(Refusal::Mismatch) => {
                "does not belong to this call (it was made for other arguments, another tool or another Airtable token, or it is malformed)"
            }
            Err(Refusal::Expired) => "has expired (tokens are valid 5 minutes)",
            Err(Refusal::Used) => "was already used (each token applies one write)",
        };
        tracing::info!(
            tool = ask.tool,
            count = ask.count,
            outcome = "token_refused",
            "write confirmation"
        );
        Err(ToolError::NotConfirmed(format!(
            "{}: the confirm_token {why}, so nothing was sent. {how}",
            ask.summary
        )))
    }

    /// 2026-07-28: ask through an `input_required` result, or read the retry's answer.
    fn confirm_mrtr(
        &self,
        rc: &RequestContext<RoleServer>,
        ask: &ConfirmAsk,
    ) -> Result<(), ToolError> {
        let input = rc.extensions.get::<CallInput>().ok_or_else(|| {
            ToolError::NotConfirmed(
                "This call cannot ask for confirmation here: nothing was sent.".into(),
            )
        })?;
        let binding = self.binding(rc, ask.tool).ok_or_else(|| {
            ToolError::NotConfirmed("The call's arguments are unknown: nothing was sent.".into())
        })?;
        let sealer = sealer()?;
        let now = now_ms();
        if let Some(state) = &input.request_state {
            match sealer.open(Purpose::RequestState, &binding, state, now) {
                Ok(payload) => {
                    let answer = input
                        .input_responses
                        .as_deref()
                        .and_then(|r| r.get(INPUT_KEY))
                        .and_then(|v| serde_json::from_value::<ElicitResult>(v.clone()).ok());
                    if let Some(answer) = answer {
                        if !sealer.redeem(&payload, now) {
                            return Err(ToolError::NotConfirmed(format!(
                                "{}: this confirmation was already used: nothing was sent.",
                                ask.summary
                            )));
                        }
                        return Answer::of(&answer).verdict(ask);
                    }
                    // No answer to our question: ask again.
                }
                // Run out while the user thought: ask again.
                Err(Refusal::Expired) => {}
                Err(Refusal::Used) => {
                    return Err(ToolError::NotConfirmed(format!(
                        "{}: this confirmation was already used: nothing was sent.",
                        ask.summary
                    )));
                }
                Err(Refusal::Mismatch) => {
                    tracing::info!(
                        tool = ask.tool,
                        outcome = "state_refused",
                        "write confirmation"
                    );
                    return Err(ToolError::NotConfirmed(format!(
                        "{}: the requestState of this retry does not belong to this call (other arguments, tool or token, or tampered with): nothing was sent.",
                        ask.summary
                    )));
                }
            }
        }
        let mut requests = InputRequests::new();
        requests.insert(
            INPUT_KEY.to_owned(),
            InputRequest::Elicitation(ElicitRequest::new(confirm_request(ask)?)),
        );
        let state = sealer.seal(Purpose::RequestState, &binding, now);
        input
            .pending
            .put(InputRequiredResult::new(Some(requests), Some(state)));
        tracing::info!(
            tool = ask.tool,
            count = ask.count,
            outcome = "asked",
            "write confirmation (input_required)"
        );
        Err(ToolError::InputRequired)
    }

    /// The token a dry run returns, bound to this call's tool and arguments, when the server
    /// would require one to apply them (`--confirm always`, client without elicitation).
    pub(crate) fn confirm_token(
        &self,
        rc: &RequestContext<RoleServer>,
        ask: &ConfirmAsk,
    ) -> Option<String> {
        if self.options().confirm != ConfirmMode::Always
            || !self.wants_confirmation(ask.reason, ask.count)
            || can_elicit(rc)
        {
            return None;
        }
        let binding = self.binding(rc, ask.tool)?;
        let sealer = sealer().ok()?;
        Some(sealer.seal(Purpose::ConfirmToken, &binding, now_ms()))
    }
}

/// Before 2026-07-28: an `elicitation/create` request, awaited (or the call's cancellation).
async fn confirm_legacy(
    rc: &RequestContext<RoleServer>,
    ask: &ConfirmAsk,
) -> Result<(), ToolError> {
    let params = confirm_request(ask)?;
    let asked = tokio::select! {
        r = rc.peer.create_elicitation(params) => r,
        () = rc.ct.cancelled() => {
            tracing::info!(tool = ask.tool, outcome = "call_cancelled", "write confirmation");
            return Err(ToolError::NotConfirmed(format!("{}: the call was cancelled while asking: nothing was sent.", ask.summary)));
        }
    };
    match asked {
        Ok(result) => Answer::of(&result).verdict(ask),
        Err(e) => {
            tracing::info!(
                tool = ask.tool,
                outcome = "ask_failed",
                "write confirmation: {e}"
            );
            Err(ToolError::NotConfirmed(format!(
                "{}: the client could not ask the user for confirmation ({e}): nothing was sent.",
                ask.summary
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> JsonObject {
        match v {
            Value::Object(m) => m,
            _ => JsonObject::new(),
        }
    }

    fn binding(principal: &str, digest: &str) -> Binding {
        Binding {
            principal: principal.into(),
            tool: "delete_record",
            digest: digest.into(),
        }
    }

    #[test]
    fn digest_ignores_key_order_and_the_controls() {
        let a = obj(json!({"base_id": "appA", "fields": {"x": 1, "y": [{"b": 2, "a": 1}]}}));
        let b = obj(
            json!({"fields": {"y": [{"a": 1, "b": 2}], "x": 1}, "dry_run": true, "base_id": "appA", "confirm_token": "t"}),
        );
        assert_eq!(arguments_digest(Some(&a)), arguments_digest(Some(&b)));
        let c = obj(json!({"base_id": "appA", "fields": {"x": 2, "y": [{"b": 2, "a": 1}]}}));
        assert_ne!(arguments_digest(Some(&a)), arguments_digest(Some(&c)));
        // Array order matters.
        let d = obj(json!({"ids": [1, 2]}));
        let e = obj(json!({"ids": [2, 1]}));
        assert_ne!(arguments_digest(Some(&d)), arguments_digest(Some(&e)));
    }

    #[test]
    fn tokens_bind_principal_tool_arguments_purpose_and_time() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let b = binding("p1", "d1");
        let t = s.seal(Purpose::ConfirmToken, &b, 1_000);
        let ok = s.open(Purpose::ConfirmToken, &b, &t, 1_000 + 299_999);
        assert!(ok.is_ok());
        assert_eq!(
            s.open(Purpose::ConfirmToken, &b, &t, 1_000 + 300_000).err(),
            Some(Refusal::Expired)
        );
        for other in [binding("p2", "d1"), binding("p1", "d2")] {
            assert_eq!(
                s.open(Purpose::ConfirmToken, &other, &t, 2_000).err(),
                Some(Refusal::Mismatch)
            );
        }
        let other_tool = Binding {
            tool: "update_record",
            ..b.clone()
        };
        assert_eq!(
            s.open(Purpose::ConfirmToken, &other_tool, &t, 2_000).err(),
            Some(Refusal::Mismatch)
        );
        assert_eq!(
            s.open(Purpose::RequestState, &b, &t, 2_000).err(),
            Some(Refusal::Mismatch)
        );
        // Another process key.
        let s2 = Sealer::new(&[8u8; 32]).unwrap();
        assert_eq!(
            s2.open(Purpose::ConfirmToken, &b, &t, 2_000).err(),
            Some(Refusal::Mismatch)
        );
        // Tampered.
        let mut bad = t.clone();
        bad.push('x');
        assert_eq!(
            s.open(Purpose::ConfirmToken, &b, &bad, 2_000).err(),
            Some(Refusal::Mismatch)
        );
        // Single use.
        assert_eq!(
            s.redeem_sealed(Purpose::ConfirmToken, &b, &t, 2_000),
            Ok(())
        );
        assert_eq!(
            s.redeem_sealed(Purpose::ConfirmToken, &b, &t, 3_000),
            Err(Refusal::Used)
        );
    }

    #[test]
    fn keys_are_hex_or_base64_and_long_enough() {
        let hex_key = "ab".repeat(32);
        assert_eq!(decode_key(&hex_key).unwrap(), vec![0xab; 32]);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode([5u8; 40]);
        assert_eq!(decode_key(&b64).unwrap(), vec![5u8; 40]);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfbu8; 33]);
        assert_eq!(decode_key(&url).unwrap(), vec![0xfb; 33]);
        assert!(decode_key("not a key!").is_err());
        let short = decode_key(&"ab".repeat(16)).unwrap();
        let err = Sealer::new(&short).err().unwrap();
        assert!(err.contains("AIRTABLE_MCP_STATE_KEY"), "{err}");
    }

    #[test]
    fn the_question_has_summary_count_sample_and_the_promise() {
        let ask = ConfirmAsk {
            tool: "batch_delete_records",
            summary: "Delete 7 records from Tasks".into(),
            count: 7,
            sample: (1..=7).map(|i| format!("T{i}")).collect(),
            reason: Some(ConfirmReason::Delete),
        };
        let m = ask.message();
        assert!(
            m.starts_with(
                "Delete 7 records from Tasks.\n7 records: T1, T2, T3, T4, T5, and 2 more."
            ),
            "{m}"
        );
        assert!(!m.contains("T6"));
        assert!(m.ends_with("Nothing is sent unless you accept."));
    }

    #[test]
    fn answers() {
        let yes =
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({"confirm": true}));
        let no =
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({"confirm": false}));
        assert_eq!(Answer::of(&yes), Answer::Accepted);
        assert_eq!(Answer::of(&no), Answer::Unchecked);
        assert_eq!(
            Answer::of(&ElicitResult::new(ElicitationAction::Accept)),
            Answer::Unchecked
        );
        assert_eq!(
            Answer::of(&ElicitResult::new(ElicitationAction::Decline)),
            Answer::Declined
        );
        assert_eq!(
            Answer::of(&ElicitResult::new(ElicitationAction::Cancel)),
            Answer::Cancelled
        );
    }
}
