//! The bridge between the sandbox and the formula engine (`crate::formula`).
//!
//! Interim: until the formula engine lands, formulas compile to a placeholder whose value is
//! an error, and filterByFormula answers 422.

use chrono::{DateTime, Utc};

/// A formula value (mirrors `crate::formula::Value`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Blank,
    Number(f64),
    Text(String),
    Bool(bool),
    DateTime(DateTime<Utc>),
    Array(Vec<Value>),
    Error(String),
}

#[allow(dead_code)] // interim: used once the formula engine lands
pub trait Ctx {
    fn field(&self, name: &str) -> Option<Value>;
    fn record_id(&self) -> &str;
    fn created_time(&self) -> DateTime<Utc>;
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone)]
pub struct Compiled {
    _src: String,
}

/// Whether the formula engine is linked in.
pub fn available() -> bool {
    false
}

/// Parse and check a formula against the known field names; the error is Airtable's message.
pub fn compile(src: &str, _fields: &[&str]) -> Result<Compiled, String> {
    Ok(Compiled {
        _src: src.to_string(),
    })
}

pub fn eval(_c: &Compiled, _ctx: &dyn Ctx) -> Value {
    Value::Error("#ERROR!".into())
}

pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Blank | Value::Error(_) => false,
        Value::Number(n) => *n != 0.0 && !n.is_nan(),
        Value::Text(s) => !s.is_empty(),
        Value::Bool(b) => *b,
        Value::DateTime(_) => true,
        Value::Array(a) => !a.is_empty(),
    }
}
