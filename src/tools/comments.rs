//! Record comments: list_comments, create_comment.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::airtable::{Comment, RecordId};
use crate::tools::ToolError;
use crate::tools::bases::primary_name;
use crate::tools::confirm::ConfirmAsk;
use crate::tools::handler::AirtableServer;
use crate::tools::journal::{Change, NewWrite};
use crate::tools::params::opt_nonempty;
use crate::tools::result::scope;
use crate::tools::writes::{JournalNote, WriteControl, primary_label};

/// Parameters of list_comments.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListCommentsParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Record ID (rec...).
    pub(crate) record_id: String,
    /// The `offset` cursor from the previous result, for older comments.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) offset: Option<String>,
}

/// Parameters of create_comment.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CreateCommentParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Record ID (rec...) to comment on.
    pub(crate) record_id: String,
    /// The comment text. Mention a user with @[usrXXXXXXXXXXXXXX].
    pub(crate) text: String,
    #[serde(flatten)]
    pub(crate) control: WriteControl,
}

/// A comment.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CommentOut {
    /// Comment ID (com...).
    pub(crate) id: String,
    /// Author's name or email.
    pub(crate) author: String,
    /// The text.
    pub(crate) text: String,
    /// When it was written (ISO 8601).
    pub(crate) created_time: String,
}

impl CommentOut {
    fn from(c: Comment) -> Self {
        let author = c
            .author
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| c.author.email.clone())
            .unwrap_or_else(|| c.author.id.clone());
        CommentOut {
            id: c.id.to_string(),
            author,
            text: c.text,
            created_time: c.created_time,
        }
    }
}

/// Result of list_comments.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CommentsOutput {
    /// Comments, newest first.
    pub(crate) comments: Vec<CommentOut>,
    /// True when older comments exist: call again with `offset`.
    pub(crate) has_more: bool,
    /// Cursor for older comments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offset: Option<String>,
}

/// What create_comment would add (dry_run). Nothing was sent.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CommentPreview {
    /// Always true: nothing was written.
    pub(crate) dry_run: bool,
    /// One line: what would happen.
    pub(crate) summary: String,
    /// The record commented on (rec...).
    pub(crate) record_id: String,
    /// The record's primary field value, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<String>,
    /// The comment text that would be posted.
    pub(crate) text: String,
    /// Pass it back with the same arguments (and dry_run false) to apply, when the server
    /// asks for confirmation and the client cannot show a dialog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirm_token: Option<String>,
    /// What to do next.
    pub(crate) note: String,
}

/// Result of create_comment.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CommentCreated {
    /// The new comment (absent on dry_run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) comment: Option<CommentOut>,
    /// dry_run only: the comment that would be added. Nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preview: Option<CommentPreview>,
    #[serde(flatten)]
    pub(crate) journal: JournalNote,
}

fn record_id(s: &str) -> Result<RecordId, ToolError> {
    s.trim().parse::<RecordId>().map_err(|e| {
        let message = format!("{e}. Record IDs come from get_records.");
        ToolError::invalid_id(e, message)
    })
}

#[tool_router(router = comments_router, vis = "pub(crate)")]
impl AirtableServer {
    #[tool(
        name = "list_comments",
        title = "List comments",
        description = "List a record's comments, newest first (100 per call; follow offset while has_more).",
        annotations(
            title = "List comments",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn list_comments(
        &self,
        Parameters(p): Parameters<ListCommentsParams>,
    ) -> Result<Json<CommentsOutput>, ToolError> {
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let rec = record_id(&p.record_id)?;
        let page = self
            .ctx
            .client()?
            .list_comments(&ctx.base, &ctx.table_ref, &rec, Some(100), p.offset)
            .await
            .map_err(|e| {
                ToolError::api("list comments", ctx.base.as_ref(), scope::COMMENTS_READ, e)
            })?;
        Ok(Json(CommentsOutput {
            comments: page.comments.into_iter().map(CommentOut::from).collect(),
            has_more: page.offset.is_some(),
            offset: page.offset,
        }))
    }

    #[tool(
        name = "create_comment",
        title = "Create comment",
        description = "Add a comment to a record. dry_run=true shows the record and the text and posts nothing. Journaled: undo_write deletes the comment.",
        annotations(
            title = "Create comment",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub(crate) async fn create_comment(
        &self,
        Parameters(p): Parameters<CreateCommentParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<Json<CommentCreated>, ToolError> {
        self.ctx.require_write("create_comment")?;
        if p.text.trim().is_empty() {
            return Err(ToolError::Invalid(
                "text is empty: give the comment text.".into(),
            ));
        }
        let ctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
        let table = ctx.table();
        let rec = record_id(&p.record_id)?;
        let table_name = table.map_or_else(|| ctx.table_ref.clone(), |t| t.name.clone());
        // The record by its primary field (and a clear error when it does not exist).
        let primary: Vec<String> = table.and_then(primary_name).into_iter().collect();
        let record = self.ctx.fetch_record(&ctx, &rec, Some(&primary)).await?;
        let label = primary_label(table, &record.fields);
        let who = label
            .as_ref()
            .map_or_else(|| rec.to_string(), |l| format!("{l:?} ({rec})"));
        let ask = ConfirmAsk {
            tool: "create_comment",
            summary: format!("Comment on record {who} in {table_name}"),
            count: 1,
            sample: vec![label.clone().unwrap_or_else(|| rec.to_string())],
            reason: None,
        };
        if p.control.dry_run {
            let preview = CommentPreview {
                dry_run: true,
                summary: ask.summary.clone(),
                record_id: rec.to_string(),
                label,
                text: p.text,
                confirm_token: self.ctx.confirm_token(&rc, &ask),
                note: "Nothing was sent. Call again without dry_run to post it; undo_write can delete it afterwards.".to_owned(),
            };
            return Ok(Json(CommentCreated {
                comment: None,
                preview: Some(preview),
                journal: JournalNote::default(),
            }));
        }
        self.ctx.confirm(&rc, &p.control, ask).await?;
        let c = self
            .ctx
            .client()?
            .create_comment(&ctx.base, &ctx.table_ref, &rec, &p.text)
            .await
            .map_err(|e| {
                ToolError::api(
                    "create the comment",
                    ctx.base.as_ref(),
                    scope::COMMENTS_WRITE,
                    e,
                )
            })?;
        let journal = self
            .ctx
            .journal_write(NewWrite {
                tool: "create_comment".to_owned(),
                base_id: ctx.base.to_string(),
                table_id: Some(ctx.table_ref.clone()),
                table_name: Some(table_name.clone()),
                summary: format!("commented on record {rec} in {table_name}"),
                changes: vec![Change::CommentCreated {
                    table_id: ctx.table_ref.clone(),
                    record_id: rec.to_string(),
                    comment_id: c.id.to_string(),
                }],
                complete: true,
                undo_of: None,
                resume: None,
            })
            .await;
        Ok(Json(CommentCreated {
            comment: Some(CommentOut::from(c)),
            preview: None,
            journal,
        }))
    }
}
