//! The evaluator: Airtable's operator semantics and coercions.

use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use super::ast::{BinOp, Expr, ExprKind};
use super::functions::{self, Func};
use super::value::{Value, flatten, format_iso, parse_datetime, parse_number};

/// What a formula can see of the record it is evaluated for.
pub trait EvalContext {
    /// The value of a field for this record. `None` (like `Some(Value::Blank)`) means empty;
    /// whether a field exists is `check`'s business, not the evaluator's.
    fn field(&self, name: &str) -> Option<Value>;
    /// RECORD_ID().
    fn record_id(&self) -> &str;
    /// CREATED_TIME().
    fn created_time(&self) -> DateTime<Utc>;
    /// NOW() and TODAY().
    fn now(&self) -> DateTime<Utc>;
    /// LAST_MODIFIED_TIME(); defaults to the created time.
    fn last_modified_time(&self) -> DateTime<Utc> {
        self.created_time()
    }
}

/// A ready-made [`EvalContext`] over a map of field values (tests, the tools layer).
#[derive(Debug, Clone)]
pub struct MapContext {
    pub fields: HashMap<String, Value>,
    pub record_id: String,
    pub created_time: DateTime<Utc>,
    pub last_modified_time: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

impl MapContext {
    /// An empty record `recAAAAAAAAAAAAAA` created at and evaluated at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        MapContext {
            fields: HashMap::new(),
            record_id: "recAAAAAAAAAAAAAA".to_string(),
            created_time: now,
            last_modified_time: None,
            now,
        }
    }

    /// Adds a field value (builder style).
    pub fn with(mut self, name: impl Into<String>, v: Value) -> Self {
        self.fields.insert(name.into(), v);
        self
    }
}

impl EvalContext for MapContext {
    fn field(&self, name: &str) -> Option<Value> {
        self.fields.get(name).cloned()
    }
    fn record_id(&self) -> &str {
        &self.record_id
    }
    fn created_time(&self) -> DateTime<Utc> {
        self.created_time
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
    fn last_modified_time(&self) -> DateTime<Utc> {
        self.last_modified_time.unwrap_or(self.created_time)
    }
}

/// Airtable's filterByFormula include rule: a record is included unless the result is 0,
/// false, "", NaN, blank, an empty array or an error. A non-empty array is truthy when any of
/// its items is.
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Blank | Value::Error(_) => false,
        Value::Number(n) => *n != 0.0 && !n.is_nan(),
        Value::Text(s) => !s.is_empty(),
        Value::Bool(b) => *b,
        Value::DateTime(_) => true,
        Value::Array(items) => flatten(items).iter().any(is_truthy),
    }
}

/// Evaluates a parsed formula for one record. Never panics; problems become `Value::Error`.
/// Recursion is bounded by the parser's depth limit.
/// Under a [`super::budget::run`] scope each node is one step; once the budget is spent the
/// result is an error value (and the scope reports [`super::BudgetExceeded`]).
pub fn eval(expr: &Expr, ctx: &dyn EvalContext) -> Value {
    if !super::budget::charge(1) {
        return super::budget::over_budget();
    }
    match &expr.kind {
        ExprKind::Number(n) => Value::Number(*n),
        ExprKind::Text(s) => Value::Text(s.clone()),
        ExprKind::Field { name, .. } => ctx.field(name).unwrap_or(Value::Blank),
        ExprKind::Neg(inner) => match eval(inner, ctx).to_number() {
            Ok(n) => Value::Number(-n),
            Err(e) => e,
        },
        ExprKind::Binary { op, lhs, rhs } => {
            let a = eval(lhs, ctx);
            let b = eval(rhs, ctx);
            binary(*op, &a, &b)
        }
        ExprKind::Call { name, func, args } => call(name, *func, args, ctx),
    }
}

fn call(name: &str, func: Option<Func>, args: &[Expr], ctx: &dyn EvalContext) -> Value {
    let Some(f) = func else {
        return Value::error(format!("unknown function {name}()"));
    };
    if !f.accepts(args.len()) {
        return Value::error(format!("{} takes {}", f.name(), f.arity_text()));
    }
    match f {
        // lazy: only the chosen branch is evaluated
        Func::If => {
            let Some(cond) = args.first() else {
                return Value::Blank;
            };
            let c = eval(cond, ctx);
            if let Value::Error(_) = c {
                return c;
            }
            let branch = if is_truthy(&c) {
                args.get(1)
            } else {
                args.get(2)
            };
            branch.map_or(Value::Blank, |e| eval(e, ctx))
        }
        Func::Switch => {
            let Some(subject) = args.first() else {
                return Value::Blank;
            };
            let s = eval(subject, ctx);
            if let Value::Error(_) = s {
                return s;
            }
            let rest = args.get(1..).unwrap_or_default();
            let mut pairs = rest.chunks_exact(2);
            for pair in pairs.by_ref() {
                if let [pattern, result] = pair {
                    match values_equal(&s, &eval(pattern, ctx)) {
                        Ok(true) => return eval(result, ctx),
                        Ok(false) => {}
                        Err(e) => return e,
                    }
                }
            }
            pairs
                .remainder()
                .first()
                .map_or(Value::Blank, |d| eval(d, ctx))
        }
        Func::DatetimeFormat => {
            // DATETIME_FORMAT(SET_TIMEZONE(d, tz), fmt) shows d in tz
            if let Some(Expr {
                kind:
                    ExprKind::Call {
                        func: Some(Func::SetTimezone),
                        args: inner,
                        ..
                    },
                ..
            }) = args.first()
                && inner.len() == 2
            {
                let zoned: Vec<Value> = inner.iter().map(|a| eval(a, ctx)).collect();
                let fmt = args.get(1).map(|a| eval(a, ctx));
                return functions::format_in_zone(&zoned, fmt.as_ref());
            }
            let vals: Vec<Value> = args.iter().map(|a| eval(a, ctx)).collect();
            functions::call(f, &vals, ctx)
        }
        _ => {
            let vals: Vec<Value> = args.iter().map(|a| eval(a, ctx)).collect();
            functions::call(f, &vals, ctx)
        }
    }
}

