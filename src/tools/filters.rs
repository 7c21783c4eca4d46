//! Structured filters: an and/or tree of conditions compiled to an Airtable formula.
//!
//! Public API (stable; search_records, aggregate_records and count_records use it too):
//! - [`Filters`]: the `filters` tool parameter (Deserialize + JsonSchema), two levels deep:
//!   `{"match": "all"|"any", "conditions": [...], "groups": [{"match", "conditions"}], "time_zone"}`.
//! - [`compile`]`(&Filters, &Table) -> Result<String, ToolError>`: checks every condition against
//!   the table's fields BEFORE any request (unknown field with a suggestion, operator valid for
//!   the field type, select choices by name, numbers, dates) and returns the formula.
//! - [`and_formulas`]: AND-s the compiled filters with a `filter_by_formula`.
//! - [`read_formula`]: what every read sends for `filters` + `filter_by_formula`: both checked
//!   against the table, then AND-ed (the one place the reads combine them).
//!
//! Semantics (the sandbox evaluates the same formulas; tests/integration/filters.rs checks them):
//! - `=`/`!=` on text and selects are exact; `contains`/`does_not_contain` are case-insensitive.
//! - Number and date comparisons never match an empty cell (`!=` does).
//! - Dates compare by day ("YYYY-MM-DD"); date-time fields are read in `time_zone` (default UTC).
//! - `has_any_of`/`has_all_of`/`is_none_of` on multi-selects, links (by primary field value),
//!   lookups and collaborators test whole items.
//! - `is_within`: today, tomorrow, yesterday, past_week/month/year, next_week/month/year (today
//!   included), or `{"past_n_days": N}` / `{"next_n_days": N}`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::airtable::{Field, FieldType, Table};
use crate::formula::{field_ref, string_literal};
use crate::tools::ToolError;
use crate::tools::validation::{check_formula, find_field, suggest};

/// Most conditions in one `filters` tree.
pub(crate) const MAX_CONDITIONS: usize = 50;

/// How the items of a group combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Match {
    /// Every item must hold (AND).
    #[default]
    All,
    /// At least one item must hold (OR).
    Any,
}

/// Structured filters, e.g. {"conditions": [{"field": "Status", "op": "is_any_of", "value": ["Todo", "Doing"]}]}.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Filters {
    /// "all" (AND, default) or "any" (OR) over conditions and groups.
    #[serde(default, rename = "match")]
    pub(crate) mode: Match,
    /// Conditions.
    #[serde(default)]
    pub(crate) conditions: Vec<Condition>,
    /// Nested groups, each {"match", "conditions"}.
    #[serde(default)]
    pub(crate) groups: Vec<Group>,
    /// IANA time zone for dates and is_within (default UTC).
    #[serde(default)]
    pub(crate) time_zone: Option<String>,
}

/// A group.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Group {
    /// "all" or "any".
    #[serde(default, rename = "match")]
    pub(crate) mode: Match,
    /// Conditions, as above.
    #[schemars(with = "Vec<serde_json::Map<String, Value>>")]
    pub(crate) conditions: Vec<Condition>,
}

/// A condition.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Condition {
    /// Field name or ID.
    pub(crate) field: String,
    /// Operator.
    pub(crate) op: Op,
    /// Text, number, bool, "YYYY-MM-DD", list for *_of; is_within: "past_week", {"next_n_days": 3}...
    #[serde(default)]
    pub(crate) value: Option<Value>,
}

/// Filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[allow(missing_docs)]
pub(crate) enum Op {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "contains")]
    Contains,
    #[serde(rename = "does_not_contain")]
    DoesNotContain,
    #[serde(rename = "is_empty")]
    IsEmpty,
    #[serde(rename = "is_not_empty")]
    IsNotEmpty,
    #[serde(rename = "is_any_of")]
    IsAnyOf,
    #[serde(rename = "is_none_of")]
    IsNoneOf,
    #[serde(rename = "has_any_of")]
    HasAnyOf,
    #[serde(rename = "has_all_of")]
    HasAllOf,
    #[serde(rename = "is_within")]
    IsWithin,
}

