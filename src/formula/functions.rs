//! The function catalogue (names, arity, usage) and the implementations, by category.

use chrono::{
    DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike,
    Utc,
};
use regex::Regex;
use std::cell::RefCell;
use std::collections::HashMap;

use super::budget;
use super::eval::{EvalContext, values_equal};
use super::value::{MAX_TEXT_BYTES, Value, flatten, parse_datetime, parse_number};

/// A function's category in Airtable's formula reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Logic,
    Text,
    Numeric,
    Date,
    Array,
    Record,
}

macro_rules! catalogue {
    ($( $variant:ident $name:literal $min:literal $max:tt $cat:ident $usage:literal; )*) => {
        /// Every function of Airtable's formula language.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Func { $( $variant, )* }

        impl Func {
            /// All functions, in catalogue order.
            pub const ALL: &'static [Func] = &[ $( Func::$variant, )* ];

            /// Airtable's (upper-case) name.
            pub fn name(self) -> &'static str {
                match self { $( Func::$variant => $name, )* }
            }

            /// Minimum and maximum number of arguments (`None`: any number).
            pub fn arity(self) -> (usize, Option<usize>) {
                match self { $( Func::$variant => ($min, catalogue!(@max $max)), )* }
            }

            pub fn category(self) -> Category {
                match self { $( Func::$variant => Category::$cat, )* }
            }

            /// How to call it, for error messages.
            pub fn usage(self) -> &'static str {
                match self { $( Func::$variant => $usage, )* }
            }

            /// Looks a function up by name, case-insensitively.
            pub fn from_name(name: &str) -> Option<Func> {
                let upper = name.to_ascii_uppercase();
                match upper.as_str() {
                    $( $name => Some(Func::$variant), )*
                    _ => None,
                }
            }
        }
    };
    (@max many) => { None };
    (@max $n:literal) => { Some($n) };
}

catalogue! {
    And "AND" 1 many Logic "AND(cond1, [cond2, ...]) -> TRUE if every argument is truthy";
    Or "OR" 1 many Logic "OR(cond1, [cond2, ...]) -> TRUE if any argument is truthy";
    Not "NOT" 1 1 Logic "NOT(cond)";
    Xor "XOR" 1 many Logic "XOR(cond1, [cond2, ...]) -> TRUE if an odd number of arguments are truthy";
    If "IF" 2 3 Logic "IF(condition, value_if_true, [value_if_false])";
    Switch "SWITCH" 2 many Logic "SWITCH(expression, pattern1, result1, [pattern2, result2, ...], [default])";
    True "TRUE" 0 0 Logic "TRUE()";
    False "FALSE" 0 0 Logic "FALSE()";
    Blank "BLANK" 0 0 Logic "BLANK()";
    Error "ERROR" 0 1 Logic "ERROR()";
    IsError "ISERROR" 1 1 Logic "ISERROR(expression)";
    Concatenate "CONCATENATE" 1 many Text "CONCATENATE(text1, [text2, ...])";
    EncodeUrlComponent "ENCODE_URL_COMPONENT" 1 1 Text "ENCODE_URL_COMPONENT(text)";
    Find "FIND" 2 3 Text "FIND(stringToFind, whereToSearch, [startFromPosition]) -> 1-based position, 0 if not found";
    Search "SEARCH" 2 3 Text "SEARCH(stringToFind, whereToSearch, [startFromPosition]) -> 1-based position, blank if not found";
    Left "LEFT" 2 2 Text "LEFT(text, howMany)";
    Right "RIGHT" 2 2 Text "RIGHT(text, howMany)";
    Mid "MID" 3 3 Text "MID(text, whereToStart, count) (whereToStart is 1-based)";
    Len "LEN" 1 1 Text "LEN(text)";
    Lower "LOWER" 1 1 Text "LOWER(text)";
    Upper "UPPER" 1 1 Text "UPPER(text)";
    Trim "TRIM" 1 1 Text "TRIM(text)";
    Rept "REPT" 2 2 Text "REPT(text, number)";
    Replace "REPLACE" 4 4 Text "REPLACE(text, start_character, number_of_characters, replacement)";
    Substitute "SUBSTITUTE" 3 4 Text "SUBSTITUTE(text, old_text, new_text, [index])";
    T "T" 1 1 Text "T(value) -> the value if it is text, else blank";
    RegexMatch "REGEX_MATCH" 2 2 Text "REGEX_MATCH(text, regex)";
    RegexExtract "REGEX_EXTRACT" 2 2 Text "REGEX_EXTRACT(text, regex)";
    RegexReplace "REGEX_REPLACE" 3 3 Text "REGEX_REPLACE(text, regex, replacement)";
    Abs "ABS" 1 1 Numeric "ABS(number)";
    Average "AVERAGE" 1 many Numeric "AVERAGE(number1, [number2, ...])";
    Ceiling "CEILING" 1 2 Numeric "CEILING(value, [significance])";
    Count "COUNT" 1 many Numeric "COUNT(value1, [value2, ...]) -> how many are numbers";
    CountA "COUNTA" 1 many Numeric "COUNTA(value1, [value2, ...]) -> how many are not empty";
    CountAll "COUNTALL" 1 many Numeric "COUNTALL(value1, [value2, ...]) -> how many, empty included";
    Even "EVEN" 1 1 Numeric "EVEN(value)";
    Exp "EXP" 1 1 Numeric "EXP(power)";
    Floor "FLOOR" 1 2 Numeric "FLOOR(value, [significance])";
    Int "INT" 1 1 Numeric "INT(value)";
    Log "LOG" 1 2 Numeric "LOG(number, [base=10])";
    Max "MAX" 1 many Numeric "MAX(number1, [number2, ...])";
    Min "MIN" 1 many Numeric "MIN(number1, [number2, ...])";
    Mod "MOD" 2 2 Numeric "MOD(value, divisor)";
    Odd "ODD" 1 1 Numeric "ODD(value)";
    Power "POWER" 2 2 Numeric "POWER(base, power)";
    Round "ROUND" 1 2 Numeric "ROUND(value, [precision])";
    RoundDown "ROUNDDOWN" 1 2 Numeric "ROUNDDOWN(value, [precision])";
    RoundUp "ROUNDUP" 1 2 Numeric "ROUNDUP(value, [precision])";
    Sqrt "SQRT" 1 1 Numeric "SQRT(value)";
    Sum "SUM" 1 many Numeric "SUM(number1, [number2, ...])";
    Value "VALUE" 1 1 Numeric "VALUE(text)";
    CreatedTime "CREATED_TIME" 0 0 Date "CREATED_TIME()";
    DateAdd "DATEADD" 3 3 Date "DATEADD(date, count, 'units') (units: milliseconds, seconds, minutes, hours, days, weeks, months, quarters, years)";
    DateStr "DATESTR" 1 1 Date "DATESTR(date) -> 'YYYY-MM-DD'";
    DatetimeDiff "DATETIME_DIFF" 2 3 Date "DATETIME_DIFF(date1, date2, ['units']) -> date1 - date2 (default seconds)";
    DatetimeFormat "DATETIME_FORMAT" 1 2 Date "DATETIME_FORMAT(date, ['output format, e.g. YYYY-MM-DD'])";
    DatetimeParse "DATETIME_PARSE" 1 3 Date "DATETIME_PARSE(date, ['input format'], ['locale'])";
    Day "DAY" 1 1 Date "DAY(date)";
    FromNow "FROMNOW" 1 1 Date "FROMNOW(date)";
    Hour "HOUR" 1 1 Date "HOUR(datetime)";
    IsAfter "IS_AFTER" 2 2 Date "IS_AFTER(date1, date2)";
    IsBefore "IS_BEFORE" 2 2 Date "IS_BEFORE(date1, date2)";
    IsSame "IS_SAME" 2 3 Date "IS_SAME(date1, date2, ['unit'])";
    LastModifiedTime "LAST_MODIFIED_TIME" 0 many Date "LAST_MODIFIED_TIME([{field1}, ...])";
    Minute "MINUTE" 1 1 Date "MINUTE(datetime)";
    Month "MONTH" 1 1 Date "MONTH(date)";
    Now "NOW" 0 0 Date "NOW()";
    Second "SECOND" 1 1 Date "SECOND(datetime)";
    SetLocale "SET_LOCALE" 2 2 Date "SET_LOCALE(date, locale_modifier)";
    SetTimezone "SET_TIMEZONE" 2 2 Date "SET_TIMEZONE(date, tz_identifier)";
    TimeStr "TIMESTR" 1 1 Date "TIMESTR(datetime) -> 'HH:mm:ss'";
    ToNow "TONOW" 1 1 Date "TONOW(date)";
    Today "TODAY" 0 0 Date "TODAY()";
    Weekday "WEEKDAY" 1 2 Date "WEEKDAY(date, ['Sunday'|'Monday']) -> 0-6, 0 = Sunday by default";
    WeekNum "WEEKNUM" 1 2 Date "WEEKNUM(date, ['Sunday'|'Monday'])";
    Workday "WORKDAY" 2 3 Date "WORKDAY(startDate, numDays, ['holiday dates, comma-separated'])";
    WorkdayDiff "WORKDAY_DIFF" 2 3 Date "WORKDAY_DIFF(startDate, endDate, ['holiday dates'])";
    Year "YEAR" 1 1 Date "YEAR(date)";
    ArrayCompact "ARRAYCOMPACT" 1 1 Array "ARRAYCOMPACT(values)";
    ArrayFlatten "ARRAYFLATTEN" 1 1 Array "ARRAYFLATTEN(values)";
    ArrayJoin "ARRAYJOIN" 1 2 Array "ARRAYJOIN(values, [separator])";
    ArraySlice "ARRAYSLICE" 2 3 Array "ARRAYSLICE(values, start, [end]) (1-based, end inclusive)";
    ArrayUnique "ARRAYUNIQUE" 1 1 Array "ARRAYUNIQUE(values)";
    RecordId "RECORD_ID" 0 0 Record "RECORD_ID()";
}

