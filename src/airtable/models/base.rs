//! Bases, schemas, tables, views and whoami.

use serde::{Deserialize, Serialize};

use super::field::{Field, FieldSpec};
use crate::airtable::ids::{BaseId, FieldId, TableId, UserId, ViewId};

/// A base the token can see (`GET /v0/meta/bases`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseSummary {
    /// Base ID.
    pub id: BaseId,
    /// Base name.
    pub name: String,
    /// The user's permission level on the base.
    pub permission_level: PermissionLevel,
}

/// `none | read | comment | edit | create`, or a future level kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PermissionLevel {
    /// No access.
    None,
    /// Read only.
    Read,
    /// Read and comment.
    Comment,
    /// Edit records.
    Edit,
    /// Edit records and schema.
    Create,
    /// Unknown level.
    #[serde(untagged)]
    Other(String),
}

/// The schema of a base (`GET /v0/meta/bases/{baseId}/tables`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseSchema {
    /// Tables in base order.
    pub tables: Vec<Table>,
}

impl BaseSchema {
    /// A table by ID or exact name, then by case-insensitive name.
    pub fn table(&self, id_or_name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.id == id_or_name || t.name == id_or_name)
            .or_else(|| {
                self.tables
                    .iter()
                    .find(|t| t.name.eq_ignore_ascii_case(id_or_name))
            })
    }
}

/// A table with its fields and views.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// Table ID.
    pub id: TableId,
    /// Table name.
    pub name: String,
    /// The primary field.
    pub primary_field_id: FieldId,
    /// Description, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fields in table order.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Views in table order.
    #[serde(default)]
    pub views: Vec<View>,
}

impl Table {
    /// A field by ID or exact name, then by case-insensitive name (Airtable's uniqueness rule).
    pub fn field(&self, id_or_name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.id == id_or_name || f.name == id_or_name)
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(id_or_name))
            })
    }

    /// The primary field.
    pub fn primary_field(&self) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == self.primary_field_id)
    }
}

/// A view of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// View ID.
    pub id: ViewId,
    /// View name.
    pub name: String,
    /// `grid | form | calendar | gallery | kanban | timeline | block`.
    #[serde(rename = "type")]
    pub view_type: String,
    /// Visible fields (grid views, with `include=visibleFieldIds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_field_ids: Option<Vec<FieldId>>,
}

/// `GET /v0/meta/whoami`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// The user (or service account) the token belongs to.
    pub id: UserId,
    /// Email, with the `user.email:read` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Scopes (OAuth tokens only, per the docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// Body of create table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTable {
    /// Table name.
    pub name: String,
    /// Description (non-empty, at most 20,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fields; the first is the primary field. At least one.
    pub fields: Vec<FieldSpec>,
}

/// Body of update table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTable {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_schema() {
        let json = r#"{"tables":[{"id":"tbltp8DGLhqbUmjK1","name":"Apartments","description":"Apartments to track.",
          "primaryFieldId":"fld1VnoyuotSTyxW1",
          "fields":[{"id":"fld1VnoyuotSTyxW1","name":"Name","type":"singleLineText","description":"Name of the apartment"},
                    {"id":"fldoaIqdn5szURHpw","name":"Pictures","type":"multipleAttachments","options":{"isReversed":false}},
                    {"id":"fldumZe00w09RYTW6","name":"District","type":"multipleRecordLinks",
                     "options":{"inverseLinkFieldId":"fldWnCJlo2z6ttT8Y","isReversed":false,"linkedTableId":"tblK6MZHez0ZvBChZ","prefersSingleRecordLink":true}}],
          "views":[{"id":"viwQpsuEDqHFqegkp","name":"Grid view","type":"grid","visibleFieldIds":["fld1VnoyuotSTyxW1"]}],
          "dateDependencySettings":{"isEnabled":true}}]}"#;
        let s: BaseSchema = serde_json::from_str(json).unwrap();
        let t = s.table("apartments").unwrap();
        assert_eq!(t.primary_field().unwrap().name, "Name");
        assert_eq!(
            t.field("District").unwrap().field_type,
            crate::airtable::FieldType::MultipleRecordLinks
        );
        let b: BaseSummary = serde_json::from_str(
            r#"{"id":"appLkNDICXNqxSDhG","name":"A","permissionLevel":"owner"}"#,
        )
        .unwrap();
        assert_eq!(b.permission_level, PermissionLevel::Other("owner".into()));
    }
}