impl Op {
    /// The wire spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::DoesNotContain => "does_not_contain",
            Op::IsEmpty => "is_empty",
            Op::IsNotEmpty => "is_not_empty",
            Op::IsAnyOf => "is_any_of",
            Op::IsNoneOf => "is_none_of",
            Op::HasAnyOf => "has_any_of",
            Op::HasAllOf => "has_all_of",
            Op::IsWithin => "is_within",
        }
    }
}

/// How a field's values behave in filters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// Text-like: exact =, case-insensitive contains.
    Text,
    /// Numbers (number, currency, percent as a fraction, duration in seconds, rating, count).
    Number,
    /// Checkbox: = true/false.
    Checkbox,
    /// Date or date-time; `zoned` when the value has a time (read in the filter's time zone).
    Date {
        /// Whether the field holds a time (read in `time_zone`).
        zoned: bool,
    },
    /// Single select with its choice names.
    Select(Vec<String>),
    /// Several items: multi-select (with its choices), links, lookups, collaborators, attachments.
    Multi(Option<Vec<String>>),
    /// Anything else: emptiness only.
    Other,
}

impl Kind {
    /// The operators valid for this kind.
    pub(crate) fn ops(&self) -> &'static [Op] {
        use Op::*;
        match self {
            Kind::Text => &[
                Eq,
                Ne,
                Contains,
                DoesNotContain,
                IsEmpty,
                IsNotEmpty,
                IsAnyOf,
                IsNoneOf,
            ],
            Kind::Number => &[
                Eq, Ne, Lt, Gt, Le, Ge, IsEmpty, IsNotEmpty, IsAnyOf, IsNoneOf,
            ],
            Kind::Checkbox => &[Eq, Ne],
            Kind::Date { .. } => &[Eq, Ne, Lt, Gt, Le, Ge, IsEmpty, IsNotEmpty, IsWithin],
            Kind::Select(_) => &[Eq, Ne, IsAnyOf, IsNoneOf, IsEmpty, IsNotEmpty],
            Kind::Multi(_) => &[
                HasAnyOf,
                HasAllOf,
                IsNoneOf,
                Contains,
                DoesNotContain,
                IsEmpty,
                IsNotEmpty,
            ],
            Kind::Other => &[IsEmpty, IsNotEmpty],
        }
    }
}