impl Func {
    /// Whether `n` arguments are accepted.
    pub fn accepts(self, n: usize) -> bool {
        let (min, max) = self.arity();
        n >= min && max.is_none_or(|m| n <= m)
    }

    /// "2 or 3 arguments", "no arguments", "at least 1 argument".
    pub fn arity_text(self) -> String {
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        match self.arity() {
            (0, Some(0)) => "no arguments".to_string(),
            (min, None) => format!("at least {min} {}", plural(min)),
            (min, Some(max)) if min == max => format!("exactly {min} {}", plural(min)),
            (min, Some(max)) if max == min + 1 => format!("{min} or {max} arguments"),
            (min, Some(max)) => format!("{min} to {max} arguments"),
        }
    }
}

/// Functions people reach for that Airtable does not have, with the Airtable way.
pub fn alternative_for(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_uppercase().as_str() {
        "ISBLANK" | "ISEMPTY" | "ISNULL" => {
            "Airtable has no ISBLANK(): test emptiness with {Field} = BLANK() or NOT({Field})"
        }
        "IFERROR" => "Airtable has no IFERROR(): write IF(ISERROR(x), fallback, x)",
        "CONTAINS" | "INSTR" | "INDEXOF" | "INCLUDES" => {
            "use FIND('needle', {Field}) > 0 (case-sensitive) or FIND(LOWER('needle'), LOWER({Field})) > 0"
        }
        "STARTSWITH" | "BEGINSWITH" => "use LEFT({Field}, LEN('prefix')) = 'prefix'",
        "ENDSWITH" => "use RIGHT({Field}, LEN('suffix')) = 'suffix'",
        "LENGTH" | "STRLEN" => "use LEN(text)",
        "CONCAT" => "use CONCATENATE(a, b) or a & b",
        "SUBSTR" | "SUBSTRING" => "use MID(text, start, count)",
        "DATEDIF" | "DATEDIFF" => "use DATETIME_DIFF(date1, date2, 'days')",
        "DATE" | "TODATE" | "DATEVALUE" | "PARSEDATE" => "use DATETIME_PARSE('2024-01-31')",
        "TEXT" | "TOSTRING" | "STR" | "STRING" => {
            "convert to text with value & '' or DATETIME_FORMAT(date, 'YYYY-MM-DD')"
        }
        "NUMBER" | "TONUMBER" | "INTEGER" => "use VALUE(text)",
        "LIKE" | "MATCH" | "REGEX" | "REGEXMATCH" => "use REGEX_MATCH(text, 'pattern')",
        "IN" => "use OR({Field} = 'a', {Field} = 'b')",
        "COUNTIF" | "SUMIF" | "FILTER" | "LOOKUP" | "VLOOKUP" => {
            "filterByFormula is evaluated per record; conditions across records are not available"
        }
        "ID" | "RECORDID" => "use RECORD_ID()",
        "ISNUMBER" | "ISTEXT" => "there is no type test; compare VALUE(x) or use ISERROR()",
        _ => return None,
    })
}

type R = Result<Value, Value>;

