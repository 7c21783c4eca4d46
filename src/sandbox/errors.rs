//! Airtable's error bodies and statuses, as the sandbox answers them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answered over HTTP with Airtable's status and JSON body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// `{"error": {"type": T, "message": M}}`.
    pub fn typed(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({"error": {"type": kind, "message": message.into()}}),
            retry_after: None,
        }
    }

    /// 422 with the given type.
    pub fn unprocessable(kind: &str, message: impl Into<String>) -> Self {
        Self::typed(StatusCode::UNPROCESSABLE_ENTITY, kind, message)
    }

    /// 404 `{"error":"NOT_FOUND"}` (unknown route, base or record).
    pub fn not_found() -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: json!({"error": "NOT_FOUND"}),
            retry_after: None,
        }
    }

    pub fn auth_required() -> Self {
        Self::typed(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_REQUIRED",
            "Authentication required",
        )
    }

    /// 403 for a table (or a base in the meta API) the token cannot see.
    pub fn model_not_found() -> Self {
        Self::typed(
            StatusCode::FORBIDDEN,
            "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
            "Invalid permissions, or the requested model was not found. Check that both your user and your token have the required permissions, and that the model names and/or ids are correct.",
        )
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::typed(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_REACHED",
            "Rate limit exceeded. Please try again later",
        );
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }

    pub fn retriable() -> Self {
        Self::typed(
            StatusCode::SERVICE_UNAVAILABLE,
            "RETRIABLE_ERROR",
            "Server encountered an error while processing your request, and it is safe to retry the request",
        )
    }

    /// 422 for a request whose formulas spent the evaluation budget (the sandbox's own type;
    /// Airtable has no such limit).
    pub fn over_budget(e: &crate::formula::BudgetExceeded) -> Self {
        Self::unprocessable(
            "FORMULA_EVALUATION_BUDGET_EXCEEDED",
            format!("The sandbox stopped evaluating this request's formulas: {e}"),
        )
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::unprocessable("INVALID_REQUEST_UNKNOWN", message)
    }

    pub fn bad_json(detail: &str) -> Self {
        Self::typed(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_UNKNOWN",
            format!("Invalid request: the body could not be parsed as JSON ({detail})"),
        )
    }

    pub fn unknown_field(name: &str) -> Self {
        Self::unprocessable(
            "UNKNOWN_FIELD_NAME",
            format!("Unknown field name: \"{name}\""),
        )
    }

    pub fn invalid_value(field: &str) -> Self {
        Self::unprocessable(
            "INVALID_VALUE_FOR_COLUMN",
            format!("Field \"{field}\" cannot accept the provided value"),
        )
    }

    pub fn invalid_value_msg(message: impl Into<String>) -> Self {
        Self::unprocessable("INVALID_VALUE_FOR_COLUMN", message)
    }

    pub fn computed_field(field: &str) -> Self {
        Self::unprocessable(
            "INVALID_VALUE_FOR_COLUMN",
            format!("Field \"{field}\" cannot accept a value because the field is computed"),
        )
    }

    pub fn bad_choice(choice: &str) -> Self {
        Self::unprocessable(
            "INVALID_MULTIPLE_CHOICE_OPTIONS",
            format!("Insufficient permissions to create new select option \"\"{choice}\"\""),
        )
    }

    pub fn row_missing(id: &str) -> Self {
        Self::unprocessable(
            "ROW_DOES_NOT_EXIST",
            format!("Record ID {id} does not exist in this table"),
        )
    }

    pub fn invalid_records(message: impl Into<String>) -> Self {
        Self::unprocessable("INVALID_RECORDS", message)
    }

    pub fn filter(message: impl Into<String>) -> Self {
        Self::unprocessable("INVALID_FILTER_BY_FORMULA", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::typed(StatusCode::INTERNAL_SERVER_ERROR, "SERVER_ERROR", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        tracing::error!(error = %e, "sandbox storage error");
        ApiError::internal(format!("sandbox storage error: {e}"))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        tracing::error!(error = %e, "sandbox stored JSON is corrupt");
        ApiError::internal(format!("sandbox stored data is corrupt: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
