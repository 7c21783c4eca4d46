//! `airtable::Error`: every way a call to the Airtable Web API can fail.
//!
//! Errors never contain the token: request headers are never formatted, and reqwest errors
//! are reduced to their kind and a URL without query.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

pub use super::ids::IdError;

/// The `type` of an Airtable error body, one variant per type in the reference (§5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiErrorKind {
    /// 401: no token, or an invalid one.
    AuthenticationRequired,
    /// 403: the token lacks a scope or access to the base, or the table/base does not exist.
    InvalidPermissionsOrModelNotFound,
    /// 403: the user or field/table permissions forbid the operation.
    InvalidPermissions,
    /// 404: unknown route, base or record.
    NotFound,
    /// 404 (object form): `MODEL_ID_NOT_FOUND`.
    ModelIdNotFound,
    /// 404 (legacy): `TABLE_NOT_FOUND`.
    TableNotFound,
    /// 422: generic parameter or body validation failure.
    InvalidRequestUnknown,
    /// 422: the body has neither `fields` nor `records`.
    InvalidRequestMissingFields,
    /// 422: a bad records array, or more than 10 records.
    InvalidRecords,
    /// 422: a field name or ID in `fields` does not exist.
    UnknownFieldName,
    /// 422: a value the field cannot accept (including writes to computed fields).
    InvalidValueForColumn,
    /// 422: a select option that does not exist (without typecast).
    InvalidMultipleChoiceOptions,
    /// 422: a record ID in a batch update does not exist.
    RowDoesNotExist,
    /// 422: `filterByFormula` does not parse or names unknown fields.
    InvalidFilterByFormula,
    /// 422: unknown view name.
    ViewNameNotFound,
    /// 422: unknown view ID.
    ViewIdNotFound,
    /// 422: the pagination offset expired.
    ListRecordsIteratorNotAvailable,
    /// 422: the pagination offset is malformed.
    InvalidOffsetValue,
    /// 422: page size out of range.
    InvalidPageSizeArgument,
    /// 429: too many requests.
    RateLimitReached,
    /// 429 (reported): the plan's monthly API quota is exhausted.
    PublicApiBillingLimitExceeded,
    /// 413: request body too large.
    RequestTooLarge,
    /// 503: "safe to retry".
    RetriableError,
    /// 500 and friends without a recognised type.
    ServerError,
    /// Any other type string, kept verbatim.
    Other(String),
}

impl ApiErrorKind {
    /// Map a wire `type` string.
    pub fn from_type(s: &str) -> Self {
        match s {
            "AUTHENTICATION_REQUIRED" => Self::AuthenticationRequired,
            "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND" => Self::InvalidPermissionsOrModelNotFound,
            "INVALID_PERMISSIONS" => Self::InvalidPermissions,
            "NOT_FOUND" => Self::NotFound,
            "MODEL_ID_NOT_FOUND" => Self::ModelIdNotFound,
            "TABLE_NOT_FOUND" => Self::TableNotFound,
            "INVALID_REQUEST_UNKNOWN" => Self::InvalidRequestUnknown,
            "INVALID_REQUEST_MISSING_FIELDS" => Self::InvalidRequestMissingFields,
            "INVALID_RECORDS" => Self::InvalidRecords,
            "UNKNOWN_FIELD_NAME" => Self::UnknownFieldName,
            "INVALID_VALUE_FOR_COLUMN" => Self::InvalidValueForColumn,
            "INVALID_MULTIPLE_CHOICE_OPTIONS" => Self::InvalidMultipleChoiceOptions,
            "ROW_DOES_NOT_EXIST" => Self::RowDoesNotExist,
            "INVALID_FILTER_BY_FORMULA" => Self::InvalidFilterByFormula,
            "VIEW_NAME_NOT_FOUND" => Self::ViewNameNotFound,
            "VIEW_ID_NOT_FOUND" => Self::ViewIdNotFound,
            "LIST_RECORDS_ITERATOR_NOT_AVAILABLE" => Self::ListRecordsIteratorNotAvailable,
            "INVALID_OFFSET_VALUE" => Self::InvalidOffsetValue,
            "INVALID_PAGE_SIZE_ARGUMENT" => Self::InvalidPageSizeArgument,
            "RATE_LIMIT_REACHED" => Self::RateLimitReached,
            "PUBLIC_API_BILLING_LIMIT_EXCEEDED" => Self::PublicApiBillingLimitExceeded,
            "REQUEST_TOO_LARGE" => Self::RequestTooLarge,
            "RETRIABLE_ERROR" => Self::RetriableError,
            "SERVER_ERROR" => Self::ServerError,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire `type` string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
            Self::InvalidPermissionsOrModelNotFound => "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
            Self::InvalidPermissions => "INVALID_PERMISSIONS",
            Self::NotFound => "NOT_FOUND",
            Self::ModelIdNotFound => "MODEL_ID_NOT_FOUND",
            Self::TableNotFound => "TABLE_NOT_FOUND",
            Self::InvalidRequestUnknown => "INVALID_REQUEST_UNKNOWN",
            Self::InvalidRequestMissingFields => "INVALID_REQUEST_MISSING_FIELDS",
            Self::InvalidRecords => "INVALID_RECORDS",
            Self::UnknownFieldName => "UNKNOWN_FIELD_NAME",
            Self::InvalidValueForColumn => "INVALID_VALUE_FOR_COLUMN",
            Self::InvalidMultipleChoiceOptions => "INVALID_MULTIPLE_CHOICE_OPTIONS",
            Self::RowDoesNotExist => "ROW_DOES_NOT_EXIST",
            Self::InvalidFilterByFormula => "INVALID_FILTER_BY_FORMULA",
            Self::ViewNameNotFound => "VIEW_NAME_NOT_FOUND",
            Self::ViewIdNotFound => "VIEW_ID_NOT_FOUND",
            Self::ListRecordsIteratorNotAvailable => "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
            Self::InvalidOffsetValue => "INVALID_OFFSET_VALUE",
            Self::InvalidPageSizeArgument => "INVALID_PAGE_SIZE_ARGUMENT",
            Self::RateLimitReached => "RATE_LIMIT_REACHED",
            Self::PublicApiBillingLimitExceeded => "PUBLIC_API_BILLING_LIMIT_EXCEEDED",
            Self::RequestTooLarge => "REQUEST_TOO_LARGE",
            Self::RetriableError => "RETRIABLE_ERROR",
            Self::ServerError => "SERVER_ERROR",
            Self::Other(s) => s,
        }
    }