/// Calls `f` on evaluated arguments. IF and SWITCH are handled lazily by the evaluator, but are
/// correct here too.
pub fn call(f: Func, args: &[Value], ctx: &dyn EvalContext) -> Value {
    if !f.accepts(args.len()) {
        return Value::error(format!("{} takes {}", f.name(), f.arity_text()));
    }
    if f != Func::IsError
        && let Some(e) = args.iter().find(|a| a.is_error())
    {
        return e.clone();
    }
    // the text a function reads is work too (REGEX_*, SUBSTITUTE, FIND over long text)
    if !budget::charge(budget::bytes(args.iter().map(text_bytes).sum())) {
        return budget::over_budget();
    }
    let out = match f.category() {
        Category::Logic => logic(f, args),
        Category::Text => text(f, args),
        Category::Numeric => numeric(f, args),
        Category::Date => date(f, args, ctx),
        Category::Array => array(f, args),
        Category::Record => Ok(Value::text(ctx.record_id())),
    };
    match out {
        Ok(Value::Text(s)) if s.len() > MAX_TEXT_BYTES => Value::error(format!(
            "{} would build more than {MAX_TEXT_BYTES} bytes of text",
            f.name()
        )),
        Ok(Value::Text(s)) if !budget::charge(budget::bytes(s.len())) => budget::over_budget(),
        Ok(v) | Err(v) => v,
    }
}

/// Bytes of text in a value (arrays summed), for the evaluation budget.
fn text_bytes(v: &Value) -> usize {
    match v {
        Value::Text(s) => s.len(),
        Value::Array(items) => items.iter().map(text_bytes).sum(),
        _ => 0,
    }
}

/// Charges the text a function is about to build, before building it.
fn precharge(n: usize) -> Result<(), Value> {
    if budget::charge(budget::bytes(n)) {
        Ok(())
    } else {
        Err(budget::over_budget())
    }
}

fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::Blank)
}

fn text_arg(args: &[Value], i: usize) -> Result<String, Value> {
    arg(args, i).to_text()
}

fn num_arg(args: &[Value], i: usize) -> Result<f64, Value> {
    arg(args, i).to_number()
}

fn num_arg_or(args: &[Value], i: usize, default: f64) -> Result<f64, Value> {
    match args.get(i) {
        None => Ok(default),
        Some(v) => v.to_number(),
    }
}

/// A number argument as an integer count (truncated; NaN is an error).
fn int_arg(args: &[Value], i: usize) -> Result<i64, Value> {
    let n = num_arg(args, i)?;
    if n.is_nan() {
        return Err(Value::error("expected a number, got NaN"));
    }
    Ok(n.trunc().clamp(-1e15, 1e15) as i64)
}

pub(crate) fn truthy(v: &Value) -> bool {
    super::eval::is_truthy(v)
}

// ---------------------------------------------------------------- logic

fn logic(f: Func, args: &[Value]) -> R {
    Ok(match f {
        Func::And => Value::Bool(args.iter().all(truthy)),
        Func::Or => Value::Bool(args.iter().any(truthy)),
        Func::Not => Value::Bool(!truthy(arg(args, 0))),
        Func::Xor => Value::Bool(args.iter().filter(|a| truthy(a)).count() % 2 == 1),
        Func::If => {
            if truthy(arg(args, 0)) {
                arg(args, 1).clone()
            } else {
                arg(args, 2).clone()
            }
        }
        Func::Switch => {
            let subject = arg(args, 0);
            let rest = args.get(1..).unwrap_or_default();
            let mut pairs = rest.chunks_exact(2);
            for pair in pairs.by_ref() {
                if let [pattern, result] = pair
                    && values_equal(subject, pattern)?
                {
                    return Ok(result.clone());
                }
            }
            pairs.remainder().first().cloned().unwrap_or(Value::Blank)
        }
        Func::True => Value::Bool(true),
        Func::False => Value::Bool(false),
        Func::Blank => Value::Blank,
        Func::Error => Value::error(match args.first() {
            Some(v) => v.to_text().unwrap_or_default(),
            None => "ERROR()".to_string(),
        }),
        Func::IsError => Value::Bool(matches!(arg(args, 0), Value::Error(_))),
        _ => Value::error(format!("{} is not a logic function", f.name())),
    })
}

// ---------------------------------------------------------------- text

fn chars_of(s: &str) -> Vec<char> {
    s.chars().collect()
}

/// JS-style indexOf counted in chars, from a 0-based char offset (linear time: str::find).
fn find_chars(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let start_byte = match hay.char_indices().nth(from) {
        Some((b, _)) => b,
        None if from == hay.chars().count() => hay.len(),
        None => return None,
    };
    let rest = hay.get(start_byte..)?;
    let at = rest.find(needle)?;
    Some(from + rest.get(..at)?.chars().count())
}

