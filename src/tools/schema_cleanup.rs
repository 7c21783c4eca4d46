//! Portable JSON schemas: what strict MCP clients (Gemini, OpenAPI dialects, Inspector
//! `--strict`) accept.
//!
//! schemars describes `Option<T>` as `"type": ["T", "null"]` with `"default": null`, nests
//! `$ref`s into `$defs`, and adds Rust-only formats such as `uint32`. Every tool schema goes
//! through [`portable`] once, when the router is built: references are inlined, `null` is
//! removed from types and unions, and non-standard numeric formats are dropped. An absent
//! property still means "not given", so nothing is lost for the model.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::JsonObject;
use serde_json::{Map, Value};

use crate::tools::handler::AirtableServer;

/// Rewrite every input and output schema of a router with [`portable`].
pub(crate) fn portable_router(router: ToolRouter<AirtableServer>) -> ToolRouter<AirtableServer> {
    let mut out = ToolRouter::new();
    for mut route in router {
        route.attr.input_schema = Arc::new(closed(portable(&route.attr.input_schema)));
        if let Some(schema) = &route.attr.output_schema {
            route.attr.output_schema = Some(Arc::new(portable(schema)));
        }
        out.add_route(route);
    }
    out
}

/// A portable copy of a schema (see the module docs).
pub(crate) fn portable(schema: &JsonObject) -> JsonObject {
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut root = Value::Object(schema.clone());
    if let Value::Object(obj) = &mut root {
        obj.remove("$defs");
        obj.remove("$schema");
    }
    let cleaned = clean(root, &defs, 0);
    match cleaned {
        Value::Object(obj) => obj,
        _ => JsonObject::new(),
    }
}

/// An input schema that says unknown arguments are refused (`"additionalProperties": false`,
/// which `tools::arguments` enforces): on an object schema whose properties are all at the root
/// (with `allOf` / `anyOf` / `oneOf` branches, the keyword would also refuse their properties).
pub(crate) fn closed(mut schema: JsonObject) -> JsonObject {
    let combined = ["allOf", "anyOf", "oneOf"]
        .iter()
        .any(|k| schema.contains_key(*k));
    let object = schema.get("type").and_then(Value::as_str) == Some("object");
    if object && !combined && !schema.contains_key("patternProperties") {
        schema
            .entry("additionalProperties")
            .or_insert(Value::Bool(false));
    }
    schema
}

const MAX_DEPTH: usize = 32;

fn clean(value: Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Value::Object(mut obj) = value else {
        return match value {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| clean(v, defs, depth + 1))
                    .collect(),
            ),
            other => other,
        };
    };
    if depth > MAX_DEPTH {
        return Value::Object(obj);
    }
    // Inline a reference, keeping sibling keywords (description, default) of the referrer.
    if let Some(Value::String(reference)) = obj.remove("$ref") {
        let name = reference.rsplit('/').next().unwrap_or_default();
        if let Some(Value::Object(target)) = defs.get(name) {
            for (k, v) in target {
                obj.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    // An enum of documented unit variants: oneOf [{const: "a"}, ...] -> enum ["a", ...].
    if let Some(Value::Array(branches)) = obj.get("oneOf") {
        let consts: Option<Vec<Value>> = branches
            .iter()
            .map(|b| b.get("const").filter(|c| c.is_string()).cloned())
            .collect();
        if let Some(values) = consts.filter(|v| !v.is_empty()) {
            obj.remove("oneOf");
            obj.insert("type".into(), Value::String("string".into()));
            obj.insert("enum".into(), Value::Array(values));
        }
    }
    // Doc comments wrap lines; the model reads one paragraph.
    if let Some(Value::String(d)) = obj.get_mut("description") {
        *d = unwrap_lines(d);
    }
    // Unions with null: drop the null branch; a single remaining branch merges into the parent.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = obj.remove(key) {
            let kept: Vec<Value> = branches
                .into_iter()
                .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if kept.len() == 1 {
                if let Some(Value::Object(only)) = kept.into_iter().next() {
                    let only = match clean(Value::Object(only), defs, depth + 1) {
                        Value::Object(o) => o,
                        _ => Map::new(),
                    };
                    for (k, v) in only {
                        obj.entry(k).or_insert(v);
                    }
                }
            } else {
                obj.insert(key.to_owned(), Value::Array(kept));
            }
        }
    }
    // "type": ["string", "null"] -> "type": "string".
    if let Some(Value::Array(types)) = obj.get("type").cloned() {
        let kept: Vec<Value> = types
            .into_iter()
            .filter(|t| t.as_str() != Some("null"))
            .collect();
        match kept.len() {
            0 => {
                obj.remove("type");
            }
            1 => {
                obj.insert(
                    "type".into(),
                    kept.into_iter().next().unwrap_or(Value::Null),
                );
            }
            _ => {
                obj.insert("type".into(), Value::Array(kept));
            }
        }
    }
    if obj.get("default") == Some(&Value::Null) {
        obj.remove("default");
    }
    obj.remove("nullable");
    if let Some(Value::String(format)) = obj.get("format")
        && is_rust_numeric_format(format)
    {
        obj.remove("format");
    }
    // Enum lists may carry null for Option<Enum>.
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        if matches!(
            key.as_str(),
            "properties" | "patternProperties" | "$defs" | "definitions"
        ) {
            if let Some(Value::Object(props)) = obj.remove(&key) {
                let props = props
                    .into_iter()
                    .map(|(k, v)| (k, clean(v, defs, depth + 1)))
                    .collect();
                obj.insert(key, Value::Object(props));
            }
        } else if matches!(
            key.as_str(),
            "items" | "additionalProperties" | "anyOf" | "oneOf" | "allOf" | "prefixItems" | "not"
        ) && let Some(v) = obj.remove(&key)
        {
            obj.insert(key, clean(v, defs, depth + 1));
        }
    }
    Value::Object(obj)
}

/// Join lines wrapped inside a paragraph; keep paragraph breaks.
fn unwrap_lines(s: &str) -> String {
    s.split("\n\n")
        .map(|p| p.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn is_rust_numeric_format(f: &str) -> bool {
    matches!(
        f,
        "uint"
            | "uint8"
            | "uint16"
            | "uint32"
            | "uint64"
            | "uint128"
            | "int"
            | "int8"
            | "int16"
            | "int128"
            | "double"
            | "float"
            | "usize"
            | "isize"
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> JsonObject {
        match v {
            Value::Object(o) => o,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn removes_null_types_and_inlines_refs() {
        let s = obj(json!({
            "type": "object",
            "$defs": {"Dir": {"type": "string", "enum": ["asc", "desc"]}},
            "properties": {
                "a": {"type": ["integer", "null"], "format": "uint32", "default": null, "description": "A\nB"},
                "e": {"oneOf": [{"const": "x", "type": "string"}, {"const": "y", "type": "string"}], "default": "x"},
                "d": {"anyOf": [{"$ref": "#/$defs/Dir"}, {"type": "null"}], "description": "D"},
                "l": {"type": ["array", "null"], "items": {"$ref": "#/$defs/Dir"}}
            }
        }));
        let p = Value::Object(portable(&s));
        assert_eq!(
            p,
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "description": "A B"},
                    "e": {"type": "string", "enum": ["x", "y"], "default": "x"},
                    "d": {"type": "string", "enum": ["asc", "desc"], "description": "D"},
                    "l": {"type": "array", "items": {"type": "string", "enum": ["asc", "desc"]}}
                }
            })
        );
    }
}
