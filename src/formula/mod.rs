//! Airtable's formula language: parser, checker and evaluator.
//!
//! An [`Expr`] prints back (`to_string()`) as canonical formula text that parses to the same
//! tree.
//!
//! Used by the sandbox (filterByFormula and formula fields) and by the MCP tools, which check a
//! model's formulas before sending them, so every error carries a character position and a fix
//! ([`FormulaError::message`]; [`FormulaError::render`] adds a caret under the spot) as well as
//! Airtable's own 422 text ([`FormulaError::airtable_message`]).
//!
//! ```
//! use airtable_mcp::formula::{self, MapContext, Value};
//! let expr = formula::check("AND({Status} = 'Done', {Hours} > 2)", &["Status", "Hours"]).unwrap();
//! let now = chrono::Utc::now();
//! let rec = MapContext::new(now)
//!     .with("Status", Value::text("Done"))
//!     .with("Hours", Value::Number(3.0));
//! assert!(formula::is_truthy(&formula::eval(&expr, &rec)));
//! ```
//!
//! # Syntax
//! - Text literals in `'single'` or `"double"` quotes; a backslash escapes the next character
//!   (`\'`, `\"`, `\\`; `\n`, `\t`, `\r` are newline, tab, carriage return; any other `\x` is `x`).
//!   Typographic ("smart") quotes are a syntax error with a clear message.
//! - Numbers: `3`, `3.5`, `.5`, `1e3`.
//! - Field references: `{Field Name}`, where `\}` is a `}` and `\\` a backslash (other
//!   backslashes are literal); or a bare identifier (`Price`), which is always a field name.
//! - Function calls `NAME(args)`, names case-insensitive.
//! - Operators, lowest precedence first: comparison `= != <> < > <= >=`, then `&`, then `+ -`,
//!   then `* /`, then unary `-`; all binary operators are left-associative. `<>` is accepted as
//!   `!=`. `==`, `&&`, `||`, `!` and `;` are errors whose message gives the Airtable way.
//! - Nesting deeper than [`MAX_DEPTH`] is an error, so no input can overflow the stack (at the
//!   limit, parse + eval need about 1 MiB in a debug build; tokio's workers have 2 MiB).
//!
//! # Hostile input
//! A formula longer than [`MAX_FORMULA_LEN`] is refused before parsing. Evaluation can run
//! under a [`Budget`] of steps and time with a cancellation flag ([`budget::run`],
//! [`eval_within`]); the sandbox evaluates every request that way. Nothing panics (no indexing, no unwrap; property tests feed random text and random trees).
//! Work is linear in the input: FIND/SEARCH use `str::find`, field names are deduplicated with
//! sets, "did you mean" skips names over 200 characters. Text that a formula builds (REPT,
//! SUBSTITUTE, REGEX_REPLACE, `&`, CONCATENATE, ARRAYJOIN) is capped at
//! [`value::MAX_TEXT_BYTES`], checked before allocating; regexes have compile-size limits and a
//! per-thread cache; WORKDAY counts at most 100,000 days.
//!
//! # Semantics assumed where the reference says UNCONFIRMED
//! - Blank: `""` in text, `0` in arithmetic; `BLANK() = 0`, `BLANK() = ""` and
//!   `BLANK() = FALSE()` are all true (the `0 = BLANK()` quirk), and empty text compares like
//!   blank (`'' = 0` is true). A blank is never equal to or ordered against a date.
//! - Arrays (links given as their primary-field display values, multiple selects, lookups):
//!   `", "`-joined text in text contexts (also in `=` when they have several items); an array of
//!   one item behaves as that item; an empty array is blank. Nested arrays are flattened.
//! - Booleans (checkbox, TRUE(), comparisons) are 1 and 0 in arithmetic and `"1"`/`"0"` in text;
//!   [`Value::to_json`] renders them as 1 and 0.
//! - `=` on text is exact and case-sensitive. Text compared with a number compares numerically
//!   when the text is numeric, and is otherwise unequal and unordered (`<` and `>` are false).
//!   Text compared with a date is parsed as a date (ISO 8601 and a few common forms, see
//!   [`value::parse_datetime`]); dates are UTC; a date in text context is ISO 8601 with
//!   milliseconds (`2024-01-31T09:05:00.000Z`), so `FIND('2024-01-31', {Date})` works.
//! - Arithmetic follows JavaScript: `1/0` is Infinity, `0/0` and non-numeric text are NaN (NaN
//!   is falsy); a date in arithmetic is an error (use DATEADD / DATETIME_DIFF). MOD takes the
//!   sign of the dividend.
//! - Errors (`#ERROR!`) propagate through operators and functions (except ISERROR) and are
//!   falsy, so they exclude the record.
//! - Truthiness ([`is_truthy`]): 0, NaN, `""`, FALSE, blank, `[]` and errors are false; a
//!   non-empty array is true when any item is.
//! - FIND/SEARCH: 1-based result, the optional start is a 0-based offset (as in Airtable's docs:
//!   "0 by default"); both are case-sensitive; FIND gives 0 and SEARCH blank when not found.
//!   An empty needle is found at the start.
//! - DATETIME_FORMAT defaults to `M/D/YYYY` and knows moment.js tokens (YYYY YY Q MMMM MMM MM M
//!   Do DDDD DDD DD D dddd ddd dd d HH H hh h kk k mm m ss s SSS SS S A a ZZ Z X x L LL LLL LLLL
//!   LT LTS l ll, `[literal]`), in English, in UTC unless the date comes straight from
//!   SET_TIMEZONE: `DATETIME_FORMAT(SET_TIMEZONE({Date}, 'Europe/Paris'), 'HH:mm')` shows Paris
//!   time. Elsewhere SET_TIMEZONE (which checks the IANA name) and SET_LOCALE return the date
//!   unchanged: a date is an instant, and YEAR()/HOUR()/... read it in UTC.
//! - DATETIME_DIFF(a, b, unit) is a - b truncated toward zero (default unit seconds); months,
//!   quarters and years count whole calendar months as moment.js does. DATEADD rounds month
//!   counts and clamps to the month's end (Jan 31 + 1 month = Feb 29/28).
//! - TONOW(d) is whole days from d to now; FROMNOW(d) whole days from now to d.
//! - WEEKDAY: 0 = Sunday (or 0 = Monday with 'Monday'). WORKDAY_DIFF counts Mon-Fri inclusive.
//! - ROUND rounds half away from zero (after removing float noise, so ROUND(2.675, 2) = 2.68);
//!   ROUNDUP away from zero, ROUNDDOWN toward zero; precision defaults to 0.
//! - SUM/AVERAGE/MIN/MAX flatten arrays and skip blanks and non-numeric text; with no numbers
//!   they give 0. MIN/MAX of dates give a date. COUNT counts numbers, COUNTA non-empty values,
//!   COUNTALL everything.
//! - ARRAYJOIN's default separator is `", "`; ARRAYSLICE is 1-based with an inclusive end;
//!   ARRAYCOMPACT drops blanks and empty text.
//! - REGEX_EXTRACT without a match is an error; REGEX_REPLACE uses `$1` for groups.
//! - A text result longer than [`value::MAX_TEXT_BYTES`] is an error (REPT, SUBSTITUTE...).
//! - An unknown function, or a wrong number of arguments, is rejected by [`check`] with
//!   Airtable's generic "Invalid formula" text; [`eval`] of such a call is an error value.
//! - Field IDs: [`check`] matches references against the names it is given; a caller that
//!   wants `{fldXXXXXXXXXXXXXX}` accepted passes field IDs too (and resolves them in its
//!   [`EvalContext`]).