fn text(f: Func, args: &[Value]) -> R {
    Ok(match f {
        Func::Concatenate => {
            let mut s = String::new();
            for a in args {
                s.push_str(&a.to_text()?);
                if s.len() > MAX_TEXT_BYTES {
                    break;
                }
            }
            Value::Text(s)
        }
        Func::EncodeUrlComponent => {
            use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
            const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
                .remove(b'-')
                .remove(b'_')
                .remove(b'.')
                .remove(b'!')
                .remove(b'~')
                .remove(b'*')
                .remove(b'\'')
                .remove(b'(')
                .remove(b')');
            Value::Text(utf8_percent_encode(&text_arg(args, 0)?, COMPONENT).to_string())
        }
        Func::Find | Func::Search => {
            let needle = text_arg(args, 0)?;
            let hay = text_arg(args, 1)?;
            let from = num_arg_or(args, 2, 0.0)?;
            let from = if from.is_nan() || from < 0.0 {
                0
            } else {
                from as usize
            };
            match find_chars(&hay, &needle, from) {
                Some(i) => Value::Number((i + 1) as f64),
                None if f == Func::Find => Value::Number(0.0),
                None => Value::Blank,
            }
        }
        Func::Left | Func::Right => {
            let s = chars_of(&text_arg(args, 0)?);
            let n = int_arg(args, 1)?;
            if n < 0 {
                return Err(Value::error(format!(
                    "{}: count must not be negative",
                    f.name()
                )));
            }
            let n = (n as usize).min(s.len());
            let part = if f == Func::Left {
                s.get(..n)
            } else {
                s.get(s.len() - n..)
            };
            Value::Text(part.unwrap_or_default().iter().collect())
        }
        Func::Mid => {
            let s = chars_of(&text_arg(args, 0)?);
            let start = int_arg(args, 1)?;
            let count = int_arg(args, 2)?;
            if count < 0 {
                return Err(Value::error("MID: count must not be negative"));
            }
            let start = (start.max(1) - 1) as usize;
            let start = start.min(s.len());
            let end = start.saturating_add(count as usize).min(s.len());
            Value::Text(s.get(start..end).unwrap_or_default().iter().collect())
        }
        Func::Len => Value::Number(text_arg(args, 0)?.chars().count() as f64),
        Func::Lower => Value::Text(text_arg(args, 0)?.to_lowercase()),
        Func::Upper => Value::Text(text_arg(args, 0)?.to_uppercase()),
        Func::Trim => Value::Text(text_arg(args, 0)?.trim().to_string()),
        Func::Rept => {
            let s = text_arg(args, 0)?;
            let n = int_arg(args, 1)?.max(0) as usize;
            if s.len().saturating_mul(n) > MAX_TEXT_BYTES {
                return Err(Value::error(format!(
                    "REPT would build more than {MAX_TEXT_BYTES} bytes of text"
                )));
            }
            precharge(s.len().saturating_mul(n))?;
            Value::Text(s.repeat(n))
        }
        Func::Replace => {
            let s = chars_of(&text_arg(args, 0)?);
            let start = (int_arg(args, 1)?.max(1) - 1) as usize;
            let count = int_arg(args, 2)?.max(0) as usize;
            let replacement = text_arg(args, 3)?;
            let start = start.min(s.len());
            let end = start.saturating_add(count).min(s.len());
            let mut out: String = s.get(..start).unwrap_or_default().iter().collect();
            out.push_str(&replacement);
            out.extend(s.get(end..).unwrap_or_default().iter());
            Value::Text(out)
        }
        Func::Substitute => {
            let s = text_arg(args, 0)?;
            let old = text_arg(args, 1)?;
            let new = text_arg(args, 2)?;
            if old.is_empty() {
                return Ok(Value::Text(s));
            }
            let occurrences = s.matches(old.as_str()).count();
            if occurrences.saturating_mul(new.len()) > MAX_TEXT_BYTES {
                return Err(Value::error(format!(
                    "SUBSTITUTE would build more than {MAX_TEXT_BYTES} bytes of text"
                )));
            }
            precharge(
                s.len()
                    .saturating_add(occurrences.saturating_mul(new.len())),
            )?;
            match args.get(3) {
                None => Value::Text(s.replace(old.as_str(), &new)),
                Some(index) => {
                    let index = index.to_number()?;
                    if index.is_nan() || index < 1.0 {
                        return Ok(Value::Text(s));
                    }
                    let index = index as usize;
                    match s.match_indices(old.as_str()).nth(index - 1) {
                        Some((at, _)) => {
                            let mut out = String::with_capacity(s.len() + new.len());
                            out.push_str(s.get(..at).unwrap_or_default());
                            out.push_str(&new);
                            out.push_str(s.get(at + old.len()..).unwrap_or_default());
                            Value::Text(out)
                        }
                        None => Value::Text(s),
                    }
                }
            }
        }
        Func::T => match arg(args, 0) {
            Value::Text(s) => Value::Text(s.clone()),
            Value::Array(items) if flatten(items).iter().all(|v| matches!(v, Value::Text(_))) => {
                Value::Text(arg(args, 0).to_text()?)
            }
            _ => Value::Blank,
        },
        Func::RegexMatch => {
            let re = regex(&text_arg(args, 1)?)?;
            Value::Bool(re.is_match(&text_arg(args, 0)?))
        }
        Func::RegexExtract => {
            let re = regex(&text_arg(args, 1)?)?;
            let s = text_arg(args, 0)?;
            match re.find(&s) {
                Some(m) => Value::text(m.as_str()),
                None => Value::error("REGEX_EXTRACT: no match"),
            }
        }
        Func::RegexReplace => {
            let re = regex(&text_arg(args, 1)?)?;
            let s = text_arg(args, 0)?;
            let rep = text_arg(args, 2)?;
            // counting the matches is a pass over the text, and so is the replacement
            precharge(s.len())?;
            let matches = re.find_iter(&s).count();
            // each `$` group reference can copy up to the whole input
            let refs = rep.matches('$').count();
            let estimate = s
                .len()
                .saturating_add(matches.saturating_mul(rep.len()))
                .saturating_add(refs.saturating_mul(s.len()));
            if matches > 0 && estimate > MAX_TEXT_BYTES {
                return Err(Value::error(format!(
                    "REGEX_REPLACE would build more than {MAX_TEXT_BYTES} bytes of text"
                )));
            }
            precharge(estimate)?;
            Value::Text(re.replace_all(&s, rep.as_str()).into_owned())
        }
        _ => Value::error(format!("{} is not a text function", f.name())),
    })
}

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<String, Result<Regex, String>>> = RefCell::new(HashMap::new());
}

/// Compiles (and caches per thread) a pattern, with size limits against hostile patterns.
fn regex(pattern: &str) -> Result<Regex, Value> {
    REGEX_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(hit) = cache.get(pattern) {
            return hit.clone().map_err(Value::Error);
        }
        if cache.len() >= 256 {
            cache.clear();
        }
        let compiled = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid regular expression: {e}"));
        cache.insert(pattern.to_string(), compiled.clone());
        compiled.map_err(Value::Error)
    })
}

// ---------------------------------------------------------------- numeric

/// Removes float noise (2.675 * 100 = 267.49999999999997) before rounding.
fn denoise(y: f64) -> f64 {
    let cleaned = (y * 1e6).round() / 1e6;
    if cleaned.is_finite() && (cleaned - y).abs() < 1e-6 {
        cleaned
    } else {
        y
    }
}

fn round_with(x: f64, digits: f64, how: fn(f64) -> f64) -> f64 {
    if !x.is_finite() || digits.is_nan() {
        return x;
    }
    let digits = digits.trunc().clamp(-300.0, 300.0) as i32;
    let factor = 10f64.powi(digits);
    let y = denoise(x * factor);
    if !y.is_finite() {
        return x;
    }
    how(y) / factor
}

/// Numbers among the (flattened) arguments: numbers, booleans, numeric text; blanks and other
/// text are skipped.
fn numbers(args: &[Value]) -> Result<Vec<f64>, Value> {
    let mut out = Vec::new();
    for v in flatten(args) {
        match v {
            Value::Number(n) => out.push(n),
            Value::Bool(b) => out.push(f64::from(u8::from(b))),
            Value::Text(s) => {
                if let Some(n) = parse_number(&s) {
                    out.push(n);
                }
            }
            Value::Error(_) => return Err(v),
            _ => {}
        }
    }
    Ok(out)
}

