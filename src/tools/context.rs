//! The tool context: everything a tool needs besides its parameters.
//!
//! A [`ToolContext`] owns the Airtable client (or the reason there is none), the server
//! options, and the base-schema cache. It resolves bases (ID + `--bases` allow-list) and tables
//! (ID or name, with suggestions), maps field references to names, reads records with the one
//! pager ([`ToolContext::read_records`]) and runs batch writes ([`ToolContext::run_batch`]).

use std::sync::Arc;

use crate::airtable::{
    self, BaseId, BaseSchema, Client, ListQuery, RawRecordPage, Record, RecordPage, Table,
};
use crate::tools::ToolError;
use crate::tools::cache::SchemaCache;
use crate::tools::handler::{ServerOptions, TokenProblem};
use crate::tools::journal::{Journal, JournalError, JournalSlot, principal_of};
use crate::tools::progress::Progress;
use crate::tools::resources::Watchers;
use crate::tools::result::scope;
use crate::tools::validation::{self, resolve_table};
use secrecy::ExposeSecret;

/// What the tools use: client, options and schema cache (one per session token).
#[derive(Clone)]
pub(crate) struct ToolContext {
    client: Result<Client, TokenProblem>,
    options: Arc<ServerOptions>,
    cache: Arc<SchemaCache>,
    journal: JournalSlot,
    /// Whose writes these are in the journal: the fingerprint of the Airtable token.
    principal: Arc<str>,
    /// Sessions subscribed to schema resources (told when a schema tool changes a base).
    watchers: Arc<Watchers>,
}

/// A resolved table: the reference to send (ID when the schema is known) and the schema.
pub(crate) struct TableCtx {
    pub(crate) base: BaseId,
    pub(crate) table_ref: String,
    pub(crate) schema: Option<Arc<BaseSchema>>,
}

impl TableCtx {
    /// The table's schema, when the base schema could be read.
    pub(crate) fn table(&self) -> Option<&Table> {
        let schema = self.schema.as_ref()?;
        schema
            .tables
            .iter()
            .find(|t| t.id.as_ref() == self.table_ref)
    }
}

impl ToolContext {
    pub(crate) fn new(
        client: Result<Client, TokenProblem>,
        options: Arc<ServerOptions>,
        cache: Arc<SchemaCache>,
        journal: JournalSlot,
    ) -> Self {
        let principal = match &client {
            // The token this client sends: an HTTP session's own (X-Airtable-Token).
            Ok(c) => principal_of(c.token().expose_secret()),
            Err(_) => String::new(),
        };
        ToolContext {
            client,
            options,
            cache,
            journal,
            principal: principal.into(),
            watchers: Arc::default(),
        }
    }

    /// This context telling `watchers` about schema changes (the server's shared set).
    pub(crate) fn with_watchers(mut self, watchers: Arc<Watchers>) -> Self {
        self.watchers = watchers;
        self
    }

    /// The subscribers to schema resources.
    pub(crate) fn watchers(&self) -> &Arc<Watchers> {
        &self.watchers
    }

    /// The principal as shared text (what subscriptions are keyed by).
    pub(crate) fn principal_arc(&self) -> Arc<str> {
        self.principal.clone()
    }

    /// The server options.
    pub(crate) fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The write journal: `Ok(None)` when off (`--no-journal`), `Err` when it failed to open.
    /// Opened on first use (see [`JournalSlot`]).
    pub(crate) fn journal(&self) -> Result<Option<&Arc<Journal>>, &JournalError> {
        self.journal.get()
    }

    /// The principal (token fingerprint) this context journals writes for.
    pub(crate) fn principal(&self) -> &str {
        &self.principal
    }

    /// The client, or the token problem as a tool error.
    pub(crate) fn client(&self) -> Result<&Client, ToolError> {
        self.client
            .as_ref()
            .map_err(|p| ToolError::Unavailable(p.message().to_owned()))
    }

    /// The byte budget of one result.
    pub(crate) fn budget(&self) -> usize {
        self.options.result_budget
    }

    /// Parse a base ID and check it against the allow-list.
    pub(crate) fn base(&self, base_id: &str) -> Result<BaseId, ToolError> {
        let base = base_id.trim().parse::<BaseId>().map_err(|e| {
            let message =
                format!("{e}. Call list_bases to get the IDs of the bases this token can see.");
            ToolError::invalid_id(e, message)
        })?;
        if let Some(allowed) = &self.options.allowed_bases
            && !allowed.contains(base.as_ref())
        {
            return Err(ToolError::BaseNotAllowed {
                base: base.to_string(),
                allowed: allowed.iter().cloned().collect::<Vec<_>>().join(","),
            });
        }
        Ok(base)
    }

