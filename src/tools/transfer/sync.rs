//! sync_tables' pure core: match source and target records by a key field and plan the
//! one-way sync (creates, updates with per-field differences, unmatched target records).

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::tools::cells::{
    CellMap, Field, FieldType, Kind, RecordLike, is_empty, kind_of_type, render,
};

/// A field left out of the sync, and why.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct SkippedField {
    /// Field name.
    pub(crate) field: String,
    /// Why it is not synced.
    pub(crate) reason: String,
}

/// Which fields the sync copies.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldMapping {
    /// The key field's name (present in both tables).
    pub(crate) key_field: String,
    /// Source field name → target field, for every synced field (the key included).
    pub(crate) synced: Vec<(String, Field)>,
    /// Source fields not synced.
    pub(crate) skipped: Vec<SkippedField>,
}

fn link_target(f: &Field) -> Option<&str> {
    f.options
        .as_ref()
        .and_then(|o| o.get("linkedTableId"))
        .and_then(Value::as_str)
}

/// Pair the fields both tables share by name. `key_field` is a field name (or a source
/// field ID); it must exist in both tables and be writable in the target.
pub(crate) fn map_fields(
    source: &[Field],
    target: &[Field],
    key_field: &str,
    same_base: bool,
) -> Result<FieldMapping, String> {
    let key = source
        .iter()
        .find(|f| f.name == key_field)
        .or_else(|| source.iter().find(|f| f.id == key_field))
        .ok_or_else(|| {
            format!(
                "key_field {key_field:?} is not a field of the source table; its fields are: {}",
                names(source)
            )
        })?;
    let target_key = target.iter().find(|f| f.name == key.name).ok_or_else(|| {
        format!(
            "key_field {:?} is not a field of the target table; its fields are: {}",
            key.name,
            names(target)
        )
    })?;
    if target_key.field_type.is_computed() {
        return Err(format!(
            "key_field {:?} is computed ({}) in the target table, so records cannot be created with it; choose a writable field present in both tables",
            key.name, target_key.field_type
        ));
    }
    let mut synced = Vec::new();
    let mut skipped = Vec::new();
    for s in source {
        let Some(t) = target.iter().find(|t| t.name == s.name) else {
            skipped.push(SkippedField {
                field: s.name.clone(),
                reason: "no field of that name in the target".into(),
            });
            continue;
        };
        if t.field_type.is_computed() {
            skipped.push(SkippedField {
                field: s.name.clone(),
                reason: format!("computed in the target ({})", t.field_type),
            });
            continue;
        }
        if t.field_type == FieldType::MultipleRecordLinks {
            let same_links = same_base
                && s.field_type == FieldType::MultipleRecordLinks
                && link_target(s).is_some()
                && link_target(s) == link_target(t);
            if !same_links {
                skipped.push(SkippedField {
                    field: s.name.clone(),
                    reason: "linked records can be copied only between link fields of one base that point to the same table".into(),
                });
                continue;
            }
        }
        synced.push((s.name.clone(), t.clone()));
    }
    Ok(FieldMapping {
        key_field: key.name.clone(),
        synced,
        skipped,
    })
}

fn names(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A source cell converted to what the target field accepts (`Null` clears the cell).
pub(crate) fn convert_for_target(target_type: &str, value: Option<&Value>) -> Value {
    let Some(v) = value.filter(|v| !is_empty(Some(v))) else {
        return if target_type == "checkbox" {
            Value::Bool(false)
        } else {
            Value::Null
        };
    };
    match kind_of_type(target_type) {
        Kind::Text | Kind::LongText | Kind::Select => Value::String(render(v)),
        Kind::MultiSelect => match v {
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| Value::String(render(i))).collect())
            }
            other => Value::Array(vec![Value::String(render(other))]),
        },
        Kind::Number => match v {
            Value::Number(_) => v.clone(),
            Value::Array(a) if a.len() == 1 && a[0].is_number() => a[0].clone(),
            other => render(other)
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(render(other))),
        },
        Kind::Checkbox => Value::Bool(true),
        Kind::Date => match v {
            Value::Array(a) if a.len() == 1 => a[0].clone(),
            other => other.clone(),
        },
        Kind::Attachment => Value::Array(
            as_items(v)
                .iter()
                .filter_map(|a| {
                    let url = a.get("url")?.as_str()?;
                    let mut o = Map::new();
                    o.insert("url".into(), json!(url));
                    if let Some(f) = a.get("filename").and_then(Value::as_str) {
                        o.insert("filename".into(), json!(f));
                    }
                    Some(Value::Object(o))
                })
                .collect(),
        ),
        Kind::Collaborator => {
            let people: Vec<Value> = as_items(v).iter().filter_map(collaborator_ref).collect();
            if target_type == "singleCollaborator" {
                people.into_iter().next().unwrap_or(Value::Null)
            } else {
                Value::Array(people)
            }
        }
        Kind::Link | Kind::Other => v.clone(),
    }
}

