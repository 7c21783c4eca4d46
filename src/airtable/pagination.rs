//! Record listing: query encoding (GET and POST listRecords) and the page stream.

use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::client::{ApiRequest, Client, MAX_URL_LEN, decode_error, encode_segment};
use super::error::Error;
use super::ids::BaseId;
use super::models::{RawRecordPage, Record, RecordPage};
use reqwest::Method;

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortDirection {
    /// Ascending (Airtable's default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

impl SortDirection {
    /// `asc` or `desc`.
    pub fn as_str(self) -> &'static str {
        match self {
            SortDirection::Asc => "asc",
            SortDirection::Desc => "desc",
        }
    }
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    /// Field name or ID.
    pub field: String,
    /// Direction.
    #[serde(default)]
    pub direction: SortDirection,
}

/// `cellFormat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellFormat {
    /// Cell values as JSON (default).
    #[default]
    Json,
    /// User-facing strings; needs `time_zone` and `user_locale`.
    String,
}

impl CellFormat {
    /// `json` or `string`.
    pub fn as_str(self) -> &'static str {
        match self {
            CellFormat::Json => "json",
            CellFormat::String => "string",
        }
    }
}

/// Options of a record listing. Every field is optional; `Default` lists everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// Records per page (1-100, Airtable's default 100).
    pub page_size: Option<u32>,
    /// Cap on the total across all pages.
    pub max_records: Option<usize>,
    /// Cursor from a previous page.
    pub offset: Option<String>,
    /// View name or ID.
    pub view: Option<String>,
    /// Only these fields (names or IDs).
    pub fields: Vec<String>,
    /// Sort keys, overriding the view's order.
    pub sort: Vec<Sort>,
    /// Include only records for which the formula is truthy.
    pub filter_by_formula: Option<String>,
    /// `json` or `string`.
    pub cell_format: Option<CellFormat>,
    /// Time zone for `cellFormat=string` (stays in the query string, even for POST).
    pub time_zone: Option<String>,
    /// Locale for `cellFormat=string` (stays in the query string, even for POST).
    pub user_locale: Option<String>,
    /// Key `fields` by field ID.
    pub return_fields_by_field_id: bool,
    /// e.g. `["commentCount"]`.
    pub record_metadata: Vec<String>,
}

