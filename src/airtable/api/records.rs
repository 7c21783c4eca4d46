//! Record reads and writes.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::airtable::batch::{
    BatchOutcome, ChunkResult, RecordUpdate, UpdateMode, UpsertRecord, WriteOptions, run_chunks,
};
use crate::airtable::client::{ApiRequest, Client};
use crate::airtable::error::Error;
use crate::airtable::ids::{BaseId, RecordId};
use crate::airtable::models::{DeletedRecord, Fields, Record};
use crate::airtable::pagination::{GetOptions, records_path};
use crate::airtable::retry::RetryClass;

#[derive(Deserialize)]
struct RecordsBody {
    #[serde(default)]
    records: Vec<Record>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsertBody {
    #[serde(default)]
    records: Vec<Record>,
    #[serde(default)]
    created_records: Vec<RecordId>,
    #[serde(default)]
    updated_records: Vec<RecordId>,
}

#[derive(Deserialize)]
struct DeletedBody {
    #[serde(default)]
    records: Vec<DeletedRecord>,
}

fn method(mode: UpdateMode) -> Method {
    match mode {
        UpdateMode::Patch => Method::PATCH,
        UpdateMode::Put => Method::PUT,
    }
}

fn check_table(table: &str) -> Result<(), Error> {
    if table.trim().is_empty() {
        Err(Error::Config("the table name or ID is empty".into()))
    } else {
        Ok(())
    }
}

fn write_body(records: Value, opts: &WriteOptions) -> Value {
    json!({
        "records": records,
        "typecast": opts.typecast,
        "returnFieldsByFieldId": opts.return_fields_by_field_id,
    })
}

impl Client {
    /// `GET /v0/{baseId}/{table}/{recordId}`.
    pub async fn get_record(
        &self,
        base: &BaseId,
        table: &str,
        id: &RecordId,
        opts: &GetOptions,
    ) -> Result<Record, Error> {
        check_table(table)?;
        let path = format!("{}/{id}", records_path(base, table));
        self.send(ApiRequest::new(Method::GET, path, Some(base)).query(opts.to_query()))
            .await
    }

    /// Create records in chunks of 10 (`POST /v0/{baseId}/{table}`). A chunk whose fate is
    /// unknown (timeout, broken connection, 5xx) is not retried and is reported ambiguous.
    pub async fn create_records(
        &self,
        base: &BaseId,
        table: &str,
        records: Vec<Fields>,
        opts: &WriteOptions,
    ) -> BatchOutcome {
        if let Err(e) = check_table(table) {
            return BatchOutcome::rejected(records.len(), e);
        }
        let path = records_path(base, table);
        run_chunks(records, opts, |chunk| {
            let path = path.clone();
            async move {
                let recs: Vec<Value> = chunk.into_iter().map(|f| json!({ "fields": f })).collect();
                let req = ApiRequest::new(Method::POST, path, Some(base))
                    .class(RetryClass::Create)
                    .json(&write_body(Value::Array(recs), opts))?;
                let body: RecordsBody = self.send(req).await?;
                Ok(ChunkResult {
                    records: body.records,
                    deleted: vec![],
                    created: vec![],
                    updated: vec![],
                })
            }
        })
        .await
    }

    /// Update records in chunks of 10 with PATCH (merge) or PUT (replace).
    pub async fn update_records(
        &self,
        base: &BaseId,
        table: &str,
        records: Vec<RecordUpdate>,
        mode: UpdateMode,
        opts: &WriteOptions,
    ) -> BatchOutcome {
        if let Err(e) = check_table(table) {
            return BatchOutcome::rejected(records.len(), e);
        }
        let path = records_path(base, table);
        run_chunks(records, opts, |chunk| {
            let path = path.clone();
            async move {
                let recs = serde_json::to_value(&chunk)
                    .map_err(|e| Error::Config(format!("could not encode records: {e}")))?;
                let req = ApiRequest::new(method(mode), path, Some(base))
                    .class(RetryClass::Idempotent)
                    .json(&write_body(recs, opts))?;
                let body: RecordsBody = self.send(req).await?;
                Ok(ChunkResult {
                    records: body.records,
                    deleted: vec![],
                    created: vec![],
                    updated: vec![],
                })
            }
        })
        .await
    }