    /// The kind to use when the body carries no type, from the status alone.
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => Self::AuthenticationRequired,
            403 => Self::InvalidPermissionsOrModelNotFound,
            404 => Self::NotFound,
            413 => Self::RequestTooLarge,
            422 => Self::InvalidRequestUnknown,
            429 => Self::RateLimitReached,
            503 => Self::RetriableError,
            s if s >= 500 => Self::ServerError,
            s => Self::Other(format!("HTTP_{s}")),
        }
    }
}

impl fmt::Display for ApiErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Both shapes of Airtable's error envelope: `{"error":"NOT_FOUND"}` and
/// `{"error":{"type":"…","message":"…"}}`.
#[derive(Debug, Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EnvelopeError {
    Bare(String),
    Object {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        message: Option<String>,
    },
}

/// Parse an error body. Returns the kind and message (possibly empty); falls back to the status.
pub(crate) fn parse_error_body(status: u16, body: &[u8]) -> (ApiErrorKind, String) {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope {
            error: EnvelopeError::Bare(t),
        }) => (ApiErrorKind::from_type(&t), String::new()),
        Ok(Envelope {
            error: EnvelopeError::Object { kind, message },
        }) => (ApiErrorKind::from_type(&kind), message.unwrap_or_default()),
        Err(_) => (ApiErrorKind::from_status(status), snippet(body)),
    }
}