fn numeric(f: Func, args: &[Value]) -> R {
    let n = |i| num_arg(args, i);
    Ok(Value::Number(match f {
        Func::Abs => n(0)?.abs(),
        Func::Average => {
            let ns = numbers(args)?;
            if ns.is_empty() {
                0.0
            } else {
                ns.iter().sum::<f64>() / ns.len() as f64
            }
        }
        Func::Ceiling | Func::Floor => {
            let x = n(0)?;
            let sig = num_arg_or(args, 1, 1.0)?;
            if sig == 0.0 {
                0.0
            } else {
                let q = denoise(x / sig);
                let q = if f == Func::Ceiling {
                    q.ceil()
                } else {
                    q.floor()
                };
                q * sig
            }
        }
        Func::Count => flatten(args)
            .iter()
            .filter(|v| matches!(v, Value::Number(_)))
            .count() as f64,
        Func::CountA => flatten(args).iter().filter(|v| !v.is_blank()).count() as f64,
        Func::CountAll => flatten(args).len() as f64,
        Func::Even | Func::Odd => {
            let x = n(0)?;
            if !x.is_finite() {
                x
            } else {
                let mut a = x.abs().ceil();
                let is_even = a % 2.0 == 0.0;
                if f == Func::Even && !is_even {
                    a += 1.0;
                }
                if f == Func::Odd && is_even {
                    a += 1.0;
                }
                a.copysign(if x < 0.0 { -1.0 } else { 1.0 })
            }
        }
        Func::Exp => n(0)?.exp(),
        Func::Int => n(0)?.floor(),
        Func::Log => {
            let x = n(0)?;
            let base = num_arg_or(args, 1, 10.0)?;
            x.ln() / base.ln()
        }
        Func::Max | Func::Min => {
            // dates (and date text beside them) -> a date
            let flat = flatten(args);
            if flat.iter().any(|v| matches!(v, Value::DateTime(_))) {
                let dates: Option<Vec<DateTime<Utc>>> = flat
                    .iter()
                    .filter(|v| !v.is_blank())
                    .map(|v| v.to_datetime().ok().flatten())
                    .collect();
                if let Some(dates) = dates {
                    let pick = if f == Func::Max {
                        dates.into_iter().max()
                    } else {
                        dates.into_iter().min()
                    };
                    return Ok(pick.map_or(Value::Blank, Value::DateTime));
                }
            }
            let ns = numbers(args)?;
            let pick = if f == Func::Max {
                ns.iter()
                    .copied()
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
            } else {
                ns.iter()
                    .copied()
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x))))
            };
            pick.unwrap_or(0.0)
        }
        Func::Mod => {
            let (a, b) = (n(0)?, n(1)?);
            a % b
        }
        Func::Power => n(0)?.powf(n(1)?),
        Func::Round => round_with(n(0)?, num_arg_or(args, 1, 0.0)?, f64::round),
        Func::RoundUp => round_with(n(0)?, num_arg_or(args, 1, 0.0)?, |y| {
            if y < 0.0 { -(-y).ceil() } else { y.ceil() }
        }),
        Func::RoundDown => round_with(n(0)?, num_arg_or(args, 1, 0.0)?, f64::trunc),
        Func::Sqrt => n(0)?.sqrt(),
        Func::Sum => numbers(args)?.iter().sum(),
        Func::Value => value_fn(arg(args, 0))?,
        _ => {
            return Ok(Value::error(format!(
                "{} is not a numeric function",
                f.name()
            )));
        }
    }))
}

