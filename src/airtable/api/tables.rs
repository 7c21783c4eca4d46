//! Create and update tables and fields.

use reqwest::Method;

use crate::airtable::client::{ApiRequest, Client, encode_segment};
use crate::airtable::error::Error;
use crate::airtable::ids::BaseId;
use crate::airtable::models::{CreateField, CreateTable, Field, Table, UpdateField, UpdateTable};

fn tables_path(base: &BaseId) -> String {
    format!("/v0/meta/bases/{base}/tables")
}

fn non_empty(what: &str, s: &str) -> Result<(), Error> {
    if s.trim().is_empty() {
        Err(Error::Config(format!("the {what} is empty")))
    } else {
        Ok(())
    }
}

impl Client {
    /// `POST /v0/meta/bases/{baseId}/tables`. The first field is the primary field.
    pub async fn create_table(&self, base: &BaseId, req: &CreateTable) -> Result<Table, Error> {
        non_empty("table name", &req.name)?;
        if req.fields.is_empty() {
            return Err(Error::Config(
                "a table needs at least one field (the first is the primary field)".into(),
            ));
        }
        self.send(ApiRequest::new(Method::POST, tables_path(base), Some(base)).json(req)?)
            .await
    }

    /// `PATCH /v0/meta/bases/{baseId}/tables/{tableIdOrName}`.
    pub async fn update_table(
        &self,
        base: &BaseId,
        table: &str,
        req: &UpdateTable,
    ) -> Result<Table, Error> {
        non_empty("table name or ID", table)?;
        if req.name.is_none() && req.description.is_none() {
            return Err(Error::Config(
                "update_table needs a new name or description".into(),
            ));
        }
        let path = format!("{}/{}", tables_path(base), encode_segment(table));
        self.send(ApiRequest::new(Method::PATCH, path, Some(base)).json(req)?)
            .await
    }

    /// `POST /v0/meta/bases/{baseId}/tables/{tableId}/fields`.
    pub async fn create_field(
        &self,
        base: &BaseId,
        table: &str,
        req: &CreateField,
    ) -> Result<Field, Error> {
        non_empty("table name or ID", table)?;
        non_empty("field name", &req.name)?;
        let path = format!("{}/{}/fields", tables_path(base), encode_segment(table));
        self.send(ApiRequest::new(Method::POST, path, Some(base)).json(req)?)
            .await
    }

    /// `PATCH /v0/meta/bases/{baseId}/tables/{tableId}/fields/{fieldId}`.
    pub async fn update_field(
        &self,
        base: &BaseId,
        table: &str,
        field: &str,
        req: &UpdateField,
    ) -> Result<Field, Error> {
        non_empty("table name or ID", table)?;
        non_empty("field ID", field)?;
        if req.name.is_none() && req.description.is_none() {
            return Err(Error::Config(
                "update_field needs a new name or description".into(),
            ));
        }
        let path = format!(
            "{}/{}/fields/{}",
            tables_path(base),
            encode_segment(table),
            encode_segment(field)
        );
        self.send(ApiRequest::new(Method::PATCH, path, Some(base)).json(req)?)
            .await
    }
}