impl ListQuery {
    /// Everything, default page size.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the page size.
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n);
        self
    }
    /// Set the cap on the total.
    pub fn with_max_records(mut self, n: usize) -> Self {
        self.max_records = Some(n);
        self
    }
    /// Start at a cursor.
    pub fn with_offset(mut self, offset: impl Into<String>) -> Self {
        self.offset = Some(offset.into());
        self
    }
    /// Restrict to a view.
    pub fn with_view(mut self, view: impl Into<String>) -> Self {
        self.view = Some(view.into());
        self
    }
    /// Add a field to the projection.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.fields.push(field.into());
        self
    }
    /// Add a sort key.
    pub fn with_sort(mut self, field: impl Into<String>, direction: SortDirection) -> Self {
        self.sort.push(Sort {
            field: field.into(),
            direction,
        });
        self
    }
    /// Set the filter formula.
    pub fn with_filter(mut self, formula: impl Into<String>) -> Self {
        self.filter_by_formula = Some(formula.into());
        self
    }

    /// Everything but timeZone/userLocale, as GET query pairs (Airtable's encodings:
    /// `fields[]`, `sort[0][field]`, `recordMetadata[]`).
    fn body_params_as_query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        if let Some(n) = self.page_size {
            q.push(("pageSize".into(), n.to_string()));
        }
        if let Some(n) = self.max_records {
            q.push(("maxRecords".into(), n.to_string()));
        }
        if let Some(o) = &self.offset {
            q.push(("offset".into(), o.clone()));
        }
        if let Some(v) = &self.view {
            q.push(("view".into(), v.clone()));
        }
        for f in &self.fields {
            q.push(("fields[]".into(), f.clone()));
        }
        for (i, s) in self.sort.iter().enumerate() {
            q.push((format!("sort[{i}][field]"), s.field.clone()));
            q.push((format!("sort[{i}][direction]"), s.direction.as_str().into()));
        }
        if let Some(f) = &self.filter_by_formula {
            q.push(("filterByFormula".into(), f.clone()));
        }
        if let Some(c) = self.cell_format {
            q.push(("cellFormat".into(), c.as_str().into()));
        }
        if self.return_fields_by_field_id {
            q.push(("returnFieldsByFieldId".into(), "true".into()));
        }
        for m in &self.record_metadata {
            q.push(("recordMetadata[]".into(), m.clone()));
        }
        q
    }

    /// The parameters that must stay in the query string (also for POST listRecords).
    fn locale_params(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        if let Some(tz) = &self.time_zone {
            q.push(("timeZone".into(), tz.clone()));
        }
        if let Some(l) = &self.user_locale {
            q.push(("userLocale".into(), l.clone()));
        }
        q
    }

    /// The full GET query.
    pub(crate) fn to_query(&self) -> Vec<(String, String)> {
        let mut q = self.body_params_as_query();
        q.extend(self.locale_params());
        q
    }

    /// The POST listRecords body.
    pub(crate) fn to_post_body(&self) -> Value {
        let mut m = Map::new();
        if let Some(n) = self.page_size {
            m.insert("pageSize".into(), json!(n));
        }
        if let Some(n) = self.max_records {
            m.insert("maxRecords".into(), json!(n));
        }
        if let Some(o) = &self.offset {
            m.insert("offset".into(), json!(o));
        }
        if let Some(v) = &self.view {
            m.insert("view".into(), json!(v));
        }
        if !self.fields.is_empty() {
            m.insert("fields".into(), json!(self.fields));
        }
        if !self.sort.is_empty() {
            m.insert("sort".into(), json!(self.sort));
        }
        if let Some(f) = &self.filter_by_formula {
            m.insert("filterByFormula".into(), json!(f));
        }
        if let Some(c) = self.cell_format {
            m.insert("cellFormat".into(), json!(c.as_str()));
        }
        if self.return_fields_by_field_id {
            m.insert("returnFieldsByFieldId".into(), json!(true));
        }
        if !self.record_metadata.is_empty() {
            m.insert("recordMetadata".into(), json!(self.record_metadata));
        }
        Value::Object(m)
    }
}

/// Options of a single-record read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GetOptions {
    /// `json` or `string`.
    pub cell_format: Option<CellFormat>,
    /// Time zone for `cellFormat=string`.
    pub time_zone: Option<String>,
    /// Locale for `cellFormat=string`.
    pub user_locale: Option<String>,
    /// Key `fields` by field ID.
    pub return_fields_by_field_id: bool,
}

impl GetOptions {
    pub(crate) fn to_query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        if let Some(c) = self.cell_format {
            q.push(("cellFormat".into(), c.as_str().into()));
        }
        if let Some(tz) = &self.time_zone {
            q.push(("timeZone".into(), tz.clone()));
        }
        if let Some(l) = &self.user_locale {
            q.push(("userLocale".into(), l.clone()));
        }
        if self.return_fields_by_field_id {
            q.push(("returnFieldsByFieldId".into(), "true".into()));
        }
        q
    }
}

pub(crate) fn records_path(base: &BaseId, table: &str) -> String {
    format!("/v0/{base}/{}", encode_segment(table))
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    records: Vec<Record>,
    #[serde(default)]
    offset: Option<String>,
}

