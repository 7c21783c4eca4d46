//! Fields and field types.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::airtable::ids::FieldId;

macro_rules! field_types {
    ($( $(#[$m:meta])* $variant:ident = $wire:literal, computed = $computed:literal; )*) => {
        /// Every Airtable field type (reference §4), plus `Other` for types added later.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum FieldType {
            $( $(#[$m])* $variant, )*
            /// A type this client does not know, kept verbatim.
            Other(String),
        }

        impl FieldType {
            /// Every known type, in documentation order.
            pub const ALL: &'static [FieldType] = &[ $( FieldType::$variant, )* ];

            /// The wire name (`singleLineText`, ...).
            pub fn as_str(&self) -> &str {
                match self {
                    $( FieldType::$variant => $wire, )*
                    FieldType::Other(s) => s,
                }
            }

            /// Map a wire name; unknown names become `Other`.
            pub fn from_wire(s: &str) -> FieldType {
                match s {
                    $( $wire => FieldType::$variant, )*
                    other => FieldType::Other(other.to_owned()),
                }
            }

            /// Whether cells of this type are computed by Airtable and cannot be written.
            /// Unknown types are assumed writable (Airtable will refuse if they are not).
            pub fn is_computed(&self) -> bool {
                match self {
                    $( FieldType::$variant => $computed, )*
                    FieldType::Other(_) => false,
                }
            }
        }
    };
}

field_types! {
    /// Single line of text.
    SingleLineText = "singleLineText", computed = false;
    /// Email address.
    Email = "email", computed = false;
    /// URL.
    Url = "url", computed = false;
    /// Long text.
    MultilineText = "multilineText", computed = false;
    /// Long text with formatting (Markdown-like).
    RichText = "richText", computed = false;
    /// Phone number.
    PhoneNumber = "phoneNumber", computed = false;
    /// Number.
    Number = "number", computed = false;
    /// Percentage (0.1 = 10 %).
    Percent = "percent", computed = false;
    /// Currency amount.
    Currency = "currency", computed = false;
    /// Duration in seconds.
    Duration = "duration", computed = false;
    /// Rating (1..max).
    Rating = "rating", computed = false;
    /// Checkbox.
    Checkbox = "checkbox", computed = false;
    /// Date.
    Date = "date", computed = false;
    /// Date and time.
    DateTime = "dateTime", computed = false;
    /// Single select.
    SingleSelect = "singleSelect", computed = false;
    /// Multiple select.
    MultipleSelects = "multipleSelects", computed = false;
    /// Links to records of another table.
    MultipleRecordLinks = "multipleRecordLinks", computed = false;
    /// Attachments.
    MultipleAttachments = "multipleAttachments", computed = false;
    /// One collaborator.
    SingleCollaborator = "singleCollaborator", computed = false;
    /// Several collaborators.
    MultipleCollaborators = "multipleCollaborators", computed = false;
    /// Barcode.
    Barcode = "barcode", computed = false;
    /// Source of a synced table (read-only).
    ExternalSyncSource = "externalSyncSource", computed = true;
    /// Formula.
    Formula = "formula", computed = true;
    /// Rollup.
    Rollup = "rollup", computed = true;
    /// Lookup.
    MultipleLookupValues = "multipleLookupValues", computed = true;
    /// Count of linked records.
    Count = "count", computed = true;
    /// Auto number.
    AutoNumber = "autoNumber", computed = true;
    /// Created time.
    CreatedTime = "createdTime", computed = true;
    /// Last modified time.
    LastModifiedTime = "lastModifiedTime", computed = true;
    /// Created by.
    CreatedBy = "createdBy", computed = true;
    /// Last modified by.
    LastModifiedBy = "lastModifiedBy", computed = true;
    /// Button.
    Button = "button", computed = true;
    /// AI-generated text.
    AiText = "aiText", computed = true;
    /// Manual sort (undocumented).
    ManualSort = "manualSort", computed = true;
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FieldType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(FieldType::from_wire(s))
    }
}

impl Serialize for FieldType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(FieldType::from_wire(&s))
    }
}