fn choices(field_options: Option<&Value>) -> Vec<String> {
    field_options
        .and_then(|o| o.get("choices"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn kind_of_type(t: &FieldType, options: Option<&Value>) -> Kind {
    use FieldType as T;
    match t {
        T::SingleLineText
        | T::Email
        | T::Url
        | T::MultilineText
        | T::RichText
        | T::PhoneNumber
        | T::AiText
        | T::SingleCollaborator
        | T::CreatedBy
        | T::LastModifiedBy => Kind::Text,
        T::Number
        | T::Percent
        | T::Currency
        | T::Duration
        | T::Rating
        | T::Count
        | T::AutoNumber => Kind::Number,
        T::Checkbox => Kind::Checkbox,
        T::Date => Kind::Date { zoned: false },
        T::DateTime | T::CreatedTime | T::LastModifiedTime => Kind::Date { zoned: true },
        T::SingleSelect => Kind::Select(choices(options)),
        T::MultipleSelects => Kind::Multi(Some(choices(options))),
        T::MultipleRecordLinks
        | T::MultipleLookupValues
        | T::MultipleCollaborators
        | T::MultipleAttachments => Kind::Multi(None),
        T::Formula | T::Rollup => {
            let result = options.and_then(|o| o.get("result"));
            match result
                .and_then(|r| r.get("type"))
                .and_then(Value::as_str)
                .map(FieldType::from_wire)
            {
                Some(T::Formula | T::Rollup) | None => Kind::Text,
                Some(rt) => match kind_of_type(&rt, result.and_then(|r| r.get("options"))) {
                    Kind::Select(_) => Kind::Text,
                    k => k,
                },
            }
        }
        _ => Kind::Other,
    }
}

/// How a field behaves in filters.
pub(crate) fn kind_of(field: &Field) -> Kind {
    kind_of_type(&field.field_type, field.options.as_ref())
}

fn invalid(msg: String) -> ToolError {
    ToolError::Invalid(format!("filters: {msg} (nothing was sent to Airtable)"))
}

/// Compile `filters` into a formula for `table`, checking it against the field types first.
pub(crate) fn compile(filters: &Filters, table: &Table) -> Result<String, ToolError> {
    let total = filters.conditions.len()
        + filters
            .groups
            .iter()
            .map(|g| g.conditions.len())
            .sum::<usize>();
    if total == 0 {
        return Err(invalid("no conditions given".into()));
    }
    if total > MAX_CONDITIONS {
        return Err(invalid(format!(
            "{total} conditions; at most {MAX_CONDITIONS}"
        )));
    }
    let tz = match filters.time_zone.as_deref().map(str::trim) {
        None | Some("") => "UTC".to_owned(),
        Some(z) => {
            if z.parse::<crate::formula::zone::Zone>().is_err() {
                return Err(invalid(format!(
                    "unknown time_zone {z:?}; use an IANA name such as \"Europe/Paris\""
                )));
            }
            z.to_owned()
        }
    };
    let mut items = Vec::with_capacity(filters.conditions.len() + filters.groups.len());
    for c in &filters.conditions {
        items.push(condition(c, table, &tz)?);
    }
    for g in &filters.groups {
        if g.conditions.is_empty() {
            return Err(invalid("a group has no conditions".into()));
        }
        let mut parts = Vec::with_capacity(g.conditions.len());
        for c in &g.conditions {
            parts.push(condition(c, table, &tz)?);
        }
        items.push(join(g.mode, parts));
    }
    Ok(join(filters.mode, items))
}

/// Deserialize an optional `filters` leniently: an object, the same object as a JSON string
/// (some clients send nested objects as text), or null.
pub(crate) fn lenient_filters<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Filters>, D::Error> {
    use serde::de::Error as _;
    let v = Value::deserialize(d)?;
    let v = match v {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => serde_json::from_str::<Value>(&s)
            .map_err(|e| D::Error::custom(format!("filters: not a JSON object ({e})")))?,
        other => other,
    };
    serde_json::from_value(v)
        .map(Some)
        .map_err(D::Error::custom)
}

/// The formula a read sends for its `filters` and `filter_by_formula`, both checked before any
/// request: against the table's fields when its schema is known; without a schema (no
/// schema.bases:read scope) `filters` are refused and the formula is only parsed.
pub(crate) fn read_formula(
    table: Option<&Table>,
    filters: Option<&Filters>,
    filter_by_formula: Option<&str>,
) -> Result<Option<String>, ToolError> {
    match (table, filter_by_formula) {
        (Some(t), Some(f)) => check_formula(t, f)?,
        (None, Some(f)) => {
            crate::formula::parse(f).map_err(|e| {
                ToolError::Invalid(format!(
                    "filter_by_formula is invalid (nothing was sent to Airtable): {}",
                    e.render(f)
                ))
            })?;
        }
        (_, None) => {}
    }
    let compiled = match (filters, table) {
        (Some(f), Some(t)) => Some(compile(f, t)?),
        (Some(_), None) => {
            return Err(ToolError::Invalid(
                "filters need the table schema, which could not be read (schema.bases:read scope); use filter_by_formula".into(),
            ));
        }
        (None, _) => None,
    };
    Ok(and_formulas(compiled, filter_by_formula.map(str::to_owned)))
}

/// AND the compiled filters with a filter_by_formula (either may be absent).
pub(crate) fn and_formulas(filters: Option<String>, formula: Option<String>) -> Option<String> {
    match (filters, formula) {
        (Some(a), Some(b)) => Some(format!("AND({a},{b})")),
        (a, b) => a.or(b),
    }
}

fn join(mode: Match, mut parts: Vec<String>) -> String {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let f = match mode {
        Match::All => "AND",
        Match::Any => "OR",
    };
    format!("{f}({})", parts.join(","))
}

fn condition(c: &Condition, table: &Table, tz: &str) -> Result<String, ToolError> {
    let Some(field) = find_field(table, &c.field) else {
        let names: Vec<&str> = table.fields.iter().map(|f| f.name.as_str()).collect();
        let hint = suggest(&c.field, names.iter().copied())
            .map(|s| format!(" Did you mean {s:?}?"))
            .unwrap_or_default();
        return Err(invalid(format!(
            "unknown field {:?} in table {:?}.{hint} Fields: {}.",
            c.field,
            table.name,
            names
                .iter()
                .take(40)
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let kind = kind_of(field);
    if !kind.ops().contains(&c.op) {
        return Err(invalid(format!(
            "operator {:?} does not apply to field {:?} ({}); valid: {}",
            c.op.as_str(),
            field.name,
            field.field_type.as_str(),
            kind.ops()
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let r = field_ref(&field.name);
    let text = format!("{r}&\"\"");
    let nonblank = format!("LEN({text})>0");
    let ctx = Ctx {
        field,
        op: c.op,
        value: c.value.as_ref(),
    };
    match c.op {
        Op::IsEmpty => return Ok(format!("LEN({text})=0")),
        Op::IsNotEmpty => return Ok(nonblank),
        _ => {}
    }
    let out = match &kind {
        Kind::Text | Kind::Select(_) => {
            let choices = match &kind {
                Kind::Select(ch) => Some(ch.as_slice()),
                _ => None,
            };
            match c.op {
                Op::Eq | Op::Ne => {
                    let v = ctx.text(choices)?;
                    negate(c.op == Op::Ne, format!("{text}={}", string_literal(&v)))
                }
                Op::Contains | Op::DoesNotContain => {
                    let v = ctx.text(None)?;
                    negate(
                        c.op == Op::DoesNotContain,
                        format!("FIND(LOWER({}),LOWER({text}))>0", string_literal(&v)),
                    )
                }
                _ => {
                    let vs = ctx.texts(choices)?;
                    let parts = vs
                        .iter()
                        .map(|v| format!("{text}={}", string_literal(v)))
                        .collect();
                    negate(c.op == Op::IsNoneOf, join(Match::Any, parts))
                }
            }
        }
        Kind::Number => match c.op {
            Op::IsAnyOf | Op::IsNoneOf => {
                let ns = ctx.numbers()?;
                let parts = ns.iter().map(|n| format!("{r}={n}")).collect();
                negate(
                    c.op == Op::IsNoneOf,
                    format!("IF({nonblank},{})", join(Match::Any, parts)),
                )
            }
            op => {
                let n = ctx.number()?;
                let cmp = match op {
                    Op::Ne => "=",
                    o => o.as_str(),
                };
                negate(op == Op::Ne, format!("IF({nonblank},{r}{cmp}{n})"))
            }
        },
        Kind::Checkbox => {
            let Some(b) = ctx.value.and_then(Value::as_bool) else {
                return Err(ctx.bad("true or false"));
            };
            negate(b == (c.op == Op::Ne), r.clone())
        }
        Kind::Date { zoned } => {
            let day = if *zoned {
                format!(
                    "DATETIME_FORMAT(SET_TIMEZONE({r},{}),'YYYY-MM-DD')",
                    string_literal(tz)
                )
            } else {
                format!("DATETIME_FORMAT({r},'YYYY-MM-DD')")
            };
            if c.op == Op::IsWithin {
                let (lo, hi) = ctx.within(tz)?;
                format!("IF({nonblank},AND(NOT(IS_BEFORE({day},{lo})),NOT(IS_AFTER({day},{hi}))))")
            } else {
                let d = string_literal(&ctx.date()?);
                let cmp = match c.op {
                    Op::Eq | Op::Ne => format!("{day}={d}"),
                    Op::Lt => format!("IS_BEFORE({day},{d})"),
                    Op::Gt => format!("IS_AFTER({day},{d})"),
                    Op::Le => format!("NOT(IS_AFTER({day},{d}))"),
                    _ => format!("NOT(IS_BEFORE({day},{d}))"),
                };
                negate(c.op == Op::Ne, format!("IF({nonblank},{cmp})"))
            }
        }
        Kind::Multi(choices) => match c.op {
            Op::Contains | Op::DoesNotContain => {
                let v = ctx.text(None)?;
                negate(
                    c.op == Op::DoesNotContain,
                    format!("FIND(LOWER({}),LOWER({text}))>0", string_literal(&v)),
                )
            }
            _ => {
                let vs = ctx.texts(choices.as_deref())?;
                let parts = vs
                    .iter()
                    .map(|v| {
                        format!(
                            "FIND({},\", \"&{text}&\", \")>0",
                            string_literal(&format!(", {v}, "))
                        )
                    })
                    .collect();
                match c.op {
                    Op::HasAllOf => join(Match::All, parts),
                    Op::HasAnyOf => join(Match::Any, parts),
                    _ => negate(true, join(Match::Any, parts)),
                }
            }
        },
        Kind::Other => return Err(ctx.bad("no value")),
    };
    Ok(out)
}

fn negate(yes: bool, f: String) -> String {
    if yes { format!("NOT({f})") } else { f }
}

struct Ctx<'a> {
    field: &'a Field,
    op: Op,
    value: Option<&'a Value>,
}

impl Ctx<'_> {
    fn bad(&self, want: &str) -> ToolError {
        invalid(format!(
            "{:?} on field {:?} ({}) takes {want}; got {}",
            self.op.as_str(),
            self.field.name,
            self.field.field_type.as_str(),
            self.value
                .map(|v| v.to_string())
                .unwrap_or_else(|| "no value".into())
        ))
    }

    fn one_text(&self, v: &Value, choices: Option<&[String]>) -> Result<String, ToolError> {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(self.bad("text")),
        };
        if s.is_empty() {
            return Err(self.bad("non-empty text (use is_empty for empty cells)"));
        }
        if let Some(ch) = choices.filter(|c| !c.is_empty())
            && !ch.contains(&s)
        {
            let hint = suggest(&s, ch.iter().map(String::as_str))
                .map(|h| format!(" Did you mean {h:?}?"))
                .unwrap_or_default();
            return Err(invalid(format!(
                "{s:?} is not a choice of field {:?}.{hint} Choices: {}.",
                self.field.name,
                ch.iter()
                    .take(40)
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(s)
    }

    fn text(&self, choices: Option<&[String]>) -> Result<String, ToolError> {
        match self.value {
            Some(v) => self.one_text(v, choices),
            None => Err(self.bad("text")),
        }
    }

    fn list(&self) -> Result<Vec<&Value>, ToolError> {
        match self.value {
            Some(Value::Array(a)) if !a.is_empty() => Ok(a.iter().collect()),
            Some(Value::Array(_)) | None => Err(self.bad("a non-empty list")),
            Some(v) => Ok(vec![v]),
        }
    }

    fn texts(&self, choices: Option<&[String]>) -> Result<Vec<String>, ToolError> {
        self.list()?
            .into_iter()
            .map(|v| self.one_text(v, choices))
            .collect()
    }

    fn one_number(&self, v: &Value) -> Result<String, ToolError> {
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() => Ok(format_number(n)),
            _ => Err(self.bad("a number")),
        }
    }

    fn number(&self) -> Result<String, ToolError> {
        match self.value {
            Some(v) => self.one_number(v),
            None => Err(self.bad("a number")),
        }
    }

    fn numbers(&self) -> Result<Vec<String>, ToolError> {
        self.list()?
            .into_iter()
            .map(|v| self.one_number(v))
            .collect()
    }

    fn date(&self) -> Result<String, ToolError> {
        let s = self.value.and_then(Value::as_str).map(str::trim);
        match s.and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()) {
            Some(d) => Ok(d.format("%Y-%m-%d").to_string()),
            None => Err(self.bad("a date \"YYYY-MM-DD\"")),
        }
    }

    /// The inclusive day range of is_within, as formula expressions.
    fn within(&self, tz: &str) -> Result<(String, String), ToolError> {
        const WANT: &str = "today, tomorrow, yesterday, past_week, past_month, past_year, next_week, next_month, next_year, {\"past_n_days\": N} or {\"next_n_days\": N}";
        let today = format!(
            "DATETIME_FORMAT(SET_TIMEZONE(NOW(),{}),'YYYY-MM-DD')",
            string_literal(tz)
        );
        let add = |n: i64, unit: &str| format!("DATEADD({today},{n},'{unit}')");
        let (name, n) = match self.value {
            Some(Value::String(s)) => (s.as_str(), None),
            Some(Value::Object(o)) if o.len() == 1 => {
                let (k, v) = o.iter().next().ok_or_else(|| self.bad(WANT))?;
                let n = v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .filter(|n| (0..=36_600).contains(n))
                    .ok_or_else(|| self.bad(WANT))?;
                (k.as_str(), Some(n))
            }
            _ => return Err(self.bad(WANT)),
        };
        let range = match (name, n) {
            ("today", None) => (add(0, "days"), add(0, "days")),
            ("tomorrow", None) => (add(1, "days"), add(1, "days")),
            ("yesterday", None) => (add(-1, "days"), add(-1, "days")),
            ("past_week", None) => (add(-7, "days"), add(0, "days")),
            ("past_month", None) => (add(-1, "months"), add(0, "days")),
            ("past_year", None) => (add(-1, "years"), add(0, "days")),
            ("next_week", None) => (add(0, "days"), add(7, "days")),
            ("next_month", None) => (add(0, "days"), add(1, "months")),
            ("next_year", None) => (add(0, "days"), add(1, "years")),
            ("past_n_days", Some(n)) => (add(-n, "days"), add(0, "days")),
            ("next_n_days", Some(n)) => (add(0, "days"), add(n, "days")),
            _ => return Err(self.bad(WANT)),
        };
        Ok(range)
    }
}

/// A number as formula text (never an exponent, which formulas do not read).
pub(crate) fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Table {
        serde_json::from_value(json!({
            "id": "tblAAAAAAAAAAAAAA",
            "name": "Tasks",
            "primaryFieldId": "fldAAAAAAAAAAAAA1",
            "fields": [
                {"id": "fldAAAAAAAAAAAAA1", "name": "Name", "type": "singleLineText"},
                {"id": "fldAAAAAAAAAAAAA2", "name": "Status", "type": "singleSelect",
                 "options": {"choices": [{"id": "sel1", "name": "Todo"}, {"id": "sel2", "name": "Done"}]}},
                {"id": "fldAAAAAAAAAAAAA3", "name": "Tags", "type": "multipleSelects",
                 "options": {"choices": [{"id": "sel3", "name": "red"}, {"id": "sel4", "name": "blue"}]}},
                {"id": "fldAAAAAAAAAAAAA4", "name": "Points", "type": "number", "options": {"precision": 0}},
                {"id": "fldAAAAAAAAAAAAA5", "name": "Due", "type": "date", "options": {"dateFormat": {"name": "iso"}}},
                {"id": "fldAAAAAAAAAAAAA6", "name": "Done?", "type": "checkbox", "options": {}},
                {"id": "fldAAAAAAAAAAAAA7", "name": "When", "type": "dateTime", "options": {}}
            ],
            "views": []
        }))
        .unwrap()
    }

    fn f(v: Value) -> Filters {
        serde_json::from_value(v).unwrap()
    }

    fn err(v: Value) -> String {
        compile(&f(v), &table()).unwrap_err().to_string()
    }

    #[test]
    fn compiles_and_escapes() {
        let out = compile(
            &f(json!({"conditions": [
                {"field": "Name", "op": "=", "value": "a\"b"},
                {"field": "Status", "op": "is_any_of", "value": ["Todo", "Done"]}
            ]})),
            &table(),
        )
        .unwrap();
        assert_eq!(
            out,
            r#"AND({Name}&""="a\"b",OR({Status}&""="Todo",{Status}&""="Done"))"#
        );
        crate::formula::parse(&out).unwrap();
    }

    #[test]
    fn groups_and_every_kind_parse() {
        let out = compile(
            &f(
                json!({"match": "any", "time_zone": "Europe/Paris", "conditions": [
                    {"field": "Points", "op": ">=", "value": -2.5},
                    {"field": "Due", "op": "is_within", "value": {"past_n_days": 3}},
                    {"field": "When", "op": "<", "value": "2024-02-29"}
                ], "groups": [{"match": "all", "conditions": [
                    {"field": "Tags", "op": "has_all_of", "value": ["red", "blue"]},
                    {"field": "Done?", "op": "=", "value": false},
                    {"field": "Name", "op": "does_not_contain", "value": "x"},
                    {"field": "Status", "op": "is_empty"}
                ]}]}),
            ),
            &table(),
        )
        .unwrap();
        assert!(out.starts_with("OR(IF(LEN({Points}&\"\")>0,{Points}>=-2.5),"));
        assert!(out.contains("SET_TIMEZONE({When},\"Europe/Paris\")"));
        assert!(out.contains("NOT({Done?})"));
        crate::formula::parse(&out).unwrap();
    }

    #[test]
    fn errors_say_what_to_fix() {
        let e = err(json!({"conditions": [{"field": "Stauts", "op": "=", "value": "Todo"}]}));
        assert!(e.contains("Did you mean \"Status\""), "{e}");
        let e = err(json!({"conditions": [{"field": "Status", "op": "<", "value": "Todo"}]}));
        assert!(e.contains("valid: =, !=, is_any_of"), "{e}");
        let e = err(json!({"conditions": [{"field": "Status", "op": "=", "value": "Dne"}]}));
        assert!(e.contains("Did you mean \"Done\""), "{e}");
        let e = err(json!({"conditions": [{"field": "Points", "op": "=", "value": "many"}]}));
        assert!(e.contains("a number"), "{e}");
        let e = err(json!({"conditions": [{"field": "Due", "op": "=", "value": "2024-13-01"}]}));
        assert!(e.contains("YYYY-MM-DD"), "{e}");
        let e = err(
            json!({"conditions": [{"field": "Due", "op": "is_within", "value": "past_decade"}]}),
        );
        assert!(e.contains("past_week"), "{e}");
        let e = err(json!({"conditions": []}));
        assert!(e.contains("no conditions"), "{e}");
        let many: Vec<Value> = (0..51)
            .map(|_| json!({"field": "Name", "op": "is_not_empty"}))
            .collect();
        assert!(err(json!({"conditions": many})).contains("at most 50"));
        let e = err(
            json!({"time_zone": "Mars/Base", "conditions": [{"field": "Name", "op": "is_empty"}]}),
        );
        assert!(e.contains("time_zone"), "{e}");
    }

    #[test]
    fn filters_may_come_as_text() {
        #[derive(Deserialize)]
        struct P {
            #[serde(default, deserialize_with = "lenient_filters")]
            filters: Option<Filters>,
        }
        let p: P = serde_json::from_value(json!({
            "filters": "{\"conditions\": [{\"field\": \"Name\", \"op\": \"is_empty\"}]}"
        }))
        .unwrap();
        assert_eq!(
            compile(&p.filters.unwrap(), &table()).unwrap(),
            "LEN({Name}&\"\")=0"
        );
        let p: P = serde_json::from_value(json!({"filters": null})).unwrap();
        assert!(p.filters.is_none());
        assert!(
            serde_json::from_value::<P>(
                json!({"filters": {"conditions": [{"field": "Name", "op": "like"}]}})
            )
            .is_err()
        );
    }

    #[test]
    fn combines_with_formula() {
        assert_eq!(
            and_formulas(Some("A".into()), Some("B".into())).as_deref(),
            Some("AND(A,B)")
        );
        assert_eq!(and_formulas(None, Some("B".into())).as_deref(), Some("B"));
        assert_eq!(and_formulas(None, None), None);
    }
}