mod ast;
pub mod budget;
mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
pub mod value;
pub mod zone;

#[cfg(test)]
mod tests;

pub use ast::{BinOp, Expr, ExprKind};
pub use budget::{Budget, BudgetExceeded};
pub use error::{FormulaError, FormulaErrorKind};
pub use eval::{EvalContext, MapContext, compare, eval, is_truthy, values_equal};
pub use functions::{Category, Func, format_moment, parse_moment};
pub use value::Value;

use error::did_you_mean;
use std::collections::HashSet;

/// Maximum nesting depth of a formula (parentheses, calls, operator chains).
pub const MAX_DEPTH: usize = 200;

/// Longest formula accepted, in bytes (64 KiB), checked before parsing: parsing takes memory
/// in proportion to the text, and no real formula comes close. The sandbox and the tools use it.
pub const MAX_FORMULA_LEN: usize = 64 * 1024;

/// Parses a formula (syntax only). Errors carry positions. A formula longer than
/// [`MAX_FORMULA_LEN`] bytes is refused before any parsing.
pub fn parse(src: &str) -> Result<Expr, FormulaError> {
    if src.len() > MAX_FORMULA_LEN {
        return Err(FormulaError::new(
            FormulaErrorKind::TooLong,
            src,
            None,
            format!(
                "The formula is {} bytes long; the limit is {MAX_FORMULA_LEN} bytes (64 KiB). \
                 Shorten it: filter on fewer values, or split the work into several requests.",
                src.len()
            ),
        ));
    }
    parser::parse(src)
}