impl Client {
    /// The request for one page of records: GET, or POST `…/listRecords` when the GET URL
    /// would be too long.
    fn list_request<'a>(
        &self,
        base: &'a BaseId,
        table: &str,
        q: &ListQuery,
    ) -> Result<ApiRequest<'a>, Error> {
        if table.is_empty() {
            return Err(Error::Config("the table name or ID is empty".into()));
        }
        let path = records_path(base, table);
        let query = q.to_query();
        Ok(if self.url_for(&path, &query).len() < MAX_URL_LEN {
            ApiRequest::new(Method::GET, path, Some(base)).query(query)
        } else {
            tracing::debug!("URL too long for GET; using POST listRecords");
            ApiRequest::new(Method::POST, format!("{path}/listRecords"), Some(base))
                .query(q.locale_params())
                .class(super::retry::RetryClass::Idempotent)
                .json(&q.to_post_body())?
        })
    }

    /// One page of records: GET, or POST `…/listRecords` when the GET URL would reach
    /// 16,000 characters (`timeZone` and `userLocale` stay in the query).
    pub async fn list_records_page(
        &self,
        base: &BaseId,
        table: &str,
        q: &ListQuery,
    ) -> Result<RecordPage, Error> {
        let req = self.list_request(base, table, q)?;
        let raw: RawPage = self.send(req).await?;
        Ok(RecordPage {
            records: raw.records,
            offset: raw.offset.filter(|o| !o.is_empty()),
        })
    }

    /// [`Client::list_records_page`] with the cells left as the JSON text Airtable sent
    /// ([`RawRecordPage`]): for a reader that only copies cells into its output.
    pub async fn list_records_page_raw(
        &self,
        base: &BaseId,
        table: &str,
        q: &ListQuery,
    ) -> Result<RawRecordPage, Error> {
        let req = self.list_request(base, table, q)?;
        let class = req.class;
        let (status, text) = self.send_text(req).await?;
        RawRecordPage::parse(text)
            .map_err(|(e, text)| decode_error(class, status, text.as_bytes(), &e))
    }

    /// Every page as a stream; stops after the last page or at `q.max_records`.
    pub fn list_records(
        &self,
        base: &BaseId,
        table: &str,
        q: ListQuery,
    ) -> impl Stream<Item = Result<RecordPage, Error>> + Send + '_ {
        struct State {
            q: ListQuery,
            base: BaseId,
            table: String,
            seen: usize,
            done: bool,
        }
        let state = State {
            q,
            base: base.clone(),
            table: table.to_owned(),
            seen: 0,
            done: false,
        };
        futures::stream::try_unfold(state, move |mut st| async move {
            if st.done {
                return Ok(None);
            }
            if let Some(max) = st.q.max_records
                && st.seen >= max
            {
                return Ok(None);
            }
            let mut page = self.list_records_page(&st.base, &st.table, &st.q).await?;
            st.seen += page.records.len();
            if let Some(max) = st.q.max_records
                && st.seen >= max
            {
                let extra = st.seen - max;
                page.records.truncate(page.records.len() - extra);
                st.seen = max;
                page.offset = None;
                st.done = true;
            }
            match &page.offset {
                Some(o) => st.q.offset = Some(o.clone()),
                None => st.done = true,
            }
            Ok(Some((page, st)))
        })
    }

    /// Every record (up to `q.max_records`), following every page.
    pub async fn list_all_records(
        &self,
        base: &BaseId,
        table: &str,
        q: ListQuery,
    ) -> Result<Vec<Record>, Error> {
        use futures::TryStreamExt;
        let mut out = Vec::new();
        let stream = self.list_records(base, table, q);
        futures::pin_mut!(stream);
        while let Some(page) = stream.try_next().await? {
            out.extend(page.records);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encodings() {
        let q = ListQuery::new()
            .with_page_size(10)
            .with_field("Name")
            .with_field("Due Date")
            .with_sort("Name", SortDirection::Desc)
            .with_filter("{A} = 'x y'");
        let mut q = q;
        q.record_metadata.push("commentCount".into());
        q.time_zone = Some("Europe/Paris".into());
        let enc = super::super::client::encode_query(&q.to_query());
        assert!(
            enc.contains("fields%5B%5D=Name&fields%5B%5D=Due+Date"),
            "{enc}"
        );
        assert!(
            enc.contains("sort%5B0%5D%5Bfield%5D=Name&sort%5B0%5D%5Bdirection%5D=desc"),
            "{enc}"
        );
        assert!(enc.contains("recordMetadata%5B%5D=commentCount"), "{enc}");
        assert!(enc.contains("timeZone=Europe%2FParis"), "{enc}");
        let body = q.to_post_body();
        assert_eq!(body["sort"][0]["direction"], "desc");
        assert!(body.get("timeZone").is_none());
    }

    #[test]
    fn table_names_are_encoded() {
        let b: BaseId = "appLkNDICXNqxSDhG".parse().unwrap();
        assert_eq!(
            records_path(&b, "Companies/Clients & co"),
            "/v0/appLkNDICXNqxSDhG/Companies%2FClients%20%26%20co"
        );
        assert_eq!(
            records_path(&b, "a-b_c.d~"),
            "/v0/appLkNDICXNqxSDhG/a-b_c.d~"
        );
    }
}