/// VALUE(): text to number, ignoring currency symbols, thousands separators and spaces;
/// a trailing % divides by 100.
fn value_fn(v: &Value) -> Result<f64, Value> {
    match v {
        Value::Number(n) => Ok(*n),
        Value::Blank => Ok(0.0),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        other => {
            let s = other.to_text()?;
            let t = s.trim();
            if t.is_empty() {
                return Ok(0.0);
            }
            if let Some(n) = parse_number(t) {
                return Ok(n);
            }
            let percent = t.ends_with('%');
            let cleaned: String = t
                .chars()
                .filter(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
                .collect();
            match parse_number(&cleaned) {
                Some(n) if percent => Ok(n / 100.0),
                Some(n) => Ok(n),
                None => Err(Value::error(format!("VALUE: '{s}' is not a number"))),
            }
        }
    }
}

// ---------------------------------------------------------------- dates

fn date_arg(args: &[Value], i: usize, f: Func) -> Result<Option<DateTime<Utc>>, Value> {
    arg(args, i).to_datetime().map_err(|e| match e {
        Value::Error(why) => Value::Error(format!("{}: {why}", f.name())),
        other => other,
    })
}

/// A required date: blank yields `Ok(None)` so the function can return blank.
macro_rules! need_date {
    ($args:expr, $i:expr, $f:expr) => {
        match date_arg($args, $i, $f)? {
            Some(d) => d,
            None => return Ok(Value::Blank),
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Millis,
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Quarters,
    Years,
}

fn unit(s: &str) -> Option<Unit> {
    let t = s.trim();
    // single-letter moment.js abbreviations are case-sensitive (M = months, m = minutes)
    match t {
        "ms" => return Some(Unit::Millis),
        "s" => return Some(Unit::Seconds),
        "m" => return Some(Unit::Minutes),
        "h" => return Some(Unit::Hours),
        "d" => return Some(Unit::Days),
        "w" => return Some(Unit::Weeks),
        "M" => return Some(Unit::Months),
        "Q" => return Some(Unit::Quarters),
        "y" => return Some(Unit::Years),
        _ => {}
    }
    Some(match t.to_lowercase().as_str() {
        "millisecond" | "milliseconds" => Unit::Millis,
        "second" | "seconds" => Unit::Seconds,
        "minute" | "minutes" => Unit::Minutes,
        "hour" | "hours" => Unit::Hours,
        "day" | "days" => Unit::Days,
        "week" | "weeks" => Unit::Weeks,
        "month" | "months" => Unit::Months,
        "quarter" | "quarters" => Unit::Quarters,
        "year" | "years" => Unit::Years,
        _ => return None,
    })
}

fn unit_arg(args: &[Value], i: usize, default: Unit, f: Func) -> Result<Unit, Value> {
    match args.get(i) {
        None | Some(Value::Blank) => Ok(default),
        Some(v) => {
            let s = v.to_text()?;
            unit(&s).ok_or_else(|| {
                Value::error(format!(
                    "{}: unknown unit '{s}' (use milliseconds, seconds, minutes, hours, days, \
                     weeks, months, quarters or years)",
                    f.name()
                ))
            })
        }
    }
}

fn unit_millis(u: Unit) -> Option<f64> {
    Some(match u {
        Unit::Millis => 1.0,
        Unit::Seconds => 1e3,
        Unit::Minutes => 6e4,
        Unit::Hours => 3.6e6,
        Unit::Days => 8.64e7,
        Unit::Weeks => 6.048e8,
        _ => return None,
    })
}

fn add_months(d: DateTime<Utc>, months: i64) -> Option<DateTime<Utc>> {
    let m = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    if months >= 0 {
        d.checked_add_months(m)
    } else {
        d.checked_sub_months(m)
    }
}

fn date_add(d: DateTime<Utc>, count: f64, u: Unit) -> Option<DateTime<Utc>> {
    if !count.is_finite() {
        return None;
    }
    match unit_millis(u) {
        Some(ms) => {
            let total = (count * ms).round();
            if total.abs() > 1e16 {
                return None;
            }
            d.checked_add_signed(Duration::milliseconds(total as i64))
        }
        None => {
            let per = match u {
                Unit::Quarters => 3.0,
                Unit::Years => 12.0,
                _ => 1.0,
            };
            let months = (count * per).round();
            if months.abs() > 1e7 {
                return None;
            }
            add_months(d, months as i64)
        }
    }
}

/// Whole months from `b` to `a`, truncated toward zero (moment.js `diff`).
fn month_diff(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    let mut m = (i64::from(a.year()) - i64::from(b.year())) * 12 + i64::from(a.month())
        - i64::from(b.month());
    if let Some(anchor) = add_months(b, m) {
        if a >= b && anchor > a {
            m -= 1;
        } else if a < b && anchor < a {
            m += 1;
        }
    }
    m
}

fn date_diff(a: DateTime<Utc>, b: DateTime<Utc>, u: Unit) -> f64 {
    match unit_millis(u) {
        Some(ms) => {
            let delta = (a - b).num_milliseconds() as f64;
            (delta / ms).trunc()
        }
        None => {
            let m = month_diff(a, b);
            let per = match u {
                Unit::Quarters => 3,
                Unit::Years => 12,
                _ => 1,
            };
            (m / per) as f64
        }
    }
}

fn start_of(d: DateTime<Utc>, u: Unit) -> (i64, i64) {
    // (bucket, ms) pairs that are equal iff the dates fall in the same unit
    let day = i64::from(d.num_days_from_ce());
    match u {
        Unit::Years => (i64::from(d.year()), 0),
        Unit::Quarters => (i64::from(d.year()), i64::from(d.month0() / 3)),
        Unit::Months => (i64::from(d.year()), i64::from(d.month())),
        Unit::Weeks => (day - i64::from(d.weekday().num_days_from_sunday()), 0),
        Unit::Days => (day, 0),
        Unit::Hours => (day, i64::from(d.hour())),
        Unit::Minutes => (day, i64::from(d.hour() * 60 + d.minute())),
        Unit::Seconds => (day, i64::from(d.num_seconds_from_midnight())),
        Unit::Millis => (d.timestamp_millis(), 0),
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    d.weekday().num_days_from_monday() >= 5
}

fn holidays(args: &[Value], i: usize) -> Result<Vec<NaiveDate>, Value> {
    let Some(v) = args.get(i) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let items = match v {
        Value::Array(a) => flatten(a),
        Value::Text(s) => s.split(',').map(|p| Value::text(p.trim())).collect(),
        other => vec![other.clone()],
    };
    for item in items {
        if let Some(d) = item.to_datetime().map_err(|_| {
            Value::error("WORKDAY: holidays must be dates, e.g. '2024-12-25, 2024-12-26'")
        })? {
            out.push(d.date_naive());
        }
    }
    Ok(out)
}

/// Weekdays (Mon-Fri, not holidays) from `a` to `b` inclusive; negative when b < a.
fn workday_diff(a: NaiveDate, b: NaiveDate, hol: &[NaiveDate]) -> f64 {
    let (lo, hi, sign) = if a <= b { (a, b, 1.0) } else { (b, a, -1.0) };
    let days = (hi - lo).num_days() + 1;
    let weeks = days / 7;
    let mut count = weeks * 5;
    let mut d = lo + Duration::days(weeks * 7);
    while d <= hi {
        if !is_weekend(d) {
            count += 1;
        }
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    let distinct: std::collections::HashSet<&NaiveDate> = hol
        .iter()
        .filter(|h| **h >= lo && **h <= hi && !is_weekend(**h))
        .collect();
    count -= distinct.len() as i64;
    sign * count as f64
}

fn date(f: Func, args: &[Value], ctx: &dyn EvalContext) -> R {
    Ok(match f {
        Func::CreatedTime => Value::DateTime(ctx.created_time()),
        Func::LastModifiedTime => Value::DateTime(ctx.last_modified_time()),
        Func::Now => Value::DateTime(ctx.now()),
        Func::Today => Value::DateTime(midnight(ctx.now())),
        Func::DateAdd => {
            let d = need_date!(args, 0, f);
            let count = num_arg(args, 1)?;
            let u = unit_arg(args, 2, Unit::Days, f)?;
            date_add(d, count, u)
                .map(Value::DateTime)
                .ok_or_else(|| Value::error("DATEADD: the result is out of range"))?
        }
        Func::DatetimeDiff => {
            let a = need_date!(args, 0, f);
            let b = need_date!(args, 1, f);
            Value::Number(date_diff(a, b, unit_arg(args, 2, Unit::Seconds, f)?))
        }
        Func::DateStr => Value::Text(need_date!(args, 0, f).format("%Y-%m-%d").to_string()),
        Func::TimeStr => Value::Text(need_date!(args, 0, f).format("%H:%M:%S").to_string()),
        Func::DatetimeFormat => {
            let d = need_date!(args, 0, f);
            let fmt = match args.get(1) {
                None | Some(Value::Blank) => "M/D/YYYY".to_string(),
                Some(v) => v.to_text()?,
            };
            Value::Text(format_moment(d, &fmt))
        }
        Func::DatetimeParse => {
            let s = text_arg(args, 0)?;
            if s.trim().is_empty() {
                return Ok(Value::Blank);
            }
            if let Value::DateTime(d) = arg(args, 0) {
                return Ok(Value::DateTime(*d));
            }
            let parsed = match args.get(1) {
                Some(fmt) if !fmt.is_blank() => {
                    parse_moment(&s, &fmt.to_text()?).or_else(|| parse_datetime(&s))
                }
                _ => parse_datetime(&s),
            };
            parsed.map(Value::DateTime).ok_or_else(|| {
                Value::error(format!("DATETIME_PARSE: cannot read '{s}' as a date"))
            })?
        }
        Func::Day => Value::Number(f64::from(need_date!(args, 0, f).day())),
        Func::Month => Value::Number(f64::from(need_date!(args, 0, f).month())),
        Func::Year => Value::Number(f64::from(need_date!(args, 0, f).year())),
        Func::Hour => Value::Number(f64::from(need_date!(args, 0, f).hour())),
        Func::Minute => Value::Number(f64::from(need_date!(args, 0, f).minute())),
        Func::Second => Value::Number(f64::from(need_date!(args, 0, f).second())),
        Func::Weekday => {
            let d = need_date!(args, 0, f);
            let monday = week_starts_monday(args, 1)?;
            let n = if monday {
                d.weekday().num_days_from_monday()
            } else {
                d.weekday().num_days_from_sunday()
            };
            Value::Number(f64::from(n))
        }
        Func::WeekNum => {
            let d = need_date!(args, 0, f);
            let monday = week_starts_monday(args, 1)?;
            let jan1 = NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d.date_naive());
            let offset = if monday {
                jan1.weekday().num_days_from_monday()
            } else {
                jan1.weekday().num_days_from_sunday()
            };
            Value::Number(f64::from((d.ordinal0() + offset) / 7 + 1))
        }
        Func::IsAfter | Func::IsBefore => {
            let a = need_date!(args, 0, f);
            let b = need_date!(args, 1, f);
            Value::Bool(if f == Func::IsAfter { a > b } else { a < b })
        }
        Func::IsSame => {
            let a = need_date!(args, 0, f);
            let b = need_date!(args, 1, f);
            let u = unit_arg(args, 2, Unit::Millis, f)?;
            Value::Bool(start_of(a, u) == start_of(b, u))
        }
        Func::Workday => {
            let d = need_date!(args, 0, f);
            let n = int_arg(args, 1)?;
            if n.abs() > 100_000 {
                return Err(Value::error("WORKDAY: at most 100000 working days"));
            }
            let hol: std::collections::HashSet<NaiveDate> =
                holidays(args, 2)?.into_iter().collect();
            let step = if n >= 0 { 1 } else { -1 };
            let mut day = d.date_naive();
            let mut left = n.abs();
            while left > 0 {
                day = day
                    .checked_add_signed(Duration::days(step))
                    .ok_or_else(|| Value::error("WORKDAY: the result is out of range"))?;
                if !is_weekend(day) && !hol.contains(&day) {
                    left -= 1;
                }
            }
            Value::DateTime(Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN)))
        }
        Func::WorkdayDiff => {
            let a = need_date!(args, 0, f);
            let b = need_date!(args, 1, f);
            Value::Number(workday_diff(
                a.date_naive(),
                b.date_naive(),
                &holidays(args, 2)?,
            ))
        }
        Func::ToNow => {
            let d = need_date!(args, 0, f);
            Value::Number(date_diff(ctx.now(), d, Unit::Days))
        }
        Func::FromNow => {
            let d = need_date!(args, 0, f);
            Value::Number(date_diff(d, ctx.now(), Unit::Days))
        }
        Func::SetTimezone => {
            let d = need_date!(args, 0, f);
            tz_arg(args, 1)?;
            Value::DateTime(d)
        }
        Func::SetLocale => Value::DateTime(need_date!(args, 0, f)),
        _ => Value::error(format!("{} is not a date function", f.name())),
    })
}

fn tz_arg(args: &[Value], i: usize) -> Result<super::zone::Zone, Value> {
    let tz = text_arg(args, i)?;
    tz.trim().parse::<super::zone::Zone>().map_err(|_| {
        Value::error(format!(
            "SET_TIMEZONE: unknown time zone '{tz}' (use an IANA name such as 'Europe/Paris')"
        ))
    })
}

/// DATETIME_FORMAT(SET_TIMEZONE(date, tz), [format]): `zoned` holds SET_TIMEZONE's evaluated
/// arguments; the date is shown in that zone.
pub fn format_in_zone(zoned: &[Value], fmt: Option<&Value>) -> Value {
    let run = || -> R {
        if let Some(e) = zoned.iter().chain(fmt).find(|v| v.is_error()) {
            return Err(e.clone());
        }
        let d = need_date!(zoned, 0, Func::SetTimezone);
        let tz = tz_arg(zoned, 1)?;
        let fmt = match fmt {
            None | Some(Value::Blank) => "M/D/YYYY".to_string(),
            Some(v) => v.to_text()?,
        };
        Ok(Value::Text(format_moment(d.with_timezone(&tz), &fmt)))
    };
    run().unwrap_or_else(|e| e)
}

fn midnight(d: DateTime<Utc>) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.date_naive().and_time(NaiveTime::MIN))
}