fn as_items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

fn collaborator_ref(c: &Value) -> Option<Value> {
    if let Some(id) = c.get("id").and_then(Value::as_str) {
        return Some(json!({"id": id}));
    }
    c.get("email")
        .and_then(Value::as_str)
        .map(|e| json!({"email": e}))
}

/// The form two cells are compared in: attachments by filename, collaborators by ID or
/// email, everything else by its readable rendering.
fn comparable(target_type: &str, v: Option<&Value>) -> String {
    let Some(v) = v.filter(|v| !is_empty(Some(v))) else {
        return String::new();
    };
    match kind_of_type(target_type) {
        Kind::Attachment => as_items(v)
            .iter()
            .map(|a| {
                a.get("filename")
                    .or_else(|| a.get("url"))
                    .map(render)
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(", "),
        Kind::Collaborator => as_items(v)
            .iter()
            .map(|c| {
                c.get("id")
                    .or_else(|| c.get("email"))
                    .map(render)
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => render(v),
    }
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct FieldChange {
    /// Field name.
    pub(crate) field: String,
    /// The target's current value (null when empty).
    pub(crate) old: Value,
    /// The value the sync writes (null clears the cell).
    pub(crate) new: Value,
}

/// A target record the sync updates.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct PlannedUpdate {
    /// Target record ID.
    pub(crate) record_id: String,
    /// Key value.
    pub(crate) key: String,
    /// Source record ID the values come from.
    pub(crate) source_record_id: String,
    /// The differing fields, old → new.
    pub(crate) changes: Vec<FieldChange>,
}

/// A target record the sync creates.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct PlannedCreate {
    /// Key value.
    pub(crate) key: String,
    /// Source record ID the values come from.
    pub(crate) source_record_id: String,
    /// The cells written.
    pub(crate) fields: CellMap,
}

/// A target record no source record matches (left as it is).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct UnmatchedRecord {
    /// Target record ID.
    pub(crate) record_id: String,
    /// Its key value (empty when it has none).
    pub(crate) key: String,
}

/// The full plan of a one-way sync.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct SyncPlan {
    /// The key field matched on.
    pub(crate) key_field: String,
    /// Fields copied from source to target.
    pub(crate) fields_synced: Vec<String>,
    /// Source fields left out, with the reason.
    pub(crate) fields_skipped: Vec<SkippedField>,
    /// Records read from the source table.
    pub(crate) source_records: usize,
    /// Records read from the target table.
    pub(crate) target_records: usize,
    /// Target records to create.
    pub(crate) creates: Vec<PlannedCreate>,
    /// Target records to update, with per-field differences.
    pub(crate) updates: Vec<PlannedUpdate>,
    /// Matched records already equal on every synced field.
    pub(crate) unchanged: usize,
    /// Target records that no source record matches (never deleted).
    pub(crate) unmatched_target: Vec<UnmatchedRecord>,
    /// Duplicate and empty keys, and anything else worth knowing.
    pub(crate) warnings: Vec<String>,
}

/// The key of a record: its key cell rendered and trimmed (exact match, case-sensitive,
/// as Airtable's own merge on a field).
pub(crate) fn key_of(cells: &CellMap, key_field: &str) -> String {
    cells
        .get(key_field)
        .map(render)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Plan the sync of `source` into `target` under `mapping`.
pub(crate) fn plan<S: RecordLike, T: RecordLike>(
    mapping: &FieldMapping,
    source: &[S],
    target: &[T],
) -> SyncPlan {
    let key_field = mapping.key_field.as_str();
    let mut warnings = Vec::new();

    // Target index by key: the first record wins; later ones are reported.
    let mut target_by_key: HashMap<String, &T> = HashMap::new();
    let mut target_dups: HashMap<String, Vec<String>> = HashMap::new();
    for t in target {
        let k = key_of(t.cells(), key_field);
        if k.is_empty() {
            continue;
        }
        match target_by_key.get(&k) {
            Some(first) => target_dups
                .entry(k)
                .or_insert_with(|| vec![first.record_id().to_string()])
                .push(t.record_id().to_string()),
            None => {
                target_by_key.insert(k, t);
            }
        }
    }
    let mut dup_keys: Vec<(&String, &Vec<String>)> = target_dups.iter().collect();
    dup_keys.sort();
    for (k, ids) in dup_keys {
        warnings.push(format!(
            "key {k:?} matches {} target records ({}); only {} is updated",
            ids.len(),
            ids.join(", "),
            ids[0]
        ));
    }

    let mut seen_source: HashMap<String, String> = HashMap::new();
    let mut empty_keys = 0usize;
    let mut matched: HashMap<String, ()> = HashMap::new();
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut unchanged = 0usize;
    for s in source {
        let k = key_of(s.cells(), key_field);
        if k.is_empty() {
            empty_keys += 1;
            continue;
        }
        if let Some(first) = seen_source.get(&k) {
            warnings.push(format!(
                "key {k:?} appears more than once in the source; {} is skipped, {first} is used",
                s.record_id()
            ));
            continue;
        }
        seen_source.insert(k.clone(), s.record_id().to_string());
        match target_by_key.get(&k) {
            None => {
                let fields: CellMap = mapping
                    .synced
                    .iter()
                    .filter_map(|(name, tf)| {
                        let v = convert_for_target(tf.field_type.as_str(), s.cells().get(name));
                        (!is_empty(Some(&v))).then(|| (tf.name.clone(), v))
                    })
                    .collect();
                creates.push(PlannedCreate {
                    key: k,
                    source_record_id: s.record_id().to_string(),
                    fields,
                });
            }
            Some(t) => {
                matched.insert(t.record_id().to_string(), ());
                let changes: Vec<FieldChange> = mapping
                    .synced
                    .iter()
                    .filter_map(|(name, tf)| {
                        let new = convert_for_target(tf.field_type.as_str(), s.cells().get(name));
                        let old = t.cells().get(&tf.name);
                        let differs = comparable(tf.field_type.as_str(), old)
                            != comparable(tf.field_type.as_str(), Some(&new));
                        differs.then(|| FieldChange {
                            field: tf.name.clone(),
                            old: old.cloned().unwrap_or(Value::Null),
                            new,
                        })
                    })
                    .collect();
                if changes.is_empty() {
                    unchanged += 1;
                } else {
                    updates.push(PlannedUpdate {
                        record_id: t.record_id().to_string(),
                        key: k,
                        source_record_id: s.record_id().to_string(),
                        changes,
                    });
                }
            }
        }
    }
    if empty_keys > 0 {
        warnings.push(format!(
            "{empty_keys} source record(s) have an empty {key_field:?} and are skipped"
        ));
    }
    let unmatched_target = target
        .iter()
        .filter(|t| !matched.contains_key(t.record_id()))
        .map(|t| UnmatchedRecord {
            record_id: t.record_id().to_string(),
            key: key_of(t.cells(), key_field),
        })
        .collect();

    SyncPlan {
        key_field: key_field.to_string(),
        fields_synced: mapping.synced.iter().map(|(n, _)| n.clone()).collect(),
        fields_skipped: mapping.skipped.clone(),
        source_records: source.len(),
        target_records: target.len(),
        creates,
        updates,
        unchanged,
        unmatched_target,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::cells::PlainRecord;

    fn f(name: &str, t: &str) -> Field {
        crate::tools::cells::test_field(name, t)
    }

    fn rec(id: &str, fields: Value) -> PlainRecord {
        PlainRecord {
            id: id.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    fn tables() -> (Vec<Field>, Vec<Field>) {
        let source = vec![
            f("Code", "singleLineText"),
            f("Name", "singleLineText"),
            f("Price", "number"),
            f("Tags", "multipleSelects"),
            f("Total", "formula"),
            f("OnlySource", "singleLineText"),
            f("Files", "multipleAttachments"),
        ];
        let target = vec![
            f("Code", "singleLineText"),
            f("Name", "singleLineText"),
            f("Price", "number"),
            f("Tags", "multipleSelects"),
            f("Total", "formula"),
            f("Files", "multipleAttachments"),
        ];
        (source, target)
    }

    #[test]
    fn mapping_skips_computed_and_missing_fields() {
        let (s, t) = tables();
        let m = map_fields(&s, &t, "Code", false).unwrap();
        let synced: Vec<&str> = m.synced.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(synced, vec!["Code", "Name", "Price", "Tags", "Files"]);
        let skipped: Vec<&str> = m.skipped.iter().map(|s| s.field.as_str()).collect();
        assert_eq!(skipped, vec!["Total", "OnlySource"]);

        let err = map_fields(&s, &t, "OnlySource", false).unwrap_err();
        assert!(err.contains("not a field of the target"), "{err}");
        let err = map_fields(&s, &t, "Nope", false).unwrap_err();
        assert!(err.contains("not a field of the source"), "{err}");
        let err = map_fields(&s, &t, "Total", false).unwrap_err();
        assert!(err.contains("computed"), "{err}");
    }

    #[test]
    fn links_are_synced_only_within_one_base_to_the_same_table() {
        let mut link = f("Owner", "multipleRecordLinks");
        link.options = Some(json!({"linkedTableId": "tblPeople"}));
        let across = map_fields(
            &[f("K", "singleLineText"), link.clone()],
            &[f("K", "singleLineText"), link.clone()],
            "K",
            false,
        )
        .unwrap();
        assert_eq!(across.synced.len(), 1);
        let within = map_fields(
            &[f("K", "singleLineText"), link.clone()],
            &[f("K", "singleLineText"), link],
            "K",
            true,
        )
        .unwrap();
        assert_eq!(within.synced.len(), 2);
    }

    #[test]
    fn plan_creates_updates_unchanged_and_unmatched() {
        let (s, t) = tables();
        let m = map_fields(&s, &t, "Code", false).unwrap();
        let source = vec![
            rec(
                "recS1",
                json!({"Code": "A", "Name": "Apple", "Price": 3, "Tags": ["x"], "Total": 9}),
            ),
            rec(
                "recS2",
                json!({"Code": "B", "Name": "Banana", "Price": 2.5}),
            ),
            rec(
                "recS3",
                json!({"Code": "C", "Name": "Cherry", "Files": [{"id": "att1", "url": "https://u/c.png", "filename": "c.png", "size": 3}]}),
            ),
            rec("recS4", json!({"Code": "A", "Name": "Dup"})),
            rec("recS5", json!({"Name": "No key"})),
        ];
        let target = vec![
            rec(
                "recT1",
                json!({"Code": "A", "Name": "Apple", "Price": 3.0, "Tags": ["x"], "Total": 1}),
            ),
            rec(
                "recT2",
                json!({"Code": " B ", "Name": "banana", "Price": 2.5, "Tags": ["old"]}),
            ),
            rec("recT3", json!({"Code": "Z", "Name": "Zed"})),
            rec("recT4", json!({"Code": "Z", "Name": "Zed again"})),
        ];
        let p = plan(&m, &source, &target);
        assert_eq!(p.unchanged, 1, "A equal (3 == 3.0, computed Total ignored)");
        assert_eq!(p.updates.len(), 1);
        let u = &p.updates[0];
        assert_eq!((u.record_id.as_str(), u.key.as_str()), ("recT2", "B"));
        assert_eq!(
            u.changes,
            vec![
                FieldChange {
                    field: "Code".into(),
                    old: json!(" B "),
                    new: json!("B")
                },
                FieldChange {
                    field: "Name".into(),
                    old: json!("banana"),
                    new: json!("Banana")
                },
                FieldChange {
                    field: "Tags".into(),
                    old: json!(["old"]),
                    new: json!(null)
                },
            ]
        );
        assert_eq!(p.creates.len(), 1);
        assert_eq!(p.creates[0].key, "C");
        assert_eq!(
            Value::Object(p.creates[0].fields.clone()),
            json!({"Code": "C", "Name": "Cherry", "Files": [{"url": "https://u/c.png", "filename": "c.png"}]})
        );
        let unmatched: Vec<&str> = p
            .unmatched_target
            .iter()
            .map(|u| u.record_id.as_str())
            .collect();
        assert_eq!(unmatched, vec!["recT3", "recT4"]);
        assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
        assert!(p.warnings.iter().any(|w| w.contains("recS4")));
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("matches 2 target records"))
        );
        assert!(p.warnings.iter().any(|w| w.contains("empty")));
    }

    #[test]
    fn a_second_plan_after_applying_is_empty() {
        let (s, t) = tables();
        let m = map_fields(&s, &t, "Code", false).unwrap();
        let source = vec![rec(
            "recS1",
            json!({"Code": "A", "Name": "Apple", "Price": 3, "Tags": ["x", "y"], "Files": [{"id": "att1", "url": "https://u/a.png", "filename": "a.png"}]}),
        )];
        let p = plan::<_, PlainRecord>(&m, &source, &[]);
        // What the target holds after the create (Airtable assigns new attachment ids and urls).
        let mut written = p.creates[0].fields.clone();
        written.insert(
            "Files".into(),
            json!([{"id": "attNEW", "url": "https://other/a.png", "filename": "a.png"}]),
        );
        let target = vec![PlainRecord {
            id: "recT1".into(),
            fields: written,
        }];
        let again = plan(&m, &source, &target);
        assert!(
            again.creates.is_empty() && again.updates.is_empty(),
            "{again:?}"
        );
        assert_eq!(again.unchanged, 1);
    }

    #[test]
    fn conversions_fit_the_target_type() {
        assert_eq!(
            convert_for_target("singleLineText", Some(&json!(["a", "b"]))),
            json!("a, b")
        );
        assert_eq!(
            convert_for_target("number", Some(&json!(" 4.5 "))),
            json!(4.5)
        );
        assert_eq!(convert_for_target("number", Some(&json!([7]))), json!(7));
        assert_eq!(convert_for_target("checkbox", None), json!(false));
        assert_eq!(
            convert_for_target("checkbox", Some(&json!(true))),
            json!(true)
        );
        assert_eq!(
            convert_for_target("multipleSelects", Some(&json!("solo"))),
            json!(["solo"])
        );
        assert_eq!(
            convert_for_target(
                "singleCollaborator",
                Some(&json!({"id": "usr1", "name": "N"}))
            ),
            json!({"id": "usr1"})
        );
        assert_eq!(
            convert_for_target("singleLineText", Some(&json!(""))),
            json!(null)
        );
    }

    #[test]
    fn never_plans_a_write_that_validation_refuses() {
        use crate::airtable::{Table, TableId};
        use crate::tools::validation::check_writable;
        // Every field type Airtable has, on both sides under the same names.
        let fields: Vec<Field> = std::iter::once(f("Key", "singleLineText"))
            .chain(
                FieldType::ALL
                    .iter()
                    .map(|t| f(&format!("F {}", t.as_str()), t.as_str())),
            )
            .collect();
        let target = Table {
            id: TableId::new("tblTarget00000001").unwrap(),
            name: "Target".into(),
            primary_field_id: fields[0].id.clone(),
            description: None,
            fields: fields.clone(),
            views: Vec::new(),
        };
        let m = map_fields(&fields, &target.fields, "Key", true).unwrap();
        for computed in ["F manualSort", "F formula", "F autoNumber", "F aiText"] {
            assert!(
                m.synced.iter().all(|(n, _)| n != computed),
                "{computed} must not be synced"
            );
        }
        let mut cells = Map::new();
        for fd in &fields {
            cells.insert(fd.name.clone(), json!("x"));
        }
        cells.insert("Key".into(), json!("K1"));
        let new = rec("recSource", Value::Object(cells.clone()));
        cells.insert("Key".into(), json!("K2"));
        let changed = rec("recSource2", Value::Object(cells));
        let existing = rec("recTarget", json!({"Key": "K2"}));
        let p = plan(&m, &[new, changed], &[existing]);
        assert_eq!(p.creates.len(), 1);
        assert_eq!(p.updates.len(), 1);
        for c in &p.creates {
            check_writable(&target, &c.fields, "a planned create").unwrap();
        }
        for u in &p.updates {
            let fields: Map<String, Value> = u
                .changes
                .iter()
                .map(|c| (c.field.clone(), c.new.clone()))
                .collect();
            check_writable(&target, &fields, "a planned update").unwrap();
        }
    }
}