/// The first 200 characters of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let mut out: String = s.chars().take(200).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Every way a call can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection failed or broke (DNS, refused, reset, TLS...).
    #[error("could not reach the Airtable API ({detail})")]
    Transport {
        /// What failed, without URL query or headers.
        detail: String,
        /// True when the connection was never established, so the request was not sent.
        connect: bool,
    },
    /// No answer within the configured timeout.
    #[error("the Airtable API did not answer within {0:?}")]
    Timeout(Duration),
    /// A response body that is not the JSON we expect.
    #[error(
        "unexpected response from the Airtable API (HTTP {status}): {detail}; body starts with: {snippet}"
    )]
    Decode {
        /// HTTP status.
        status: u16,
        /// The serde error.
        detail: String,
        /// The first 200 characters of the body.
        snippet: String,
    },
    /// Airtable answered with an error status and body.
    #[error("Airtable API error {status} {kind}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Api {
        /// HTTP status.
        status: u16,
        /// The error `type`.
        kind: ApiErrorKind,
        /// The error `message` (may be empty).
        message: String,
    },
    /// Still rate limited after every retry.
    #[error("Airtable rate limit reached (429) and still limited after {attempts} attempts")]
    RateLimited {
        /// Requests sent.
        attempts: u32,
    },
    /// A malformed ID.
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// Bad client configuration or bad input caught before sending.
    #[error("{0}")]
    Config(String),
    /// A write refused before sending: the client is read-only (the server runs with
    /// `--read-only`).
    #[error(
        "refused {method} {path}: this server is read-only (--read-only), so nothing is written to Airtable"
    )]
    ReadOnly {
        /// The HTTP method refused.
        method: String,
        /// The API path (no query).
        path: String,
    },
    /// Downloading an attachment's file failed (not http(s), HTTP error, over the size cap,
    /// connection).
    #[error("could not download the attachment: {detail}")]
    Download {
        /// What failed (no URL query: attachment URLs carry signatures).
        detail: String,
        /// The HTTP status, when the host answered.
        status: Option<u16>,
    },
    /// The token provider (an OAuth grant) could not supply a token (refresh refused...).
    #[error("no usable Airtable token: {source}")]
    Token {
        /// The provider's error (its message says what to do).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A create failed in a way that does not tell whether Airtable applied it; it was not retried.
    #[error(
        "the write may or may not have been applied by Airtable ({source}); it was not retried to avoid duplicates — check the table before writing again"
    )]
    Ambiguous {
        /// The underlying failure.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The Airtable error type, for `Api` (and `Ambiguous` wrapping one) errors.
    pub fn kind(&self) -> Option<&ApiErrorKind> {
        match self {
            Error::Api { kind, .. } => Some(kind),
            Error::RateLimited { .. } => Some(&ApiErrorKind::RateLimitReached),
            Error::Ambiguous { source } => source.kind(),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(429),
            Error::Ambiguous { source } => source.status(),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (transient failures). An ambiguous write is not
    /// retryable: it may have been applied.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Timeout(_) | Error::RateLimited { .. } => true,
            Error::Api { status, kind, .. } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
                    || matches!(kind, ApiErrorKind::ListRecordsIteratorNotAvailable)
            }
            _ => false,
        }
    }

    /// Whether the failed request may have been applied by Airtable (the request reached the
    /// server and no answer proves otherwise).
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            Error::Ambiguous { .. } | Error::Timeout(_) => true,
            Error::Transport { connect, .. } => !connect,
            Error::Decode { status, .. } => (200..300).contains(status) || *status >= 500,
            Error::Api { status, kind, .. } => {
                *status >= 500 && !(*status == 503 && *kind == ApiErrorKind::RetriableError)
            }
            _ => false,
        }
    }

    /// One sentence telling a human or a model what to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::Transport { connect: true, .. } => {
                "Check the network and the API URL (AIRTABLE_API_URL / --api-url); the request was not sent, so it is safe to retry."
            }
            Error::Transport { .. } => {
                "The connection broke; retry reads, and check the table before repeating a create."
            }
            Error::Timeout(_) => {
                "Airtable is slow or unreachable; retry later, ask for fewer records or fields, and check the table before repeating a create."
            }
            Error::Decode { .. } => {
                "The API URL may not point at the Airtable API (check AIRTABLE_API_URL); otherwise report this as a bug."
            }
            Error::RateLimited { .. } => {
                "Airtable allows 5 requests per second per base and locks the base for 30 s after a breach; wait and retry with fewer requests."
            }
            Error::InvalidId(_) => {
                "Use the exact ID from list_bases / list_tables / a record listing (prefix + 14 letters or digits), or the table name where names are accepted."
            }
            Error::Config(_) => "Fix the configuration or the input named in the message.",
            Error::ReadOnly { .. } => {
                "The server runs with --read-only: only reads are allowed. Ask the user to restart it without --read-only (or AIRTABLE_MCP_READ_ONLY) to write."
            }
            Error::Ambiguous { .. } => {
                "List the table (e.g. filter on a unique field) to see whether the records exist before writing them again; never blindly retry."
            }
            Error::Api { kind, status, .. } => hint_for(kind, *status),
            Error::Token { .. } => {
                "Sign in again as the message says (`airtable-mcp auth login --oauth`), then restart the server."
            }
            Error::Download { .. } => {
                "Attachment URLs expire after about 2 hours: read the record again (get_attachments) for fresh ones, then retry."
            }
        }
    }
}

