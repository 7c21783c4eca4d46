//! Records.

use serde::{Deserialize, Serialize};

use crate::airtable::ids::RecordId;

/// Cell values by field name (or ID); values stay JSON.
pub type Fields = serde_json::Map<String, serde_json::Value>;

/// A record as every read and write returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Record ID.
    pub id: RecordId,
    /// ISO-8601 UTC creation time, e.g. `2022-09-12T21:03:48.000Z`.
    #[serde(default)]
    pub created_time: String,
    /// Non-empty cells (Airtable omits empty ones).
    #[serde(default, deserialize_with = "fields_sized")]
    pub fields: Fields,
    /// Number of comments, with `recordMetadata=["commentCount"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_count: Option<u64>,
}

/// One page of a record listing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordPage {
    /// Records in this page.
    pub records: Vec<Record>,
    /// Cursor for the next page; `None` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
}

/// Answer to a delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletedRecord {
    /// The deleted record.
    pub id: RecordId,
    /// Always true on success.
    pub deleted: bool,
}

/// `fields` read into a list first and then into a map of exactly that size: a map filled one
/// cell at a time grows (and rehashes) four or five times per record. Same result as the
/// map's own `Deserialize`: first position, last value for a repeated name.
fn fields_sized<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
    struct Cells;
    impl<'de> serde::de::Visitor<'de> for Cells {
        type Value = Fields;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of cell values")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Fields, A::Error> {
            let mut cells: Vec<(String, serde_json::Value)> =
                Vec::with_capacity(a.size_hint().unwrap_or(16).min(256));
            while let Some(cell) = a.next_entry::<String, serde_json::Value>()? {
                cells.push(cell);
            }
            let mut fields = Fields::with_capacity(cells.len());
            for (name, value) in cells {
                fields.insert(name, value);
            }
            Ok(fields)
        }
    }
    d.deserialize_map(Cells)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_as_the_map_reads_them() {
        for body in [
            r#"{"id":"recAAAAAAAAAAAAAA","createdTime":"2026-01-02T12:51:00.000Z","fields":{"B":1,"A":[{"x":"y"}],"C":"t","B":2}}"#,
            r#"{"id":"recAAAAAAAAAAAAAA","fields":{}}"#,
            r#"{"id":"recAAAAAAAAAAAAAA"}"#,
        ] {
            let r: Record = serde_json::from_str(body).unwrap();
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            let want: Fields = v
                .get("fields")
                .map(|f| serde_json::from_value(f.clone()).unwrap())
                .unwrap_or_default();
            assert_eq!(
                r.fields.iter().collect::<Vec<_>>(),
                want.iter().collect::<Vec<_>>()
            );
        }
        assert!(
            serde_json::from_str::<Record>(r#"{"id":"recAAAAAAAAAAAAAA","fields":[1]}"#).is_err()
        );
    }
}
