//! A page of records whose cells stay the JSON text Airtable sent.
//!
//! A list that only copies its cells into a result (get_records) has no use for a tree of
//! values: parsing a 100-record page into per-record maps was the largest part of such a call
//! (a map, a key and a value or more allocated per cell). This page keeps the body and, per
//! record, where each cell's text is in it: a few allocations per record.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::airtable::ids::RecordId;

/// One page of records, each cell its JSON text as sent (whitespace and escapes included).
#[derive(Debug)]
pub struct RawRecordPage {
    body: String,
    names: Vec<String>,
    records: Vec<RawRecord>,
    /// Cursor for the next page; `None` on the last page.
    pub offset: Option<String>,
}

/// A record of a [`RawRecordPage`].
#[derive(Debug)]
pub struct RawRecord {
    /// Record ID.
    pub id: RecordId,
    cells: Vec<RawCell>,
}

/// Where one cell is: the field's index in [`RawRecordPage::names`] and the cell's text.
#[derive(Debug, Clone, Copy)]
pub struct RawCell {
    /// Index of the field's name (or ID) in [`RawRecordPage::names`].
    pub name: usize,
    start: usize,
    end: usize,
}

impl RawRecord {
    /// The record's cells, in the order sent; a name sent twice has its first position and
    /// its last value (as a map reads it).
    pub fn cells(&self) -> &[RawCell] {
        &self.cells
    }
}

impl RawRecordPage {
    /// Read a page's body. The same records and cells as [`super::RecordPage`]'s reading of
    /// it, the cells left as text. On error, the body comes back with the error.
    pub fn parse(body: String) -> Result<Self, (serde_json::Error, String)> {
        let (names, records, offset) = {
            let text = body.as_str();
            let page: PageText<'_> = match serde_json::from_str(text) {
                Ok(page) => page,
                Err(e) => return Err((e, body)),
            };
            let base = text.as_ptr() as usize;
            let mut names: Vec<String> = Vec::new();
            let mut index: foldhash::HashMap<Cow<'_, str>, usize> = Default::default();
            // Per name, the last record (1-based) that had it, and its position there.
            let mut seen: Vec<(usize, usize)> = Vec::new();
            let mut records = Vec::with_capacity(page.records.len());
            for (n, rec) in page.records.into_iter().enumerate() {
                let mut cells: Vec<RawCell> = Vec::with_capacity(rec.fields.0.len());
                for (name, raw) in rec.fields.0 {
                    let slot = match index.get(&name) {
                        Some(&slot) => slot,
                        None => {
                            let slot = names.len();
                            names.push(name.clone().into_owned());
                            seen.push((0, 0));
                            index.insert(name, slot);
                            slot
                        }
                    };
                    let cell_text = raw.get();
                    let start = (cell_text.as_ptr() as usize).wrapping_sub(base);
                    let cell = RawCell {
                        name: slot,
                        start,
                        end: start + cell_text.len(),
                    };
                    match seen.get_mut(slot) {
                        Some((rec_no, at)) if *rec_no == n + 1 => {
                            if let Some(c) = cells.get_mut(*at) {
                                *c = cell;
                            }
                        }
                        Some(entry) => {
                            *entry = (n + 1, cells.len());
                            cells.push(cell);
                        }
                        None => cells.push(cell),
                    }
                }
                records.push(RawRecord { id: rec.id, cells });
            }
            (names, records, page.offset.filter(|o| !o.is_empty()))
        };
        Ok(RawRecordPage {
            body,
            names,
            records,
            offset,
        })
    }

    /// The field names (or IDs) of the page, in the order first seen.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The records, in Airtable's order.
    pub fn records(&self) -> &[RawRecord] {
        &self.records
    }

    /// The JSON text of a cell of this page (empty for a cell of another page).
    pub fn text(&self, cell: RawCell) -> &str {
        self.body.get(cell.start..cell.end).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct PageText<'a> {
    #[serde(default, borrow)]
    records: Vec<RecordText<'a>>,
    #[serde(default)]
    offset: Option<String>,
}

#[derive(Deserialize)]
struct RecordText<'a> {
    id: RecordId,
    #[serde(default, borrow)]
    fields: RawObject<'a>,
}

/// A JSON object read as its members: each name (borrowed from the text unless it has escapes)
/// and its value's text, in the order written, repeats included.
#[derive(Debug, Default)]
pub struct RawObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawObject<'a> {
    /// Read `text`, which must be one JSON object.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The text of the value of `name` (the last one, as a map reads a repeated name).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.get())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(a.size_hint().unwrap_or(16).min(256));
                while let Some((Name(name), raw)) = a.next_entry::<Name<'de>, &'de RawValue>()? {
                    members.push((name, raw));
                }
                Ok(RawObject(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// A name, borrowed from the text when it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Str;
        impl<'de> Visitor<'de> for Str {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Str)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::airtable::RecordPage;
    use serde_json::Value;

    /// The cells of every record as (name, value), read from the raw page.
    fn cells_of(page: &RawRecordPage) -> Vec<(String, Vec<(String, Value)>)> {
        page.records()
            .iter()
            .map(|r| {
                let cells = r
                    .cells()
                    .iter()
                    .map(|c| {
                        (
                            page.names()[c.name].clone(),
                            serde_json::from_str::<Value>(page.text(*c)).unwrap(),
                        )
                    })
                    .collect();
                (r.id.to_string(), cells)
            })
            .collect()
    }

    #[test]
    fn the_same_records_and_cells_as_the_parsed_page() {
        for body in [
            r#"{"records":[]}"#,
            r#"{"records":[{"id":"recAAAAAAAAAAAAAA","createdTime":"2026-01-02T12:51:00.000Z","fields":{}}],"offset":""}"#,
            r#"{"records":[{"id":"recAAAAAAAAAAAAAA","createdTime":"x","fields":{"B":1,"A":[{"x":"y"}],"C":"t","B":2}},{"id":"recBBBBBBBBBBBBBB","fields":{"C":"u","Na\u00efve \"q\"":null}}],"offset":"itr1/rec2"}"#,
            "{ \"offset\" : \"o\", \"records\" : [ { \"fields\" : { \"A\" : [ 1 , 2 ] , \"\\u0042\" : \"\\u00e9\" } , \"id\" : \"recAAAAAAAAAAAAAA\" , \"commentCount\" : 2 } ] }",
        ] {
            let raw = RawRecordPage::parse(body.to_owned())
                .map_err(|(e, _)| e)
                .unwrap();
            let parsed: RecordPage = serde_json::from_str(body).unwrap();
            let want: Vec<(String, Vec<(String, Value)>)> = parsed
                .records
                .iter()
                .map(|r| {
                    (
                        r.id.to_string(),
                        r.fields
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    )
                })
                .collect();
            assert_eq!(cells_of(&raw), want, "{body}");
            assert_eq!(
                raw.offset,
                parsed.offset.filter(|o| !o.is_empty()),
                "{body}"
            );
        }
    }

    #[test]
    fn bad_pages_are_errors() {
        for body in [
            "",
            r#"{"records":[{"fields":{}}]}"#,
            r#"{"records":[{"id":"nope","fields":{}}]}"#,
            r#"{"records":[{"id":"recAAAAAAAAAAAAAA","fields":[]}]}"#,
            r#"{"records":[{"id":"recAAAAAAAAAAAAAA","fields":{"A":}}]}"#,
        ] {
            assert!(RawRecordPage::parse(body.to_owned()).is_err(), "{body}");
        }
    }
}
