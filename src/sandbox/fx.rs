//! The bridge between the sandbox and the formula engine (`crate::formula`).

use crate::formula;

pub use crate::formula::EvalContext as Ctx;
pub use crate::formula::Value;

/// A checked formula.
#[derive(Debug, Clone)]
pub struct Compiled(formula::Expr);

/// Parse and check a formula against the known field names (names and IDs); the error is
/// the engine's detailed message with the position (for schema writes).
pub fn compile(src: &str, fields: &[&str]) -> Result<Compiled, String> {
    formula::check(src, fields)
        .map(Compiled)
        .map_err(|e| e.render(src))
}

/// As [`compile`], with Airtable's 422 INVALID_FILTER_BY_FORMULA message as the error.
pub fn compile_filter(src: &str, fields: &[&str]) -> Result<Compiled, String> {
    formula::check(src, fields)
        .map(Compiled)
        .map_err(|e| e.airtable_message())
}

pub fn eval(c: &Compiled, ctx: &dyn Ctx) -> Value {
    formula::eval(&c.0, ctx)
}

/// Airtable's include rule for filterByFormula.
pub fn truthy(v: &Value) -> bool {
    formula::is_truthy(v)
}