    /// Whether a base may be shown (list_bases filters with it).
    pub(crate) fn base_visible(&self, base: &str) -> bool {
        self.options
            .allowed_bases
            .as_ref()
            .is_none_or(|a| a.contains(base))
    }

    /// Refuse a write in read-only mode (second line of defence after the router filter).
    pub(crate) fn require_write(&self, tool: &str) -> Result<(), ToolError> {
        if self.options.read_only {
            return Err(ToolError::ReadOnly {
                tool: tool.to_owned(),
            });
        }
        Ok(())
    }

    /// The base schema, from the cache when fresh.
    pub(crate) async fn schema(&self, base: &BaseId) -> Result<Arc<BaseSchema>, ToolError> {
        let client = self.client()?;
        self.cache.get(client, base).await.map_err(|e| {
            ToolError::api("read the base schema", base.as_ref(), scope::SCHEMA_READ, e)
        })
    }

    /// The base schema when it can be read; None when the token cannot read schemas (the
    /// request itself will then report any real problem). Auth failures still surface.
    pub(crate) async fn schema_opt(
        &self,
        base: &BaseId,
    ) -> Result<Option<Arc<BaseSchema>>, ToolError> {
        match self.schema(base).await {
            Ok(s) => Ok(Some(s)),
            Err(ToolError::Api { source, .. }) if source.status() == Some(401) => {
                Err(ToolError::api(
                    "read the base schema",
                    base.as_ref(),
                    scope::SCHEMA_READ,
                    *source,
                ))
            }
            Err(ToolError::Api { source, .. }) => {
                tracing::debug!("base schema unavailable, skipping validation: {source}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Forget a base's cached schema (after a schema change) and tell the sessions subscribed
    /// to its schema resources.
    pub(crate) fn invalidate_schema(&self, base: &BaseId) {
        let old = self
            .cache
            .invalidate(self.client.as_ref().ok(), base.as_ref());
        let old_tables = old.map(|s| crate::tools::resources::table_ids(&s));
        self.watchers
            .schema_changed(self, base.as_ref(), old_tables);
    }

    /// Check the base, read its schema (cached) and resolve the table by ID or name. Without a
    /// readable schema the reference is sent as given.
    pub(crate) async fn table_ctx(
        &self,
        base_id: &str,
        table_id: &str,
    ) -> Result<TableCtx, ToolError> {
        let base = self.base(base_id)?;
        self.client()?;
        if table_id.trim().is_empty() {
            return Err(ToolError::Invalid(
                "table_id is empty: give a table ID (tbl...) or name; list_tables shows them."
                    .into(),
            ));
        }
        let schema = self.schema_opt(&base).await?;
        let table_ref = match &schema {
            Some(s) => resolve_table(s, base.as_ref(), table_id)?.id.to_string(),
            None => table_id.trim().to_owned(),
        };
        Ok(TableCtx {
            base,
            table_ref,
            schema,
        })
    }

    /// The one pager: read up to `max` records of `table` page by page (at most 100 a
    /// request), keeping Airtable's cursor exact, and report `what: N records read` as progress
    /// as `report` says. `query.offset` continues a previous read.
    pub(crate) async fn read_records(
        &self,
        base: &BaseId,
        table: &str,
        query: ListQuery,
        max: usize,
        report: PageReport<'_>,
    ) -> Result<RecordsRead, ToolError> {
        let PagesRead { pages, next } = self
            .read_pages::<RecordPage>(base, table, query, max, report)
            .await?;
        let records = pages.into_iter().flat_map(|p| p.records).collect();
        Ok(RecordsRead { records, next })
    }

    /// [`ToolContext::read_records`], page by page as `P` reads them: `RawRecordPage` leaves
    /// each cell the JSON text Airtable sent, for a reader that only copies cells into its
    /// output (get_records).
    pub(crate) async fn read_pages<P: Page>(
        &self,
        base: &BaseId,
        table: &str,
        mut query: ListQuery,
        max: usize,
        report: PageReport<'_>,
    ) -> Result<PagesRead<P>, ToolError> {
        let PageReport {
            progress,
            what,
            every_page,
        } = report;
        let client = self.client()?;
        let mut pages: Vec<P> = Vec::new();
        let mut read = 0usize;
        loop {
            let remaining = max.saturating_sub(read).max(1);
            query.page_size = Some(remaining.min(100) as u32);
            let mut page = P::fetch(client, base, table, &query).await.map_err(|e| {
                ToolError::api("list records", base.as_ref(), scope::RECORDS_READ, e)
            })?;
            read += page.len();
            let next = page.take_offset();
            pages.push(page);
            let done = next.is_none() || read >= max;
            if !done || every_page {
                progress
                    .report(
                        read.min(max),
                        max,
                        format!("{what}: {} records read", read.min(max)),
                    )
                    .await;
            }
            if done {
                return Ok(PagesRead { pages, next });
            }
            query.offset = next;
        }
    }
}

/// A page of records as [`ToolContext::read_pages`] reads it.
pub(crate) trait Page: Sized + Send {
    fn fetch<'a>(
        client: &'a Client,
        base: &'a BaseId,
        table: &'a str,
        query: &'a ListQuery,
    ) -> impl Future<Output = Result<Self, airtable::Error>> + Send + 'a;
    /// How many records it holds.
    fn len(&self) -> usize;
    /// The cursor to the next page.
    fn take_offset(&mut self) -> Option<String>;
}

impl Page for RecordPage {
    fn fetch<'a>(
        client: &'a Client,
        base: &'a BaseId,
        table: &'a str,
        query: &'a ListQuery,
    ) -> impl Future<Output = Result<Self, airtable::Error>> + Send + 'a {
        client.list_records_page(base, table, query)
    }
    fn len(&self) -> usize {
        self.records.len()
    }
    fn take_offset(&mut self) -> Option<String> {
        self.offset.take()
    }
}

impl Page for RawRecordPage {
    fn fetch<'a>(
        client: &'a Client,
        base: &'a BaseId,
        table: &'a str,
        query: &'a ListQuery,
    ) -> impl Future<Output = Result<Self, airtable::Error>> + Send + 'a {
        client.list_records_page_raw(base, table, query)
    }
    fn len(&self) -> usize {
        self.records().len()
    }
    fn take_offset(&mut self) -> Option<String> {
        self.offset.take()
    }
}