fn week_starts_monday(args: &[Value], i: usize) -> Result<bool, Value> {
    match args.get(i) {
        None | Some(Value::Blank) => Ok(false),
        Some(v) => {
            let s = v.to_text()?;
            match s.trim().to_lowercase().as_str() {
                "sunday" => Ok(false),
                "monday" => Ok(true),
                _ => Err(Value::error(format!(
                    "the week start must be 'Sunday' or 'Monday', not '{s}'"
                ))),
            }
        }
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// moment.js format tokens, longest first.
const TOKENS: &[&str] = &[
    "YYYY", "YY", "Q", "MMMM", "MMM", "MM", "M", "Do", "DDDD", "DDD", "DD", "D", "dddd", "ddd",
    "dd", "d", "HH", "H", "hh", "h", "kk", "k", "mm", "m", "ss", "s", "SSS", "SS", "S", "A", "a",
    "ZZ", "Z", "X", "x", "LLLL", "LLL", "LL", "LTS", "LT", "L", "ll", "l",
];

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Formats a date with moment.js tokens (Airtable's DATETIME_FORMAT), in the date's time zone
/// (UTC unless SET_TIMEZONE gave one), English.
pub fn format_moment<Tz: TimeZone>(d: DateTime<Tz>, fmt: &str) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    // once a `[` has no `]` after it, no later one has either (keeps this linear)
    let mut brackets = true;
    'outer: while i < chars.len() {
        if brackets && chars.get(i) == Some(&'[') {
            brackets = chars.iter().skip(i + 1).any(|c| *c == ']');
        }
        if brackets
            && chars.get(i) == Some(&'[')
            && let Some(close) = chars.iter().skip(i + 1).position(|c| *c == ']')
        {
            out.extend(chars.get(i + 1..i + 1 + close).unwrap_or_default());
            i += close + 2;
            continue;
        }
        let rest: String = chars
            .get(i..(i + 4).min(chars.len()))
            .unwrap_or_default()
            .iter()
            .collect();
        for tok in TOKENS {
            if rest.starts_with(tok) {
                let h12 = match d.hour() % 12 {
                    0 => 12,
                    h => h,
                };
                let month_name = MONTHS.get(d.month0() as usize).copied().unwrap_or("");
                let day_name = WEEKDAYS
                    .get(d.weekday().num_days_from_sunday() as usize)
                    .copied()
                    .unwrap_or("");
                let s = match *tok {
                    "YYYY" => format!("{:04}", d.year()),
                    "YY" => format!("{:02}", d.year().rem_euclid(100)),
                    "Q" => (d.month0() / 3 + 1).to_string(),
                    "MMMM" => month_name.to_string(),
                    "MMM" => month_name.chars().take(3).collect(),
                    "MM" => format!("{:02}", d.month()),
                    "M" => d.month().to_string(),
                    "Do" => ordinal(d.day()),
                    "DDDD" => format!("{:03}", d.ordinal()),
                    "DDD" => d.ordinal().to_string(),
                    "DD" => format!("{:02}", d.day()),
                    "D" => d.day().to_string(),
                    "dddd" => day_name.to_string(),
                    "ddd" => day_name.chars().take(3).collect(),
                    "dd" => day_name.chars().take(2).collect(),
                    "d" => d.weekday().num_days_from_sunday().to_string(),
                    "HH" => format!("{:02}", d.hour()),
                    "H" => d.hour().to_string(),
                    "hh" => format!("{h12:02}"),
                    "h" => h12.to_string(),
                    "kk" => format!("{:02}", if d.hour() == 0 { 24 } else { d.hour() }),
                    "k" => (if d.hour() == 0 { 24 } else { d.hour() }).to_string(),
                    "mm" => format!("{:02}", d.minute()),
                    "m" => d.minute().to_string(),
                    "ss" => format!("{:02}", d.second()),
                    "s" => d.second().to_string(),
                    "SSS" => format!("{:03}", d.timestamp_subsec_millis()),
                    "SS" => format!("{:02}", d.timestamp_subsec_millis() / 10),
                    "S" => (d.timestamp_subsec_millis() / 100).to_string(),
                    "A" => if d.hour() < 12 { "AM" } else { "PM" }.to_string(),
                    "a" => if d.hour() < 12 { "am" } else { "pm" }.to_string(),
                    "ZZ" => d.format("%z").to_string(),
                    "Z" => d.format("%:z").to_string(),
                    "X" => d.timestamp().to_string(),
                    "x" => d.timestamp_millis().to_string(),
                    "LLLL" => format_moment(d.clone(), "dddd, MMMM D, YYYY h:mm A"),
                    "LLL" => format_moment(d.clone(), "MMMM D, YYYY h:mm A"),
                    "LL" => format_moment(d.clone(), "MMMM D, YYYY"),
                    "LTS" => format_moment(d.clone(), "h:mm:ss A"),
                    "LT" => format_moment(d.clone(), "h:mm A"),
                    "L" => format_moment(d.clone(), "MM/DD/YYYY"),
                    "ll" => format_moment(d.clone(), "MMM D, YYYY"),
                    "l" => format_moment(d.clone(), "M/D/YYYY"),
                    _ => String::new(),
                };
                out.push_str(&s);
                i += tok.chars().count();
                continue 'outer;
            }
        }
        if let Some(c) = chars.get(i) {
            out.push(*c);
        }
        i += 1;
    }
    out
}

/// Parses `s` with a moment.js format (DATETIME_PARSE's second argument), by translating it to
/// chrono's syntax. `None` when it does not match.
pub fn parse_moment(s: &str, fmt: &str) -> Option<DateTime<Utc>> {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut brackets = true;
    'outer: while i < chars.len() {
        if brackets && chars.get(i) == Some(&'[') {
            brackets = chars.iter().skip(i + 1).any(|c| *c == ']');
        }
        if brackets
            && chars.get(i) == Some(&'[')
            && let Some(close) = chars.iter().skip(i + 1).position(|c| *c == ']')
        {
            for c in chars.get(i + 1..i + 1 + close).unwrap_or_default() {
                if *c == '%' {
                    out.push_str("%%");
                } else {
                    out.push(*c);
                }
            }
            i += close + 2;
            continue;
        }
        let rest: String = chars
            .get(i..(i + 4).min(chars.len()))
            .unwrap_or_default()
            .iter()
            .collect();
        for tok in TOKENS {
            if rest.starts_with(tok) {
                let spec = match *tok {
                    "YYYY" => "%Y",
                    "YY" => "%y",
                    "MMMM" => "%B",
                    "MMM" => "%b",
                    "MM" | "M" => "%m",
                    "DD" | "D" => "%d",
                    "Do" => "%d",
                    "DDDD" | "DDD" => "%j",
                    "dddd" => "%A",
                    "ddd" => "%a",
                    "HH" | "H" | "kk" | "k" => "%H",
                    "hh" | "h" => "%I",
                    "mm" | "m" => "%M",
                    "ss" | "s" => "%S",
                    "SSS" | "SS" | "S" => "%f",
                    "A" | "a" => "%p",
                    "ZZ" => "%z",
                    "Z" => "%:z",
                    "X" => "%s",
                    "LL" => "%B %d, %Y",
                    "L" => "%m/%d/%Y",
                    _ => return None,
                };
                out.push_str(spec);
                i += tok.chars().count();
                continue 'outer;
            }
        }
        match chars.get(i) {
            Some('%') => out.push_str("%%"),
            Some(c) => out.push(*c),
            None => {}
        }
        i += 1;
    }
    let trimmed = s.trim();
    // "5th" -> "5" where the format has an ordinal day
    let owned;
    let s = if fmt.contains("Do") {
        owned = strip_ordinals(trimmed);
        owned.as_str()
    } else {
        trimmed
    };
    if let Ok(d) = DateTime::parse_from_str(s, &out) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDateTime::parse_from_str(s, &out) {
        return Some(Utc.from_utc_datetime(&d));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, &out) {
        return Some(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)));
    }
    None
}