/// [`eval`] under a [`Budget`] (steps, time, cancellation): `Err` when the budget ran out.
pub fn eval_within(
    expr: &Expr,
    ctx: &dyn EvalContext,
    budget: &Budget,
) -> Result<Value, BudgetExceeded> {
    budget::run(budget, || eval(expr, ctx))
}

/// Parses and checks a formula against the table's field names: unknown fields, unknown
/// functions and wrong argument counts are errors, with Airtable's 422 message in
/// [`FormulaError::airtable_message`] and a fix in [`FormulaError::message`].
pub fn check(src: &str, fields: &[&str]) -> Result<Expr, FormulaError> {
    let expr = parse(src)?;
    check_fields(src, &expr, fields)?;
    check_calls(src, &expr)?;
    Ok(expr)
}

/// Every field the formula refers to, each once, in order of first appearance.
pub fn referenced_fields(expr: &Expr) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out: Vec<String> = Vec::new();
    expr.walk(|e| {
        if let ExprKind::Field { name, .. } = &e.kind
            && seen.insert(name.as_str())
        {
            out.push(name.clone());
        }
    });
    out
}

/// A formula text literal for `s`: double-quoted, with `\` and `"` escaped, so that no input
/// can end the literal early and inject formula text.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A field reference `{name}` with `}` escaped as `\}` (and a backslash doubled where it would
/// otherwise read as an escape), so any field name round-trips.
pub fn field_ref(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('{');
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '}' => out.push_str("\\}"),
            '\\' if matches!(chars.peek(), None | Some('}') | Some('\\')) => out.push_str("\\\\"),
            other => out.push(other),
        }
    }
    out.push('}');
    out
}

fn list_names(fields: &[&str]) -> String {
    const SHOW: usize = 40;
    let mut s: Vec<String> = fields.iter().take(SHOW).map(|f| field_ref(f)).collect();
    if fields.len() > SHOW {
        s.push(format!("… ({} more)", fields.len() - SHOW));
    }
    s.join(", ")
}