    /// Upsert in chunks of 10 (`performUpsert` with 1-3 `fields_to_merge_on`). Records with
    /// an `id` are plain updates; others update the single record matching the merge fields,
    /// or create one. A chunk is retried like an update only when every record without an id
    /// has a non-null value for every merge field (then a repeat matches what the first
    /// attempt created); otherwise it is treated as a create.
    pub async fn upsert_records(
        &self,
        base: &BaseId,
        table: &str,
        records: Vec<UpsertRecord>,
        fields_to_merge_on: Vec<String>,
        mode: UpdateMode,
        opts: &WriteOptions,
    ) -> BatchOutcome {
        if let Err(e) = check_table(table) {
            return BatchOutcome::rejected(records.len(), e);
        }
        if fields_to_merge_on.is_empty() || fields_to_merge_on.len() > 3 {
            return BatchOutcome::rejected(
                records.len(),
                Error::Config(format!(
                    "fields_to_merge_on needs 1 to 3 field names, got {}",
                    fields_to_merge_on.len()
                )),
            );
        }
        if let Some((i, missing)) = records.iter().enumerate().find_map(|(i, r)| {
            if r.id.is_some() {
                return None;
            }
            fields_to_merge_on
                .iter()
                .find(|f| !r.fields.contains_key(f.as_str()))
                .map(|f| (i, f.clone()))
        }) {
            return BatchOutcome::rejected(
                records.len(),
                Error::Config(format!(
                    "record {i} has no id and no value for the merge field {missing:?}; every record without an id must contain all of fields_to_merge_on"
                )),
            );
        }
        let path = records_path(base, table);
        let merge = &fields_to_merge_on;
        run_chunks(records, opts, |chunk| {
            let path = path.clone();
            async move {
                let repeatable = chunk.iter().all(|r| {
                    r.id.is_some()
                        || merge
                            .iter()
                            .all(|f| r.fields.get(f.as_str()).is_some_and(|v| !v.is_null()))
                });
                let recs = serde_json::to_value(&chunk)
                    .map_err(|e| Error::Config(format!("could not encode records: {e}")))?;
                let mut body = write_body(recs, opts);
                body["performUpsert"] = json!({ "fieldsToMergeOn": merge });
                let class = if repeatable {
                    RetryClass::Idempotent
                } else {
                    RetryClass::Create
                };
                let req = ApiRequest::new(method(mode), path, Some(base))
                    .class(class)
                    .json(&body)?;
                let body: UpsertBody = self.send(req).await?;
                Ok(ChunkResult {
                    records: body.records,
                    deleted: vec![],
                    created: body.created_records,
                    updated: body.updated_records,
                })
            }
        })
        .await
    }

    /// Delete records in chunks of 10 (`DELETE …?records[]=…`).
    pub async fn delete_records(
        &self,
        base: &BaseId,
        table: &str,
        ids: Vec<RecordId>,
        opts: &WriteOptions,
    ) -> BatchOutcome {
        if let Err(e) = check_table(table) {
            return BatchOutcome::rejected(ids.len(), e);
        }
        let path = records_path(base, table);
        run_chunks(ids, opts, |chunk| {
            let path = path.clone();
            async move {
                let query = chunk
                    .iter()
                    .map(|id| ("records[]".to_owned(), id.to_string()))
                    .collect();
                let req = ApiRequest::new(Method::DELETE, path, Some(base)).query(query);
                let body: DeletedBody = self.send(req).await?;
                Ok(ChunkResult {
                    records: vec![],
                    deleted: body
                        .records
                        .into_iter()
                        .filter(|d| d.deleted)
                        .map(|d| d.id)
                        .collect(),
                    created: vec![],
                    updated: vec![],
                })
            }
        })
        .await
    }

    /// Create one record (`{"fields": …}` form). An ambiguous failure is [`Error::Ambiguous`].
    pub async fn create_record(
        &self,
        base: &BaseId,
        table: &str,
        fields: Fields,
        opts: &WriteOptions,
    ) -> Result<Record, Error> {
        check_table(table)?;
        let body = json!({
            "fields": fields,
            "typecast": opts.typecast,
            "returnFieldsByFieldId": opts.return_fields_by_field_id,
        });
        self.send(
            ApiRequest::new(Method::POST, records_path(base, table), Some(base))
                .class(RetryClass::Create)
                .json(&body)?,
        )
        .await
    }

    /// Update one record with PATCH (merge) or PUT (replace).
    pub async fn update_record(
        &self,
        base: &BaseId,
        table: &str,
        id: &RecordId,
        fields: Fields,
        mode: UpdateMode,
        opts: &WriteOptions,
    ) -> Result<Record, Error> {
        check_table(table)?;
        let body = json!({
            "fields": fields,
            "typecast": opts.typecast,
            "returnFieldsByFieldId": opts.return_fields_by_field_id,
        });
        let path = format!("{}/{id}", records_path(base, table));
        self.send(ApiRequest::new(method(mode), path, Some(base)).json(&body)?)
            .await
    }

    /// Delete one record.
    pub async fn delete_record(
        &self,
        base: &BaseId,
        table: &str,
        id: &RecordId,
    ) -> Result<DeletedRecord, Error> {
        check_table(table)?;
        let path = format!("{}/{id}", records_path(base, table));
        self.send(ApiRequest::new(Method::DELETE, path, Some(base)))
            .await
    }
}
