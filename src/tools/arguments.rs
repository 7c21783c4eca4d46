//! Unknown tool arguments are an error, at one point: [`check`], called by
//! `AirtableServer::call_tool` before dispatch.
//!
//! serde drops fields a parameter struct does not name, so `update_record` with `dry_run: true`,
//! or `get_records` with the typo `max_record`, would run as if the argument had not been given.
//! The accepted names are read from the tool's final inputSchema (whatever produced its
//! properties: plain fields, `#[serde(flatten)]` structs, `allOf` branches), so a parameter added
//! later is accepted without touching this file. Nested objects (record items) are not checked.

use rmcp::model::{JsonObject, Tool};
use serde_json::Value;

use crate::tools::ToolError;
use crate::tools::validation::suggest;

/// The argument names a schema accepts, in schema order, or `None` when it accepts any name
/// (`additionalProperties` other than `false`, or `patternProperties`).
pub(crate) fn accepted(schema: &JsonObject) -> Option<Vec<&str>> {
    let mut names = Vec::new();
    collect(schema, &mut names, 0).then_some(names)
}

/// Adds the property names of `schema` (and of its `allOf` / `anyOf` / `oneOf` branches) to
/// `names`; false when the schema accepts any name.
fn collect<'a>(schema: &'a JsonObject, names: &mut Vec<&'a str>, depth: usize) -> bool {
    if schema.contains_key("patternProperties")
        || schema
            .get("additionalProperties")
            .is_some_and(|v| v != &Value::Bool(false))
    {
        return false;
    }
    if let Some(Value::Object(props)) = schema.get("properties") {
        for name in props.keys() {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    if depth < 4 {
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = schema.get(key) {
                for branch in branches.iter().filter_map(Value::as_object) {
                    if !collect(branch, names, depth + 1) {
                        return false;
                    }
                }
            }
        }
    }
    true
}

/// The largest arguments object one tool call may carry (serialized JSON): 10,000 records of
/// about 800 bytes.
pub(crate) const MAX_ARGUMENT_BYTES: usize = 8 * 1024 * 1024;

/// Refuse arguments over [`MAX_ARGUMENT_BYTES`], and arguments `tool` does not declare, naming
/// them, the accepted ones, and the likely intended name.
pub(crate) fn check(tool: &Tool, args: Option<&JsonObject>) -> Result<(), ToolError> {
    let Some(args) = args else {
        return Ok(());
    };
    let size = serde_json::to_vec(args).map_or(0, |v| v.len());
    if size > MAX_ARGUMENT_BYTES {
        return Err(ToolError::Invalid(format!(
            "the arguments of {} are {size} bytes; at most {MAX_ARGUMENT_BYTES} bytes (8 MiB) per call: split the work into several calls. Nothing was sent.",
            tool.name
        )));
    }
    let Some(known) = accepted(&tool.input_schema) else {
        return Ok(());
    };
    let unknown: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let listed = unknown
        .iter()
        .map(|u| match suggest(u, known.iter().copied()) {
            Some(s) => format!("{u:?} (did you mean {s:?}?)"),
            None => format!("{u:?}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let accepted = if known.is_empty() {
        "none (call it with no arguments)".to_owned()
    } else {
        known.join(", ")
    };
    let noun = if unknown.len() == 1 {
        "argument"
    } else {
        "arguments"
    };
    Err(ToolError::Invalid(format!(
        "unknown {noun} {listed} for {}; accepted: {accepted}. Nothing was done: call it again with the accepted arguments only.",
        tool.name
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn tool(schema: Value) -> Tool {
        let Value::Object(o) = schema else {
            panic!("object")
        };
        Tool::new("get_records", "test", Arc::new(o))
    }

    fn args(v: Value) -> JsonObject {
        let Value::Object(o) = v else {
            panic!("object")
        };
        o
    }

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "base_id": {"type": "string"}, "table_id": {"type": "string"},
            "max_records": {"type": "integer"}, "view": {"type": "string"}}})
    }

    #[test]
    fn declared_arguments_pass() {
        let t = tool(schema());
        assert!(check(&t, None).is_ok());
        assert!(check(&t, Some(&args(json!({"base_id": "app", "max_records": 3})))).is_ok());
    }

    #[test]
    fn a_typo_is_named_with_the_accepted_arguments_and_a_suggestion() {
        let t = tool(schema());
        let e = check(&t, Some(&args(json!({"base_id": "app", "max_record": 3}))))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "unknown argument \"max_record\" (did you mean \"max_records\"?) for get_records; accepted: base_id, table_id, max_records, view."
            ),
            "{e}"
        );
        let e = check(&t, Some(&args(json!({"dry_run": true, "zzz": 1}))))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown arguments \"dry_run\", \"zzz\""), "{e}");
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn properties_of_flattened_and_combined_schemas_count() {
        let t = tool(json!({"type": "object",
            "properties": {"base_id": {"type": "string"}},
            "allOf": [{"properties": {"dry_run": {"type": "boolean"}}}],
            "anyOf": [{"properties": {"confirm_token": {"type": "string"}}}, {}]}));
        assert!(
            check(
                &t,
                Some(&args(
                    json!({"base_id": "a", "dry_run": true, "confirm_token": "x"})
                ))
            )
            .is_ok()
        );
        assert!(check(&t, Some(&args(json!({"other": 1})))).is_err());
    }

    #[test]
    fn open_schemas_accept_anything() {
        let t = tool(json!({"type": "object", "properties": {}, "additionalProperties": true}));
        assert!(check(&t, Some(&args(json!({"x": 1})))).is_ok());
        let t = tool(json!({"type": "object", "properties": {}}));
        let e = check(&t, Some(&args(json!({"x": 1}))))
            .unwrap_err()
            .to_string();
        assert!(e.contains("accepted: none"), "{e}");
    }
}