/// What [`ToolContext::read_pages`] read.
pub(crate) struct PagesRead<P> {
    /// The pages, in Airtable's order.
    pub(crate) pages: Vec<P>,
    /// Airtable's cursor for the next record, when more exist.
    pub(crate) next: Option<String>,
}

/// How [`ToolContext::read_records`] reports progress.
#[derive(Clone, Copy)]
pub(crate) struct PageReport<'a> {
    progress: &'a Progress,
    what: &'a str,
    every_page: bool,
}

impl<'a> PageReport<'a> {
    /// Between pages only: a read that fits in one request sends nothing (get_records).
    pub(crate) fn between_pages(progress: &'a Progress, what: &'a str) -> Self {
        PageReport {
            progress,
            what,
            every_page: false,
        }
    }

    /// After every page, the last included (scans: analysis, export, sync).
    pub(crate) fn every_page(progress: &'a Progress, what: &'a str) -> Self {
        PageReport {
            progress,
            what,
            every_page: true,
        }
    }
}

/// What [`ToolContext::read_records`] read.
pub(crate) struct RecordsRead {
    /// The records, in Airtable's order.
    pub(crate) records: Vec<Record>,
    /// Airtable's cursor for the next record, when more exist.
    pub(crate) next: Option<String>,
}

impl RecordsRead {
    /// Whether the table (or view, or filter) holds more records than were read.
    pub(crate) fn has_more(&self) -> bool {
        self.next.is_some()
    }
}

/// Resolve field references (names or IDs) to names, with "did you mean" on unknown ones;
/// duplicates are dropped.
pub(crate) fn field_names(
    table: &Table,
    refs: &[String],
    role: &str,
) -> Result<Vec<String>, ToolError> {
    validation::check_field_names(table, refs.iter(), role)?;
    let mut out: Vec<String> = Vec::with_capacity(refs.len());
    for r in refs {
        if let Some(f) = validation::find_field(table, r)
            && !out.contains(&f.name)
        {
            out.push(f.name.clone());
        }
    }
    Ok(out)
}

/// A field reference as a name when the table knows it, else as given.
pub(crate) fn field_name(table: Option<&Table>, name_or_id: &str) -> String {
    table
        .and_then(|t| validation::find_field(t, name_or_id))
        .map(|f| f.name.clone())
        .unwrap_or_else(|| name_or_id.to_owned())
}
