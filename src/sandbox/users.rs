//! The sandbox's users, who owns which base, and what a token may do (scopes).
//!
//! Two users are built in: [`SANDBOX_USER_ID`] (the PAT token's user; owns every base created
//! with the PAT and the demo base) and [`SECOND_USER_ID`], who owns one small base
//! ([`SECOND_USER_BASE_ID`], seeded with the demo) and sees nothing else. OAuth access tokens
//! belong to the user chosen at authorization (`login_hint`); the PAT has every scope.

use axum::http::Method;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{SANDBOX_USER_EMAIL, SANDBOX_USER_ID, SANDBOX_USER_NAME};

/// The second built-in user (OAuth only: the PAT is always the first user).
pub const SECOND_USER_ID: &str = "usrSandboxUser002";
pub const SECOND_USER_EMAIL: &str = "second@example.com";
pub const SECOND_USER_NAME: &str = "Second User";
/// The base the second user owns (seeded together with the demo base).
pub const SECOND_USER_BASE_ID: &str = "appSecondUser0002";

/// A sandbox user.
#[derive(Debug, PartialEq, Eq)]
pub struct User {
    pub id: &'static str,
    pub email: &'static str,
    pub name: &'static str,
}

/// Every user, the first being the default (and the PAT's).
pub const USERS: &[User] = &[
    User {
        id: SANDBOX_USER_ID,
        email: SANDBOX_USER_EMAIL,
        name: SANDBOX_USER_NAME,
    },
    User {
        id: SECOND_USER_ID,
        email: SECOND_USER_EMAIL,
        name: SECOND_USER_NAME,
    },
];

/// The user with this email or ID (case-insensitive email).
pub fn find(hint: &str) -> Option<&'static User> {
    USERS
        .iter()
        .find(|u| u.id == hint || u.email.eq_ignore_ascii_case(hint))
}

/// The default user (the PAT's).
pub fn first() -> &'static User {
    &USERS[0]
}

/// Every scope the sandbox knows (Airtable's list, minus enterprise scopes).
pub const SCOPES: &[&str] = &[
    "data.records:read",
    "data.records:write",
    "data.recordComments:read",
    "data.recordComments:write",
    "schema.bases:read",
    "schema.bases:write",
    "webhook:manage",
    "block:manage",
    "user.email:read",
];

/// Who is calling: a user and, for OAuth tokens, the granted scopes (`None`: the PAT, which
/// may do everything).
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: &'static User,
    pub scopes: Option<Vec<String>>,
}

impl Identity {
    /// The PAT's identity.
    pub fn pat() -> Identity {
        Identity {
            user: first(),
            scopes: None,
        }
    }

    pub fn allows(&self, scope: &str) -> bool {
        self.scopes
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == scope))
    }

    /// `GET /v0/meta/whoami`: id and email, and `scopes` for OAuth tokens.
    pub fn whoami(&self) -> Value {
        let mut v = json!({"id": self.user.id, "email": self.user.email});
        if let Some(s) = &self.scopes {
            v["scopes"] = json!(s);
        }
        v
    }
}

/// The scope a request needs (None: any token will do).
pub fn required_scope(method: &Method, path: &str) -> Option<&'static str> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let read = *method == Method::GET || *method == Method::HEAD;
    match segs.as_slice() {
        ["v0", "meta", "whoami"] => None,
        ["v0", "meta", ..] => Some(if read {
            "schema.bases:read"
        } else {
            "schema.bases:write"
        }),
        ["v0", _, _, _, "comments", ..] => Some(if read {
            "data.recordComments:read"
        } else {
            "data.recordComments:write"
        }),
        ["v0", _, _, "listRecords"] => Some("data.records:read"),
        ["v0", ..] => Some(if read {
            "data.records:read"
        } else {
            "data.records:write"
        }),
        _ => None,
    }
}

/// 403 for a token without the scope a route needs.
pub fn missing_scope(scope: &str) -> ApiError {
    ApiError::typed(
        axum::http::StatusCode::FORBIDDEN,
        "INVALID_PERMISSIONS",
        format!(
            "You are not permitted to perform this operation because your token lacks the {scope} scope"
        ),
    )
}

/// The second user's base as a seed document: one small table.
pub fn second_user_seed() -> Value {
    json!({"bases": [{
        "id": SECOND_USER_BASE_ID,
        "name": "Second user's notes",
        "tables": [{
            "name": "Notes",
            "fields": [
                {"name": "Title", "type": "singleLineText"},
                {"name": "Body", "type": "multilineText"}
            ],
            "records": [
                {"Title": "Private note", "Body": "Only the second user sees this."},
                {"Title": "Groceries", "Body": "Milk, bread"}
            ]
        }]
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_per_route() {
        let g = Method::GET;
        let p = Method::POST;
        assert_eq!(required_scope(&g, "/v0/meta/whoami"), None);
        assert_eq!(
            required_scope(&g, "/v0/meta/bases"),
            Some("schema.bases:read")
        );
        assert_eq!(
            required_scope(&p, "/v0/meta/bases/app1/tables"),
            Some("schema.bases:write")
        );
        assert_eq!(
            required_scope(&g, "/v0/app1/tbl1"),
            Some("data.records:read")
        );
        assert_eq!(
            required_scope(&p, "/v0/app1/tbl1/listRecords"),
            Some("data.records:read")
        );
        assert_eq!(
            required_scope(&Method::PATCH, "/v0/app1/tbl1/rec1"),
            Some("data.records:write")
        );
        assert_eq!(
            required_scope(&p, "/v0/app1/tbl1/rec1/comments"),
            Some("data.recordComments:write")
        );
        assert_eq!(
            find("SECOND@example.com").map(|u| u.id),
            Some(SECOND_USER_ID)
        );
    }
}