fn check_fields(src: &str, expr: &Expr, fields: &[&str]) -> Result<(), FormulaError> {
    let known: HashSet<&str> = fields.iter().copied().collect();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut unknown: Vec<(String, usize, bool)> = Vec::new();
    expr.walk(|e| {
        if let ExprKind::Field { name, braced } = &e.kind
            && !known.contains(name.as_str())
            && seen.insert(name.as_str())
        {
            unknown.push((name.clone(), e.start, *braced));
        }
    });
    let Some((_, first_pos, _)) = unknown.first() else {
        return Ok(());
    };
    let first_pos = *first_pos;
    let mut parts = Vec::new();
    const EXPLAIN: usize = 20;
    for (name, pos, braced) in unknown.iter().take(EXPLAIN) {
        let written = if *braced {
            field_ref(name)
        } else {
            name.clone()
        };
        let upper = name.to_ascii_uppercase();
        let advice = if !braced && (upper == "TRUE" || upper == "FALSE") {
            Some(format!("did you mean {upper}()? Booleans are functions"))
        } else if let Some(s) = did_you_mean(name, fields.iter().copied()) {
            Some(format!("did you mean {}?", field_ref(s)))
        } else if !braced
            && matches!(
                upper.as_str(),
                "NULL" | "NIL" | "NONE" | "EMPTY" | "UNDEFINED"
            )
        {
            Some("there is no null literal; test for empty with {Field} = BLANK()".to_string())
        } else if !braced && name.starts_with("rec") && name.len() == 17 {
            Some(
                "a record ID is text and must be quoted; to match it write \
                 RECORD_ID() = 'recXXXXXXXXXXXXXX'"
                    .to_string(),
            )
        } else if !braced {
            Some(format!(
                "a bare word is read as a field name; if you meant text, quote it: '{name}'"
            ))
        } else {
            None
        };
        parts.push(match advice {
            Some(a) => format!("{written} at position {pos} ({a})"),
            None => format!("{written} at position {pos}"),
        });
    }
    if unknown.len() > EXPLAIN {
        parts.push(format!("and {} more", unknown.len() - EXPLAIN));
    }
    let noun = if unknown.len() == 1 {
        "Unknown field name"
    } else {
        "Unknown field names"
    };
    let mut msg = format!("{noun}: {}.", parts.join(", "));
    msg.push_str(
        " Field names are case-sensitive and must match exactly; write them in braces, \
         e.g. {Due Date}.",
    );
    if !fields.is_empty() {
        msg.push_str(&format!(" The table's fields are: {}.", list_names(fields)));
    }
    Err(FormulaError::new(
        FormulaErrorKind::UnknownFields(unknown.into_iter().map(|(n, _, _)| n).collect()),
        src,
        Some(first_pos),
        msg,
    ))
}

fn check_calls(src: &str, expr: &Expr) -> Result<(), FormulaError> {
    let mut found: Option<FormulaError> = None;
    expr.walk(|e| {
        if found.is_some() {
            return;
        }
        let ExprKind::Call { name, func, args } = &e.kind else {
            return;
        };
        match func {
            None => {
                let mut msg = format!("Unknown function {name}() at position {}.", e.start);
                if let Some(alt) = functions::alternative_for(name) {
                    msg.push_str(&format!(" Fix: {alt}."));
                } else if let Some(s) = did_you_mean(name, Func::ALL.iter().map(|f| f.name())) {
                    let usage = Func::from_name(s).map(|f| f.usage()).unwrap_or(s);
                    msg.push_str(&format!(" Did you mean {s}()? Usage: {usage}."));
                } else {
                    msg.push_str(
                        " Airtable's functions include IF, AND, OR, NOT, FIND, LOWER, LEN, \
                         DATETIME_DIFF, DATEADD, IS_BEFORE, RECORD_ID, ARRAYJOIN.",
                    );
                }
                found = Some(FormulaError::new(
                    FormulaErrorKind::UnknownFunction(name.clone()),
                    src,
                    Some(e.start),
                    msg,
                ));
            }
            Some(f) if !f.accepts(args.len()) => {
                let got = args.len();
                found = Some(FormulaError::new(
                    FormulaErrorKind::WrongArity(f.name().to_string()),
                    src,
                    Some(e.start),
                    format!(
                        "{}() at position {} takes {} but was given {got}. Usage: {}.",
                        f.name(),
                        e.start,
                        f.arity_text(),
                        f.usage()
                    ),
                ));
            }
            Some(_) => {}
        }
    });
    match found {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
