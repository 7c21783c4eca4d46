//! List-records parameters: the query-string encodings (`fields[]=`, `sort[0][field]=`,
//! `+` for spaces, `%5B%5D`) and the JSON body of `POST …/listRecords`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::errors::{ApiError, ApiResult};

#[derive(Debug, Clone, Default)]
pub struct SortSpec {
    pub field: String,
    pub desc: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub page_size: Option<usize>,
    pub max_records: Option<usize>,
    pub offset: Option<String>,
    pub view: Option<String>,
    pub fields: Option<Vec<String>>,
    pub sort: Vec<SortSpec>,
    pub filter: Option<String>,
    pub cell_format: Option<String>,
    pub time_zone: Option<String>,
    pub user_locale: Option<String>,
    pub by_field_id: bool,
    pub comment_count: bool,
}

/// Decode a raw query string into pairs (`+` is a space; keys and values percent-decoded).
pub fn pairs(raw: Option<&str>) -> ApiResult<Vec<(String, String)>> {
    match raw {
        None | Some("") => Ok(Vec::new()),
        Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q).map_err(|e| {
            ApiError::invalid_request(format!("Invalid request: malformed query string ({e})"))
        }),
    }
}

pub fn parse_bool(key: &str, v: &str) -> ApiResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(ApiError::invalid_request(format!(
            "Invalid request: parameter {key} must be true or false, got \"{v}\""
        ))),
    }
}

fn parse_count(key: &str, v: &str) -> ApiResult<usize> {
    v.trim().parse::<usize>().map_err(|_| {
        ApiError::invalid_request(format!(
            "Invalid request: parameter {key} must be a non-negative integer, got \"{v}\""
        ))
    })
}

/// The array name of `fields[]`, `fields[0]` or `fields`; None for other keys.
fn array_key(key: &str, name: &str) -> bool {
    key == name
        || key
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|inner| inner.is_empty() || inner.bytes().all(|b| b.is_ascii_digit()))
}

impl ListParams {
    pub fn from_query(pairs: &[(String, String)]) -> ApiResult<ListParams> {
        let mut p = ListParams::default();
        let mut sorts: BTreeMap<usize, SortSpec> = BTreeMap::new();
        let mut fields: Vec<String> = Vec::new();
        let mut saw_fields = false;
        for (k, v) in pairs {
            match k.as_str() {
                "pageSize" => p.page_size = Some(parse_count(k, v)?),
                "maxRecords" => p.max_records = Some(parse_count(k, v)?),
                "offset" => p.offset = Some(v.clone()),
                "view" => p.view = Some(v.clone()),
                "filterByFormula" => p.filter = Some(v.clone()),
                "cellFormat" => p.cell_format = Some(v.clone()),
                "timeZone" => p.time_zone = Some(v.clone()),
                "userLocale" => p.user_locale = Some(v.clone()),
                "returnFieldsByFieldId" => p.by_field_id = parse_bool(k, v)?,
                _ if array_key(k, "fields") => {
                    saw_fields = true;
                    fields.push(v.clone());
                }
                _ if array_key(k, "recordMetadata") => {
                    if v == "commentCount" {
                        p.comment_count = true;
                    } else {
                        return Err(ApiError::invalid_request(format!(
                            "Invalid request: unknown recordMetadata value \"{v}\" (only commentCount)"
                        )));
                    }
                }
                _ if k.starts_with("sort[") => {
                    // sort[N][field] / sort[N][direction]
                    let rest = &k[5..];
                    let (idx, prop) = rest
                        .split_once("][")
                        .and_then(|(i, p)| Some((i.parse::<usize>().ok()?, p.strip_suffix(']')?)))
                        .ok_or_else(|| {
                            ApiError::invalid_request(format!(
                                "Invalid request: malformed sort parameter \"{k}\""
                            ))
                        })?;
                    let s = sorts.entry(idx).or_default();
                    match prop {
                        "field" => s.field = v.clone(),
                        "direction" => s.desc = parse_direction(v)?,
                        _ => {
                            return Err(ApiError::invalid_request(format!(
                                "Invalid request: malformed sort parameter \"{k}\""
                            )));
                        }
                    }
                }
                // Unknown parameters are ignored (Airtable's behaviour is unconfirmed).
                _ => {}
            }
        }
        if saw_fields {
            p.fields = Some(fields);
        }
        p.sort = sorts.into_values().collect();
        if p.sort.iter().any(|s| s.field.is_empty()) {
            return Err(ApiError::invalid_request(
                "Invalid request: each sort needs a field",
            ));
        }
        Ok(p)
    }