/// Drops English ordinal suffixes after digits: "March 5th" -> "March 5".
fn strip_ordinals(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        out.push(c);
        i += 1;
        if c.is_ascii_digit() && !chars.get(i).is_some_and(|n| n.is_ascii_digit()) {
            let next: String = chars.get(i..i + 2).unwrap_or_default().iter().collect();
            if matches!(
                next.to_ascii_lowercase().as_str(),
                "st" | "nd" | "rd" | "th"
            ) && !chars.get(i + 2).is_some_and(|n| n.is_alphabetic())
            {
                i += 2;
            }
        }
    }
    out
}

// ---------------------------------------------------------------- arrays

fn as_items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Blank => Vec::new(),
        other => vec![other.clone()],
    }
}

fn array(f: Func, args: &[Value]) -> R {
    let items = as_items(arg(args, 0));
    Ok(match f {
        Func::ArrayJoin => {
            let sep = match args.get(1) {
                None => ", ".to_string(),
                Some(v) => v.to_text()?,
            };
            let flat = flatten(&items);
            if flat.len().saturating_mul(sep.len()) > MAX_TEXT_BYTES {
                return Err(Value::error("ARRAYJOIN: the result is too long"));
            }
            let mut parts = Vec::with_capacity(flat.len());
            for v in &flat {
                parts.push(v.to_text()?);
            }
            Value::Text(parts.join(&sep))
        }
        Func::ArrayCompact => Value::Array(
            items
                .into_iter()
                .filter(|v| {
                    !matches!(v, Value::Blank) && !matches!(v, Value::Text(s) if s.is_empty())
                })
                .collect(),
        ),
        Func::ArrayFlatten => Value::Array(flatten(&items)),
        Func::ArrayUnique => {
            let mut out: Vec<Value> = Vec::new();
            for v in items {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        Func::ArraySlice => {
            let len = items.len() as i64;
            let norm = |n: i64| {
                if n < 0 {
                    (len + n).max(0)
                } else {
                    (n - 1).max(0)
                }
            };
            let start = norm(int_arg(args, 1)?);
            let end = match args.get(2) {
                None | Some(Value::Blank) => len,
                Some(_) => {
                    let e = int_arg(args, 2)?;
                    if e < 0 { len + e + 1 } else { e }
                }
            };
            let (start, end) = (start.clamp(0, len) as usize, end.clamp(0, len) as usize);
            Value::Array(if start < end {
                items.get(start..end).unwrap_or_default().to_vec()
            } else {
                Vec::new()
            })
        }
        _ => Value::error(format!("{} is not an array function", f.name())),
    })
}