/// A field of a table, as the schema returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    /// Field ID.
    pub id: FieldId,
    /// Field name (unique in its table, case-insensitively).
    pub name: String,
    /// Field type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Description, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Type-specific options, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

impl Field {
    /// A string option (`options.<key>`), when set.
    fn option_str(&self, key: &str) -> Option<&str> {
        self.options.as_ref()?.get(key)?.as_str()
    }

    /// A link field (`multipleRecordLinks`) whose `options.prefersSingleRecordLink` is true:
    /// Airtable's UI lets it hold one linked record (the API still accepts more).
    pub fn prefers_single_record_link(&self) -> bool {
        self.field_type == FieldType::MultipleRecordLinks
            && self
                .options
                .as_ref()
                .and_then(|o| o.get("prefersSingleRecordLink"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
    }

    /// The link field a lookup, rollup or count goes through (`options.recordLinkFieldId`:
    /// a field ID of the same table).
    pub fn record_link_field_id(&self) -> Option<&str> {
        self.option_str("recordLinkFieldId")
    }

    /// The table a link field links to (`options.linkedTableId`).
    pub fn linked_table_id(&self) -> Option<&str> {
        self.option_str("linkedTableId")
    }

    /// The type of a computed field's values (`options.result.type`: a lookup's, a formula's),
    /// when the schema says.
    pub fn result_type(&self) -> Option<&str> {
        self.options.as_ref()?.get("result")?.get("type")?.as_str()
    }
}

/// A field to create: name, type, options (the body of create field, and each field of create table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSpec {
    /// Field name.
    pub name: String,
    /// Field type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Type-specific options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// Body of create field.
pub type CreateField = FieldSpec;

/// Body of update field: name and/or description.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateField {
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
    fn field_types_round_trip_and_computed() {
        for t in FieldType::ALL {
            let json = serde_json::to_string(t).unwrap();
            let back: FieldType = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, t);
        }
        assert!(FieldType::Formula.is_computed());
        assert!(FieldType::MultipleLookupValues.is_computed());
        assert!(!FieldType::SingleSelect.is_computed());
        let other: FieldType = serde_json::from_str("\"hologram\"").unwrap();
        assert_eq!(other, FieldType::Other("hologram".into()));
        assert_eq!(serde_json::to_string(&other).unwrap(), "\"hologram\"");
        assert!(!other.is_computed());
    }

    #[test]
    fn field_with_null_options() {
        let f: Field = serde_json::from_str(
            r#"{"id":"fld1VnoyuotSTyxW1","name":"Sort","type":"manualSort","options":null}"#,
        )
        .unwrap();
        assert_eq!(f.options, None);
        assert!(!f.prefers_single_record_link());
        assert_eq!(f.record_link_field_id(), None);
    }

    #[test]
    fn link_options() {
        let link: Field = serde_json::from_value(serde_json::json!({
            "id": "fldLink0000000001", "name": "Project", "type": "multipleRecordLinks",
            "options": {"linkedTableId": "tblProjects000001", "prefersSingleRecordLink": true}
        }))
        .unwrap();
        assert!(link.prefers_single_record_link());
        assert_eq!(link.linked_table_id(), Some("tblProjects000001"));
        let mut multi = link.clone();
        multi.options = Some(serde_json::json!({"linkedTableId": "tblProjects000001"}));
        assert!(!multi.prefers_single_record_link());
        let lookup: Field = serde_json::from_value(serde_json::json!({
            "id": "fldLookup00000001", "name": "Project status", "type": "multipleLookupValues",
            "options": {"recordLinkFieldId": "fldLink0000000001", "prefersSingleRecordLink": true}
        }))
        .unwrap();
        assert_eq!(lookup.record_link_field_id(), Some("fldLink0000000001"));
        assert_eq!(lookup.result_type(), None);
        assert!(
            !lookup.prefers_single_record_link(),
            "only link fields are links"
        );
    }
}