    /// `POST …/listRecords`: options in the JSON body; timeZone and userLocale stay in the query.
    pub fn from_body(body: &Value, query: &[(String, String)]) -> ApiResult<ListParams> {
        let mut p = ListParams::default();
        for (k, v) in query {
            match k.as_str() {
                "timeZone" => p.time_zone = Some(v.clone()),
                "userLocale" => p.user_locale = Some(v.clone()),
                _ => {}
            }
        }
        let obj = match body {
            Value::Null => return Ok(p),
            Value::Object(o) => o,
            _ => {
                return Err(ApiError::invalid_request(
                    "Invalid request: the body must be a JSON object",
                ));
            }
        };
        let bad = |k: &str| {
            ApiError::invalid_request(format!("Invalid request: parameter {k} has the wrong type"))
        };
        for (k, v) in obj {
            match k.as_str() {
                "pageSize" | "maxRecords" => {
                    let n = v
                        .as_u64()
                        .map(|n| n as usize)
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        .ok_or_else(|| bad(k))?;
                    if k == "pageSize" {
                        p.page_size = Some(n);
                    } else {
                        p.max_records = Some(n);
                    }
                }
                "offset" => p.offset = opt_str(v).ok_or_else(|| bad(k))?,
                "view" => p.view = opt_str(v).ok_or_else(|| bad(k))?,
                "filterByFormula" => p.filter = opt_str(v).ok_or_else(|| bad(k))?,
                "cellFormat" => p.cell_format = opt_str(v).ok_or_else(|| bad(k))?,
                "timeZone" => p.time_zone = opt_str(v).ok_or_else(|| bad(k))?,
                "userLocale" => p.user_locale = opt_str(v).ok_or_else(|| bad(k))?,
                "returnFieldsByFieldId" => {
                    p.by_field_id = match v {
                        Value::Bool(b) => *b,
                        Value::Number(n) => n.as_u64() == Some(1),
                        Value::String(s) => parse_bool(k, s)?,
                        Value::Null => false,
                        _ => return Err(bad(k)),
                    }
                }
                "fields" => {
                    let a = v.as_array().ok_or_else(|| bad(k))?;
                    p.fields = Some(
                        a.iter()
                            .map(|x| x.as_str().map(str::to_string).ok_or_else(|| bad(k)))
                            .collect::<ApiResult<_>>()?,
                    );
                }
                "recordMetadata" => {
                    let a = v.as_array().ok_or_else(|| bad(k))?;
                    for x in a {
                        match x.as_str() {
                            Some("commentCount") => p.comment_count = true,
                            _ => return Err(bad(k)),
                        }
                    }
                }
                "sort" => {
                    let a = v.as_array().ok_or_else(|| bad(k))?;
                    for s in a {
                        let field = s
                            .get("field")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(k))?
                            .to_string();
                        let desc = match s.get("direction") {
                            None | Some(Value::Null) => false,
                            Some(Value::String(d)) => parse_direction(d)?,
                            _ => return Err(bad(k)),
                        };
                        p.sort.push(SortSpec { field, desc });
                    }
                }
                _ => {}
            }
        }
        Ok(p)
    }
}

fn opt_str(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        _ => None,
    }
}

fn parse_direction(v: &str) -> ApiResult<bool> {
    match v {
        "asc" => Ok(false),
        "desc" => Ok(true),
        _ => Err(ApiError::invalid_request(format!(
            "Invalid request: sort direction must be asc or desc, got \"{v}\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_airtable_js_and_pyairtable_encodings() {
        let q = "fields%5B%5D=Name&fields%5B%5D=Due+date&sort%5B0%5D%5Bfield%5D=Due+date&sort%5B0%5D%5Bdirection%5D=desc&sort[1][field]=Name&pageSize=10&returnFieldsByFieldId=1&recordMetadata[]=commentCount&filterByFormula=%7BName%7D+%3D+%27a+b%27";
        let p = ListParams::from_query(&pairs(Some(q)).unwrap()).unwrap();
        assert_eq!(
            p.fields,
            Some(vec!["Name".to_string(), "Due date".to_string()])
        );
        assert_eq!(p.sort.len(), 2);
        assert_eq!(p.sort[0].field, "Due date");
        assert!(p.sort[0].desc);
        assert!(!p.sort[1].desc);
        assert_eq!(p.page_size, Some(10));
        assert!(p.by_field_id && p.comment_count);
        assert_eq!(p.filter.as_deref(), Some("{Name} = 'a b'"));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(ListParams::from_query(&pairs(Some("pageSize=abc")).unwrap()).is_err());
        assert!(
            ListParams::from_query(&pairs(Some("sort[0][direction]=up&sort[0][field]=A")).unwrap())
                .is_err()
        );
        assert!(
            ListParams::from_query(&pairs(Some("returnFieldsByFieldId=maybe")).unwrap()).is_err()
        );
    }
}