/// Applies a binary operator to two values.
pub fn binary(op: BinOp, a: &Value, b: &Value) -> Value {
    let r = match op {
        BinOp::Eq => values_equal(a, b).map(Value::Bool),
        BinOp::Ne => values_equal(a, b).map(|e| Value::Bool(!e)),
        BinOp::Lt => compare(a, b).map(|o| Value::Bool(o == Some(Ordering::Less))),
        BinOp::Gt => compare(a, b).map(|o| Value::Bool(o == Some(Ordering::Greater))),
        BinOp::Le => {
            compare(a, b).map(|o| Value::Bool(matches!(o, Some(Ordering::Less | Ordering::Equal))))
        }
        BinOp::Ge => compare(a, b)
            .map(|o| Value::Bool(matches!(o, Some(Ordering::Greater | Ordering::Equal)))),
        BinOp::Concat => concat(a, b),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => arith(op, a, b),
    };
    r.unwrap_or_else(|e| e)
}

fn concat(a: &Value, b: &Value) -> Result<Value, Value> {
    let mut s = a.to_text()?;
    let t = b.to_text()?;
    if s.len() + t.len() > super::value::MAX_TEXT_BYTES {
        return Err(Value::error("the text is too long"));
    }
    if !super::budget::charge(super::budget::bytes(s.len() + t.len())) {
        return Err(super::budget::over_budget());
    }
    s.push_str(&t);
    Ok(Value::Text(s))
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Result<Value, Value> {
    if let Value::Error(_) = a {
        return Err(a.clone());
    }
    let x = a.to_number()?;
    let y = b.to_number()?;
    Ok(Value::Number(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        _ => x / y,
    }))
}

/// Normal form for comparisons: arrays become their single item, blank, or joined text; empty
/// text becomes blank. Borrows where it can (this runs for every record of a filter).
fn scalar(v: &Value) -> Result<Cow<'_, Value>, Value> {
    match v {
        Value::Array(items) => {
            let flat = flatten(items);
            match flat.as_slice() {
                [] => Ok(Cow::Owned(Value::Blank)),
                [one] => scalar(one).map(|s| Cow::Owned(s.into_owned())),
                _ => v.to_text().map(|t| Cow::Owned(Value::Text(t))),
            }
        }
        Value::Error(_) => Err(v.clone()),
        // empty text compares as blank: `{Number} = ''` matches empty numbers (and 0)
        Value::Text(t) if t.is_empty() => Ok(Cow::Owned(Value::Blank)),
        other => Ok(Cow::Borrowed(other)),
    }
}

/// Airtable's `=`: blank (and empty text) equals 0, "" and FALSE (the `0 = BLANK()` quirk);
/// numbers compare with numeric text (other text is unequal and unordered); dates compare with
/// date text; text compares exactly (case-sensitive).
pub fn values_equal(a: &Value, b: &Value) -> Result<bool, Value> {
    Ok(compare(a, b)? == Some(Ordering::Equal))
}

/// Ordering used by `= != < > <= >=`; `None` when the values cannot be compared.
pub fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>, Value> {
    let a = scalar(a)?;
    let b = scalar(b)?;
    let (a, b) = (a.as_ref(), b.as_ref());
    use Value::*;
    Ok(match (a, b) {
        (Blank, Blank) => Some(Ordering::Equal),
        (Blank, DateTime(_)) | (DateTime(_), Blank) => None,
        (Blank, Text(t)) => "".partial_cmp(t.as_str()),
        (Text(t), Blank) => t.as_str().partial_cmp(""),
        (Blank, _) => 0f64.partial_cmp(&num(b)),
        (_, Blank) => num(a).partial_cmp(&0f64),
        (DateTime(x), DateTime(y)) => x.partial_cmp(y),
        (DateTime(x), Text(t)) => match parse_datetime(t) {
            Some(y) => x.partial_cmp(&y),
            None => format_iso(x).as_str().partial_cmp(t.as_str()),
        },
        (Text(t), DateTime(y)) => match parse_datetime(t) {
            Some(x) => x.partial_cmp(y),
            None => t.as_str().partial_cmp(format_iso(y).as_str()),
        },
        (DateTime(_), _) | (_, DateTime(_)) => None,
        (Text(x), Text(y)) => x.partial_cmp(y),
        // text against a number: numerically when the text is a number, else unordered
        (Text(t), _) => parse_number(t).and_then(|x| x.partial_cmp(&num(b))),
        (_, Text(t)) => parse_number(t).and_then(|y| num(a).partial_cmp(&y)),
        _ => num(a).partial_cmp(&num(b)),
    })
}

/// Numbers and booleans (scalars only; used after `scalar`).
fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => *n,
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => f64::NAN,
    }
}