fn hint_for(kind: &ApiErrorKind, status: u16) -> &'static str {
    use ApiErrorKind as K;
    match kind {
        K::AuthenticationRequired => {
            "Set a valid Airtable personal access token with `airtable-mcp auth login` or the AIRTABLE_API_KEY environment variable (create one at https://airtable.com/create/tokens)."
        }
        K::InvalidPermissionsOrModelNotFound => {
            "Check the base and table IDs or names (list_bases, list_tables), and that the token has the needed scope (data.records:read/write, schema.bases:read/write, data.recordComments:read/write) and access to this base in its settings."
        }
        K::InvalidPermissions => {
            "The user or token may not do this here (the table or field limits who can edit, or the scope data.records:write / schema.bases:write is missing); use another field or table, or ask a base owner."
        }
        K::NotFound | K::ModelIdNotFound | K::TableNotFound => {
            "The base, table or record does not exist or is not shared with the token; check the ID with list_bases, list_tables or a record listing."
        }
        K::UnknownFieldName => {
            "A field name is not in the table; check exact names (case and spaces) with the table schema, or use field IDs."
        }
        K::InvalidValueForColumn => {
            "A value does not fit its field type, or the field is computed (formula, rollup, lookup, created time...) and cannot be written; check the schema, or set typecast to convert strings."
        }
        K::InvalidMultipleChoiceOptions => {
            "A select option does not exist; use one of the field's choices, or set typecast=true to create it (needs creator permission)."
        }
        K::RowDoesNotExist => {
            "A record ID does not exist in this table; list the records to get current IDs."
        }
        K::InvalidFilterByFormula => {
            "Fix the formula: wrap field names in braces like {Field Name}, quote strings, and check function names and parentheses."
        }
        K::InvalidRecords | K::InvalidRequestMissingFields => {
            "Send at most 10 records per request, each as {\"fields\": {...}} (with \"id\" for updates)."
        }
        K::InvalidRequestUnknown | K::InvalidPageSizeArgument => {
            "A parameter is invalid (page size 1-100, sort fields, cell format needs time zone and locale); check the request."
        }
        K::ViewNameNotFound | K::ViewIdNotFound => {
            "The view does not exist in this table; check its name or ID in the table schema."
        }
        K::ListRecordsIteratorNotAvailable | K::InvalidOffsetValue => {
            "The page cursor expired or is invalid; restart the listing from the first page."
        }
        K::RateLimitReached => {
            "Airtable allows 5 requests per second per base and locks the base for 30 s after a breach; wait and retry with fewer requests."
        }
        K::PublicApiBillingLimitExceeded => {
            "The workspace's monthly API call quota is used up; wait for the next month or upgrade the Airtable plan."
        }
        K::RequestTooLarge => "The request is too large; send fewer records or smaller values.",
        K::RetriableError | K::ServerError => {
            "Airtable had a temporary problem; retry later, and check the table before repeating a create."
        }
        K::Other(_) if status == 401 => {
            "Set a valid Airtable personal access token with `airtable-mcp auth login` or the AIRTABLE_API_KEY environment variable."
        }
        K::Other(_) if status == 403 => {
            "The token lacks a scope or access to this base; check the token's scopes and bases at https://airtable.com/create/tokens."
        }
        K::Other(_) if status >= 500 => "Airtable had a temporary problem; retry later.",
        K::Other(_) => "Check the request against the message; the Airtable API rejected it.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_envelopes() {
        let (k, m) = parse_error_body(404, br#"{"error":"NOT_FOUND"}"#);
        assert_eq!(k, ApiErrorKind::NotFound);
        assert_eq!(m, "");
        let (k, m) = parse_error_body(
            422,
            br#"{"error":{"type":"UNKNOWN_FIELD_NAME","message":"Unknown field name: \"Notes\""}}"#,
        );
        assert_eq!(k, ApiErrorKind::UnknownFieldName);
        assert_eq!(m, "Unknown field name: \"Notes\"");
        let (k, _) = parse_error_body(
            422,
            br#"{"error":{"type":"LIST_RECORDS_ITERATOR_NOT_AVAILABLE"}}"#,
        );
        assert_eq!(k, ApiErrorKind::ListRecordsIteratorNotAvailable);
        let (k, m) = parse_error_body(502, b"<html>bad gateway</html>");
        assert_eq!(k, ApiErrorKind::ServerError);
        assert!(m.contains("bad gateway"));
        let (k, _) = parse_error_body(422, br#"{"error":{"type":"SOMETHING_NEW"}}"#);
        assert_eq!(k, ApiErrorKind::Other("SOMETHING_NEW".into()));
    }

    #[test]
    fn kinds_round_trip() {
        for t in [
            "AUTHENTICATION_REQUIRED",
            "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
            "ROW_DOES_NOT_EXIST",
            "RATE_LIMIT_REACHED",
            "X_Y",
        ] {
            assert_eq!(ApiErrorKind::from_type(t).as_str(), t);
        }
    }

    #[test]
    fn ambiguity_rules() {
        let e503 = Error::Api {
            status: 503,
            kind: ApiErrorKind::RetriableError,
            message: String::new(),
        };
        assert!(!e503.may_have_been_applied());
        let e500 = Error::Api {
            status: 500,
            kind: ApiErrorKind::ServerError,
            message: String::new(),
        };
        assert!(e500.may_have_been_applied());
        assert!(
            !Error::Transport {
                detail: String::new(),
                connect: true
            }
            .may_have_been_applied()
        );
        assert!(Error::Timeout(Duration::from_secs(1)).may_have_been_applied());
    }
}
