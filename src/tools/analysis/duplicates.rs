//! find_duplicates' pure core: group records whose key fields match after normalisation.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::tools::cells::{RecordLike, is_empty, normalize_text, render};

/// The duplicate groups found in a set of records.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DuplicateReport {
    /// Records examined.
    pub(crate) records_scanned: usize,
    /// Records skipped because a key field was empty (with ignore_empty).
    pub(crate) skipped_empty: usize,
    /// Number of groups with two or more records.
    pub(crate) group_count: usize,
    /// Records that belong to a group (all members, the first one included).
    pub(crate) duplicate_records: usize,
    /// The groups, largest first (then in order of first appearance).
    pub(crate) groups: Vec<DuplicateGroup>,
}

/// Records sharing one normalised key.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct DuplicateGroup {
    /// The shared key, one normalised value per key field, in the order the fields were given.
    pub(crate) key: Vec<String>,
    /// The records, in the order they were read.
    pub(crate) record_ids: Vec<String>,
}

/// The normalised form of one cell for matching: rendered as text, trimmed, whitespace
/// collapsed, lowercased; the items of a multi-valued cell sorted (order does not matter).
pub(crate) fn normalize_cell(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::Array(items)) => {
            let mut parts: Vec<String> = items
                .iter()
                .map(|v| normalize_text(&render(v)))
                .filter(|s| !s.is_empty())
                .collect();
            parts.sort();
            parts.join(", ")
        }
        Some(v) => normalize_text(&render(v)),
    }
}

/// Group `records` by the normalised values of `key_fields`.
///
/// With `ignore_empty`, a record whose key has any empty field is skipped (it is not a
/// duplicate of another record that merely lacks the same values); without it, empty
/// values match each other.
pub(crate) fn find_duplicates<R: RecordLike>(
    records: &[R],
    key_fields: &[String],
    ignore_empty: bool,
) -> DuplicateReport {
    let mut groups: HashMap<Vec<String>, Vec<String>> = HashMap::new();
    let mut order: Vec<Vec<String>> = Vec::new();
    let mut skipped_empty = 0;
    for record in records {
        let cells = record.cells();
        if ignore_empty && key_fields.iter().any(|f| is_empty(cells.get(f))) {
            skipped_empty += 1;
            continue;
        }
        let key: Vec<String> = key_fields
            .iter()
            .map(|f| normalize_cell(cells.get(f)))
            .collect();
        let ids = groups.entry(key.clone()).or_default();
        if ids.is_empty() {
            order.push(key);
        }
        ids.push(record.record_id().to_string());
    }
    let mut out: Vec<(usize, DuplicateGroup)> = order
        .into_iter()
        .enumerate()
        .filter_map(|(i, key)| {
            let ids = groups.remove(&key)?;
            (ids.len() > 1).then_some((
                i,
                DuplicateGroup {
                    key,
                    record_ids: ids,
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| {
        b.1.record_ids
            .len()
            .cmp(&a.1.record_ids.len())
            .then(a.0.cmp(&b.0))
    });
    let groups: Vec<DuplicateGroup> = out.into_iter().map(|(_, g)| g).collect();
    DuplicateReport {
        records_scanned: records.len(),
        skipped_empty,
        group_count: groups.len(),
        duplicate_records: groups.iter().map(|g| g.record_ids.len()).sum(),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::cells::PlainRecord;
    use serde_json::json;

    fn rec(id: &str, fields: Value) -> PlainRecord {
        PlainRecord {
            id: id.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn groups_after_trim_case_and_whitespace() {
        let r = vec![
            rec(
                "rec1",
                json!({"Name": "Ada  Lovelace", "Email": "ADA@x.org"}),
            ),
            rec(
                "rec2",
                json!({"Name": " ada lovelace ", "Email": "ada@x.org"}),
            ),
            rec(
                "rec3",
                json!({"Name": "Alan Turing", "Email": "alan@x.org"}),
            ),
            rec(
                "rec4",
                json!({"Name": "ADA LOVELACE", "Email": "other@x.org"}),
            ),
        ];
        let by_name = find_duplicates(&r, &keys(&["Name"]), true);
        assert_eq!(by_name.group_count, 1);
        assert_eq!(by_name.groups[0].record_ids, vec!["rec1", "rec2", "rec4"]);
        assert_eq!(by_name.groups[0].key, vec!["ada lovelace"]);
        assert_eq!(by_name.duplicate_records, 3);

        let by_both = find_duplicates(&r, &keys(&["Name", "Email"]), true);
        assert_eq!(by_both.group_count, 1);
        assert_eq!(by_both.groups[0].record_ids, vec!["rec1", "rec2"]);
    }

    #[test]
    fn empty_keys_are_skipped_or_matched() {
        let r = vec![
            rec("rec1", json!({"Name": "A"})),
            rec("rec2", json!({"Name": ""})),
            rec("rec3", json!({})),
        ];
        let skipped = find_duplicates(&r, &keys(&["Name"]), true);
        assert_eq!(skipped.skipped_empty, 2);
        assert!(skipped.groups.is_empty());
        let matched = find_duplicates(&r, &keys(&["Name"]), false);
        assert_eq!(matched.groups.len(), 1);
        assert_eq!(matched.groups[0].record_ids, vec!["rec2", "rec3"]);
    }

    #[test]
    fn arrays_match_regardless_of_order_and_largest_group_first() {
        let r = vec![
            rec("rec1", json!({"Tags": ["b", "A"]})),
            rec("rec2", json!({"Tags": ["x"]})),
            rec("rec3", json!({"Tags": ["x"]})),
            rec("rec4", json!({"Tags": ["a", "B"]})),
            rec("rec5", json!({"Tags": ["a", "b"]})),
            rec("rec6", json!({"Tags": 3.0})),
            rec("rec7", json!({"Tags": 3})),
        ];
        let d = find_duplicates(&r, &keys(&["Tags"]), true);
        assert_eq!(d.group_count, 3);
        assert_eq!(d.groups[0].record_ids, vec!["rec1", "rec4", "rec5"]);
        assert_eq!(d.groups[1].record_ids, vec!["rec2", "rec3"]);
        assert_eq!(
            d.groups[2].record_ids,
            vec!["rec6", "rec7"],
            "3.0 and 3 match"
        );
    }
}
