//! Record comments.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::airtable::ids::CommentId;

/// A comment on a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// Comment ID.
    pub id: CommentId,
    /// Who wrote it.
    pub author: CommentAuthor,
    /// Text; mentions look like `@[usrXXXXXXXXXXXXXX]`.
    pub text: String,
    /// ISO-8601 creation time.
    pub created_time: String,
    /// ISO-8601 time of the last edit; `None` until edited.
    #[serde(default)]
    pub last_updated_time: Option<String>,
    /// The comment this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_comment_id: Option<CommentId>,
    /// Mentioned users keyed by user ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentioned: Option<Value>,
    /// Reactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions: Option<Value>,
}

/// The author of a comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentAuthor {
    /// User ID (`usr…`), kept as a string to accept any author kind.
    pub id: String,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One page of comments, newest first.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CommentPage {
    /// Comments.
    pub comments: Vec<Comment>,
    /// Cursor for the next page (absent or null on the last page).
    #[serde(default)]
    pub offset: Option<String>,
}
