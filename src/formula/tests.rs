//! Unit and property tests of Airtable's formula semantics.

use super::*;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 15, 10, 30, 0)
        .single()
        .unwrap()
}

fn ctx() -> MapContext {
    MapContext::new(now())
        .with("Name", Value::text("Alice"))
        .with("Status", Value::text("Done"))
        .with("Price", Value::Number(10.0))
        .with("Quantity", Value::Number(3.0))
        .with("Done", Value::Bool(true))
        .with("Unchecked", Value::Bool(false))
        .with("Empty", Value::Blank)
        .with("Zero", Value::Number(0.0))
        .with(
            "Tags",
            Value::Array(vec![Value::text("red"), Value::text("blue")]),
        )
        .with("Project", Value::Array(vec![Value::text("Apollo")]))
        .with("NoLinks", Value::Array(vec![]))
        .with(
            "Due",
            Value::DateTime(Utc.with_ymd_and_hms(2024, 3, 10, 0, 0, 0).single().unwrap()),
        )
        .with("DueText", Value::text("2024-03-20"))
        .with("Brace}Name", Value::text("braced"))
        .with("Due Date", Value::text("2024-01-31T09:05:00.000Z"))
}

/// Evaluates `src` against [`ctx`], panicking on a parse error.
fn ev(src: &str) -> Value {
    let expr = parse(src).unwrap_or_else(|e| panic!("parse {src:?}: {}", e.message));
    eval(&expr, &ctx())
}

fn num(src: &str) -> f64 {
    match ev(src) {
        Value::Number(n) => n,
        Value::Bool(b) => f64::from(u8::from(b)),
        other => panic!("{src}: expected a number, got {other:?}"),
    }
}

fn txt(src: &str) -> String {
    match ev(src) {
        Value::Text(s) => s,
        other => panic!("{src}: expected text, got {other:?}"),
    }
}

fn truth(src: &str) -> bool {
    is_truthy(&ev(src))
}

fn err(src: &str) -> FormulaError {
    match parse(src) {
        Err(e) => e,
        Ok(e) => panic!("{src:?} parsed: {e:?}"),
    }
}

const FIELDS: &[&str] = &["Name", "Status", "Price", "Quantity", "Due Date", "Done"];

// ------------------------------------------------------------------ syntax

#[test]
fn precedence_follows_airtable() {
    assert_eq!(num("1 + 2 * 3"), 7.0);
    assert_eq!(num("(1 + 2) * 3"), 9.0);
    assert_eq!(num("10 - 2 - 3"), 5.0); // left-assoc
    assert_eq!(num("12 / 3 / 2"), 2.0);
    assert_eq!(num("-2 * 3"), -6.0);
    assert_eq!(num("2 - -3"), 5.0);
    assert_eq!(num("--4"), 4.0);
    // & binds looser than +: "1" & (2+3)
    assert_eq!(txt("1 & 2 + 3"), "15");
    // comparison binds loosest: ("a" & "b") = "ab"
    assert!(truth("'a' & 'b' = 'ab'"));
    assert!(truth("1 + 1 = 2"));
    assert!(truth("2 * 3 > 5"));
    // unary minus binds tighter than *
    assert_eq!(num("-Price * 2"), -20.0);
}

#[test]
fn both_quote_styles_and_escapes() {
    assert_eq!(txt("'single'"), "single");
    assert_eq!(txt("\"double\""), "double");
    assert_eq!(txt(r"'Jane\'s'"), "Jane's");
    assert_eq!(txt(r#""say \"hi\"""#), "say \"hi\"");
    assert_eq!(txt(r#"'a "quoted" word'"#), "a \"quoted\" word");
    assert_eq!(txt(r#""it's""#), "it's");
    assert_eq!(txt(r"'back\\slash'"), "back\\slash");
    assert_eq!(txt(r"'line\nbreak'"), "line\nbreak");
    assert_eq!(txt(r"'tab\there'"), "tab\there");
    assert_eq!(txt("''"), "");
}

#[test]
fn numbers() {
    assert_eq!(num("3"), 3.0);
    assert_eq!(num("3.5"), 3.5);
    assert_eq!(num(".5"), 0.5);
    assert_eq!(num("1e3"), 1000.0);
    assert_eq!(num("2.5E-1"), 0.25);
}

#[test]
fn field_references() {
    assert_eq!(txt("{Name}"), "Alice");
    assert_eq!(num("Price * Quantity"), 30.0);
    assert_eq!(num("{Price}*{Quantity}"), 30.0);
    assert_eq!(txt(r"{Brace\}Name}"), "braced");
    assert_eq!(txt("{Due Date}"), "2024-01-31T09:05:00.000Z");
    let e = parse("{A} & {B b} & C").unwrap();
    assert_eq!(referenced_fields(&e), vec!["A", "B b", "C"]);
    let e = parse("{A} & {A} & A").unwrap();
    assert_eq!(referenced_fields(&e), vec!["A"]);
}

#[test]
fn function_names_are_case_insensitive() {
    assert_eq!(txt("upper('x')"), "X");
    assert_eq!(txt("Upper('x')"), "X");
    assert!(truth("true()"));
    assert!(check("lower({Name}) = 'alice'", FIELDS).is_ok());
}

#[test]
fn not_equal_spellings() {
    assert!(truth("1 != 2"));
    assert!(truth("1 <> 2"));
    assert!(!truth("1 <> 1"));
    assert!(truth("1 <= 1"));
    assert!(truth("2 >= 1"));
    assert!(!truth("2 < 1"));
}

#[test]
fn whitespace_and_newlines_are_ignored() {
    assert_eq!(num("  IF(\n  TRUE(),\n\t1,\r\n 2 )  "), 1.0);
}

// ------------------------------------------------------------------ syntax errors

#[test]
fn syntax_errors_have_positions_and_airtable_text() {
    let e = err("IF({A} > 1, 'x'");
    assert_eq!(e.kind, FormulaErrorKind::Syntax);
    assert_eq!(e.position, Some(15));
    assert!(e.message.contains("position 15"), "{}", e.message);
    assert!(e.message.contains("missing `)`"), "{}", e.message);
    assert!(!e.message.contains('\n'));
    let shown = e.render("IF({A} > 1, 'x'");
    assert!(
        shown.ends_with("\n  IF({A} > 1, 'x'\n                 ^"),
        "{shown}"
    );
    assert_eq!(
        e.airtable_message(),
        "The formula for filtering records is invalid: Invalid formula. Please check your formula text."
    );

    let e = err("{A} = 'open");
    assert_eq!(e.position, Some(6));
    assert!(e.message.contains("never closed"), "{}", e.message);

    let e = err("{A");
    assert_eq!(e.position, Some(0));

    // an apostrophe that ends the text early is pointed at
    let e = err("'Jane's' = {Name}");
    assert_eq!(e.position, Some(5));
    assert!(e.message.contains("\\'"), "{}", e.message);
    let e = err("{Name} = \"say \"hi\"\"");
    assert_eq!(e.position, Some(15));
    assert!(
        e.message.contains("position 14 ends the text early"),
        "{}",
        e.message
    );
    let e = err("IF({A}, 'it's', 'no')");
    assert_eq!(e.position, Some(11));

    let e = err("1 +");
    assert_eq!(e.position, Some(2));
    assert!(e.message.contains("nothing after it"), "{}", e.message);

    let e = err("(1 + 2");
    assert_eq!(e.position, Some(6));

    let e = err("1 + 2)");
    assert_eq!(e.position, Some(5));
    assert!(e.message.contains("extra `)`"), "{}", e.message);

    let e = err("{First Name} {Last Name}");
    assert_eq!(e.position, Some(13));

    let e = err("");
    assert_eq!(e.kind, FormulaErrorKind::Syntax);
    let e = err("   ");
    assert_eq!(e.kind, FormulaErrorKind::Syntax);

    let e = err("IF(,1)");
    assert_eq!(e.position, Some(3));
    let e = err("IF(1,)");
    assert_eq!(e.position, Some(5));
    let e = err("{}");
    assert_eq!(e.position, Some(0));
}

#[test]
fn positions_are_characters_not_bytes() {
    let e = err("'héllo' = 'wörld' +");
    assert_eq!(e.position, Some(18));
}

#[test]
fn smart_quotes_are_a_clear_error() {
    for src in [
        "{Name} = \u{201C}Alice\u{201D}",
        "{Name} = \u{2018}Alice\u{2019}",
    ] {
        let e = err(src);
        assert_eq!(e.kind, FormulaErrorKind::Syntax);
        assert_eq!(e.position, Some(9));
        assert!(e.message.contains("smart"), "{}", e.message);
        assert!(e.message.contains("straight quotes"), "{}", e.message);
    }
    // inside a literal they are just characters
    assert_eq!(txt("'\u{201C}x\u{201D}'"), "\u{201C}x\u{201D}");
}

#[test]
fn other_language_habits_get_hints() {
    assert!(err("{A} == 1").message.contains("single `=`"));
    assert!(err("{A} && {B}").message.contains("AND("));
    assert!(err("{A} || {B}").message.contains("OR("));
    assert!(err("!{A}").message.contains("NOT("));
    assert!(err("IF(1; 2; 3)").message.contains("commas"));
    assert!(err("[A]").message.contains("braces"));
    let e = err("{Status} = 'Done' AND {Price} > 2");
    assert_eq!(e.position, Some(18));
    assert!(e.message.contains("AND(cond1, cond2)"), "{}", e.message);
    assert!(
        err("IF({A} or {B}, 1, 2)")
            .message
            .contains("OR(cond1, cond2)")
    );
    assert!(err("NOT {A}").message.contains("NOT(condition)"));
    assert!(err("IF(NOT {A}, 1, 2)").message.contains("NOT(condition)"));
    let e = check("{Name} = NULL", FIELDS).unwrap_err();
    assert!(e.message.contains("BLANK()"), "{}", e.message);
}

#[test]
fn too_deep_is_an_error_not_a_crash() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(err(&deep).kind, FormulaErrorKind::TooDeep);
    let calls = format!("{}1{}", "ABS(".repeat(5_000), ")".repeat(5_000));
    assert_eq!(err(&calls).kind, FormulaErrorKind::TooDeep);
    let negs = format!("{}1", "-".repeat(5_000));
    assert_eq!(err(&negs).kind, FormulaErrorKind::TooDeep);
    // long left-assoc chains are built by a loop, but their tree depth counts too
    let chain = vec!["1"; 5_000].join("+");
    assert_eq!(err(&chain).kind, FormulaErrorKind::TooDeep);
    // just under the limit is fine and evaluates
    let ok = format!(
        "{}1{}",
        "(".repeat(MAX_DEPTH - 2),
        ")".repeat(MAX_DEPTH - 2)
    );
    assert_eq!(num(&ok), 1.0);
    let ok_chain = vec!["1"; MAX_DEPTH - 1].join("+");
    assert_eq!(num(&ok_chain), (MAX_DEPTH - 1) as f64);
    let ok_calls = format!(
        "{}-1{}",
        "ABS(".repeat(MAX_DEPTH - 3),
        ")".repeat(MAX_DEPTH - 3)
    );
    assert_eq!(num(&ok_calls), 1.0);
}

// ------------------------------------------------------------------ check

#[test]
fn unknown_fields_use_airtables_message() {
    let e = check("{id}=recyaAPrk3b74OnGz", &["Name"]).unwrap_err();
    assert_eq!(
        e.kind,
        FormulaErrorKind::UnknownFields(vec!["id".into(), "recyaAPrk3b74OnGz".into()])
    );
    assert_eq!(
        e.airtable_message(),
        "The formula for filtering records is invalid: Unknown field names: id, recyaaprk3b74ongz"
    );
    assert_eq!(e.position, Some(0));
    assert!(e.message.contains("RECORD_ID()"), "{}", e.message);
    assert_eq!(e.airtable_type(), "INVALID_FILTER_BY_FORMULA");
}

#[test]
fn unknown_field_suggests_the_closest_name() {
    let e = check("AND({Price} > 1, {Stauts} = 'Done')", FIELDS).unwrap_err();
    assert_eq!(e.position, Some(17));
    assert!(
        e.message.contains("did you mean {Status}?"),
        "{}",
        e.message
    );
    assert!(e.message.contains("position 17"), "{}", e.message);
    // case differences are caught
    let e = check("{name} = 'x'", FIELDS).unwrap_err();
    assert!(e.message.contains("did you mean {Name}?"), "{}", e.message);
    assert_eq!(
        e.airtable_message(),
        "The formula for filtering records is invalid: Unknown field names: name"
    );
    // bare words that were meant as text
    let e = check("{Status} = Done", &["Status"]).unwrap_err();
    assert!(e.message.contains("quote it: 'Done'"), "{}", e.message);
    // the message lists the table's fields
    assert!(e.message.contains("{Status}"), "{}", e.message);
    // bare TRUE is a field in Airtable
    let e = check("{Done} = TRUE", FIELDS).unwrap_err();
    assert!(e.message.contains("TRUE()"), "{}", e.message);
}

#[test]
fn unknown_functions_are_rejected_with_a_suggestion() {
    let e = check("LOWERR({Name}) = 'a'", FIELDS).unwrap_err();
    assert_eq!(e.kind, FormulaErrorKind::UnknownFunction("LOWERR".into()));
    assert_eq!(e.position, Some(0));
    assert!(e.message.contains("Did you mean LOWER()?"), "{}", e.message);
    assert_eq!(
        e.airtable_message(),
        "The formula for filtering records is invalid: Invalid formula. Please check your formula text."
    );
    let e = check("NOT(ISBLANK({Name}))", FIELDS).unwrap_err();
    assert_eq!(e.position, Some(4));
    assert!(e.message.contains("BLANK()"), "{}", e.message);
    let e = check("IFERROR(1/0, 0)", FIELDS).unwrap_err();
    assert!(e.message.contains("ISERROR"), "{}", e.message);
    // eval of an unknown function is an error value, not a panic
    assert!(ev("NOSUCH(1)").is_error());
}

#[test]
fn wrong_arity_is_a_check_error() {
    let e = check("IF({Done})", FIELDS).unwrap_err();
    assert_eq!(e.kind, FormulaErrorKind::WrongArity("IF".into()));
    assert!(e.message.contains("2 or 3 arguments"), "{}", e.message);
    assert!(e.message.contains("IF(condition"), "{}", e.message);
    let e = check("TODAY(1)", FIELDS).unwrap_err();
    assert!(e.message.contains("no arguments"), "{}", e.message);
    let e = check("MID('abc', 1)", FIELDS).unwrap_err();
    assert!(e.message.contains("exactly 3 arguments"), "{}", e.message);
    assert!(check("AND()", FIELDS).is_err());
    assert!(ev("LEN()").is_error());
}

#[test]
fn check_accepts_valid_formulas() {
    for f in [
        "{Status} = 'Done'",
        "AND({Price} > 5, NOT({Done}))",
        "OR(RECORD_ID() = 'recAAAAAAAAAAAAAA', RECORD_ID() = 'recBBBBBBBBBBBBBB')",
        "IS_BEFORE({Due Date}, TODAY())",
        "FIND(LOWER('ali'), LOWER({Name})) > 0",
        "DATETIME_DIFF(NOW(), CREATED_TIME(), 'days') < 7",
        "LAST_MODIFIED_TIME({Name})",
        "DATETIME_FORMAT(SET_TIMEZONE({Due Date}, 'Europe/Paris'), 'YYYY-MM-DD')",
    ] {
        check(f, FIELDS).unwrap_or_else(|e| panic!("{f}: {}", e.message));
    }
}

#[test]
fn every_catalogued_function_parses_with_its_minimum_arity() {
    for f in Func::ALL {
        let (min, _) = f.arity();
        let args = vec!["1"; min].join(", ");
        let src = format!("{}({args})", f.name());
        let expr = check(&src, &[]).unwrap_or_else(|e| panic!("{src}: {}", e.message));
        let _ = eval(&expr, &ctx()); // and never panics
        assert_eq!(Func::from_name(&f.name().to_lowercase()), Some(*f));
    }
}

// ------------------------------------------------------------------ values & coercions

#[test]
fn blank_and_zero_quirks() {
    assert!(truth("{Empty} = BLANK()"));
    assert!(truth("{Empty} = ''"));
    assert!(truth("{Empty} = 0"));
    assert!(truth("0 = BLANK()"));
    assert!(truth("BLANK() = FALSE()"));
    assert!(truth("{Zero} = BLANK()"));
    assert!(truth("{Missing} = BLANK()")); // absent cell reads as blank
    assert!(truth("NOT({Empty})"));
    assert!(!truth("{Name} = BLANK()"));
    assert_eq!(num("{Empty} + 5"), 5.0);
    assert_eq!(txt("'a' & {Empty} & 'b'"), "ab");
    assert_eq!(num("LEN({Empty})"), 0.0);
}

#[test]
fn checkboxes_are_one_and_zero() {
    assert!(truth("{Done} = TRUE()"));
    assert!(truth("{Done} = 1"));
    assert!(truth("{Unchecked} = FALSE()"));
    assert!(truth("{Unchecked} = 0"));
    assert!(truth("{Empty} = FALSE()"));
    assert_eq!(num("{Done} + {Done}"), 2.0);
    assert_eq!(num("TRUE() + 1"), 2.0);
    assert_eq!(txt("{Done} & ''"), "1");
    assert!(!truth("{Unchecked}"));
}

#[test]
fn links_and_arrays_coerce_to_joined_text() {
    assert_eq!(txt("{Tags} & ''"), "red, blue");
    assert!(truth("{Tags} = 'red, blue'"));
    assert!(truth("FIND('blue', {Tags}) > 0"));
    assert!(truth("{Project} = 'Apollo'")); // one link = its primary value
    assert!(truth("{NoLinks} = BLANK()"));
    assert!(!truth("{NoLinks}"));
    assert!(truth("{Tags}"));
    assert_eq!(txt("ARRAYJOIN({Tags}, '|')"), "red|blue");
    assert_eq!(num("LEN({Tags})"), 9.0);
    assert_eq!(txt("CONCATENATE({Tags}, '!')"), "red, blue!");
}

#[test]
fn truthiness_rule() {
    for falsy in [
        Value::Number(0.0),
        Value::Number(f64::NAN),
        Value::Bool(false),
        Value::text(""),
        Value::Blank,
        Value::Array(vec![]),
        Value::Array(vec![Value::Blank, Value::text("")]),
        Value::error("x"),
    ] {
        assert!(!is_truthy(&falsy), "{falsy:?}");
    }
    for truthy in [
        Value::Number(-1.0),
        Value::Number(f64::INFINITY),
        Value::Bool(true),
        Value::text("0"),
        Value::text(" "),
        Value::DateTime(now()),
        Value::Array(vec![Value::text("a")]),
    ] {
        assert!(is_truthy(&truthy), "{truthy:?}");
    }
    assert!(!truth("0/0"));
    assert!(truth("1/0"));
}

#[test]
fn text_comparisons_are_case_sensitive_and_exact() {
    assert!(truth("{Name} = 'Alice'"));
    assert!(!truth("{Name} = 'alice'"));
    assert!(!truth("{Name} = 'Alice '"));
    assert!(truth("'b' > 'a'"));
    assert!(truth("'10' = 10"));
    assert!(truth("10 = '10.0'"));
    assert!(!truth("'abc' = 0"));
    assert!(!truth("'abc' < 5"));
    assert!(!truth("'abc' > 5"));
    assert!(truth("'abc' != 5"));
    assert!(truth("{Zero} = ''"));
    assert!(truth("{Empty} = ''"));
    assert!(!truth("{Price} = ''"));
}

#[test]
fn errors_propagate_and_exclude() {
    assert!(ev("ERROR()").is_error());
    assert!(ev("ERROR() + 1").is_error());
    assert!(ev("1 & ERROR()").is_error());
    assert!(ev("UPPER(ERROR())").is_error());
    assert!(ev("ERROR() = 1").is_error());
    assert!(!truth("ERROR()"));
    assert!(truth("ISERROR(ERROR())"));
    assert!(!truth("ISERROR(1)"));
    assert!(truth("ISERROR(DATETIME_PARSE('not a date'))"));
    assert_eq!(num("IF(ISERROR(ERROR()), 7, 8)"), 7.0);
    // IF is lazy: the branch not taken cannot poison the result
    assert_eq!(num("IF(TRUE(), 1, ERROR())"), 1.0);
    assert!(ev("IF(ERROR(), 1, 2)").is_error());
}

#[test]
fn arithmetic_follows_javascript() {
    assert!(matches!(ev("1/0"), Value::Number(n) if n == f64::INFINITY));
    assert!(matches!(ev("0/0"), Value::Number(n) if n.is_nan()));
    assert!(matches!(ev("'abc' * 2"), Value::Number(n) if n.is_nan()));
    assert_eq!(num("'3' + 4"), 7.0);
    assert_eq!(num("0.1 + 0.2"), 0.1 + 0.2);
    assert_eq!(txt("0.1 + 0.2 & ''"), "0.30000000000000004");
    assert_eq!(txt("3 & ''"), "3");
    assert_eq!(txt("2.5 & ''"), "2.5");
    assert!(ev("{Due} + 1").is_error());
}

#[test]
fn values_to_json() {
    use serde_json::json;
    assert_eq!(Value::Number(3.0).to_json(), json!(3));
    assert_eq!(Value::Number(2.5).to_json(), json!(2.5));
    assert_eq!(Value::Bool(true).to_json(), json!(1));
    assert_eq!(Value::Blank.to_json(), json!(null));
    assert_eq!(
        Value::Number(f64::NAN).to_json(),
        json!({"specialValue": "NaN"})
    );
    assert_eq!(Value::error("x").to_json(), json!({"error": "#ERROR!"}));
    assert_eq!(
        Value::DateTime(now()).to_json(),
        json!("2024-03-15T10:30:00.000Z")
    );
    assert_eq!(
        Value::from_json(&json!(["a", {"id": "usr1", "name": "Bob"}, null, 2, true])),
        Value::Array(vec![
            Value::text("a"),
            Value::text("Bob"),
            Value::Blank,
            Value::Number(2.0),
            Value::Bool(true)
        ])
    );
    assert_eq!(
        Value::from_json(&json!({"filename": "a.pdf", "url": "u"})),
        Value::text("a.pdf")
    );
}

// ------------------------------------------------------------------ logic

#[test]
fn logic_functions() {
    assert!(truth("AND(1, 'x', TRUE())"));
    assert!(!truth("AND(1, 0)"));
    assert!(truth("OR(0, '', 1)"));
    assert!(!truth("OR(0, '', BLANK())"));
    assert!(truth("NOT(0)"));
    assert!(truth("XOR(1, 0, 0)"));
    assert!(!truth("XOR(1, 1)"));
    assert_eq!(txt("IF({Price} > 5, 'big', 'small')"), "big");
    assert_eq!(ev("IF(0, 'x')"), Value::Blank);
    assert_eq!(txt("SWITCH({Status}, 'Todo', 'a', 'Done', 'b', 'c')"), "b");
    assert_eq!(txt("SWITCH('zz', 'Todo', 'a', 'c')"), "c");
    assert_eq!(ev("SWITCH('zz', 'Todo', 'a')"), Value::Blank);
    assert_eq!(num("SWITCH(2, 1, 10, 2, 20)"), 20.0);
    assert_eq!(ev("TRUE()"), Value::Bool(true));
    assert_eq!(ev("FALSE()"), Value::Bool(false));
    assert_eq!(ev("BLANK()"), Value::Blank);
    assert_eq!(txt("RECORD_ID()"), "recAAAAAAAAAAAAAA");
    assert!(truth("RECORD_ID() = 'recAAAAAAAAAAAAAA'"));
}

// ------------------------------------------------------------------ text

#[test]
fn text_functions() {
    assert_eq!(num("FIND('c', 'abcabc')"), 3.0);
    assert_eq!(num("FIND('z', 'abc')"), 0.0);
    assert_eq!(num("FIND('c', 'abcabc', 3)"), 6.0);
    assert_eq!(num("FIND('C', 'abc')"), 0.0);
    assert_eq!(num("SEARCH('c', 'abc')"), 3.0);
    assert_eq!(ev("SEARCH('z', 'abc')"), Value::Blank);
    assert_eq!(num("FIND('', 'abc')"), 1.0);
    assert_eq!(num("FIND('x', {Empty})"), 0.0);
    assert_eq!(num("FIND('', 'abc', 3)"), 4.0);
    assert_eq!(num("FIND('a', 'abc', 9)"), 0.0);
    assert_eq!(num("FIND('é', 'aéb', 1)"), 2.0);
    // the search is linear: this would take minutes with a naive scan
    assert_eq!(num("FIND(REPT('a', 199999) & 'b', REPT('a', 400000))"), 0.0);
    assert_eq!(txt("LOWER('ÀB')"), "àb");
    assert_eq!(txt("UPPER('straße')"), "STRASSE");
    assert_eq!(num("LEN('héllo')"), 5.0);
    assert_eq!(txt("TRIM('  a b  ')"), "a b");
    assert_eq!(txt("LEFT('héllo', 2)"), "hé");
    assert_eq!(txt("LEFT('ab', 10)"), "ab");
    assert_eq!(txt("RIGHT('héllo', 3)"), "llo");
    assert_eq!(txt("MID('abcdef', 2, 3)"), "bcd");
    assert_eq!(txt("MID('abc', 10, 3)"), "");
    assert_eq!(txt("CONCATENATE('a', 1, TRUE(), {Empty})"), "a11");
    assert_eq!(txt("SUBSTITUTE('a-b-c', '-', '+')"), "a+b+c");
    assert_eq!(txt("SUBSTITUTE('a-b-c', '-', '+', 2)"), "a-b+c");
    assert_eq!(txt("SUBSTITUTE('abc', '', 'x')"), "abc");
    assert_eq!(txt("REPLACE('abcdef', 2, 3, 'X')"), "aXef");
    assert_eq!(txt("REPT('ab', 3)"), "ababab");
    assert_eq!(txt("REPT('ab', -1)"), "");
    assert!(ev("REPT('ab', 1e12)").is_error());
    assert!(ev("REPT(REPT('abcdefgh', 100000), 100000)").is_error());
    assert_eq!(num("VALUE('42')"), 42.0);
    assert_eq!(num("VALUE('$1,000.50')"), 1000.5);
    assert_eq!(num("VALUE('50%')"), 0.5);
    assert!(ev("VALUE('abc')").is_error());
    assert_eq!(txt("T('x')"), "x");
    assert_eq!(ev("T(1)"), Value::Blank);
    assert!(truth("REGEX_MATCH('abc123', '[0-9]+')"));
    assert!(!truth("REGEX_MATCH('abc', '^[0-9]+$')"));
    assert_eq!(txt("REGEX_EXTRACT('order 123 ok', '[0-9]+')"), "123");
    assert!(ev("REGEX_EXTRACT('abc', '[0-9]+')").is_error());
    assert_eq!(txt("REGEX_REPLACE('a1b22', '[0-9]+', '#')"), "a#b#");
    assert_eq!(
        txt("REGEX_REPLACE('john smith', '(\\\\w+) (\\\\w+)', '$2 $1')"),
        "smith john"
    );
    assert!(ev("REGEX_MATCH('a', '(')").is_error());
    // group references cannot multiply a big text beyond the limit
    let many = "$0".repeat(200);
    assert!(ev(&format!("REGEX_REPLACE(REPT('x', 100000), '.*', '{many}')")).is_error());
    assert_eq!(txt("REGEX_REPLACE('ab', '(a)', '$1$1')"), "aab");
    assert_eq!(txt("ENCODE_URL_COMPONENT('a b&c/é')"), "a%20b%26c%2F%C3%A9");
    assert_eq!(txt("ENCODE_URL_COMPONENT(\"-_.!~*'()\")"), "-_.!~*'()");
}

// ------------------------------------------------------------------ numeric

#[test]
fn numeric_functions() {
    assert_eq!(num("ROUND(2.5)"), 3.0);
    assert_eq!(num("ROUND(-2.5)"), -3.0);
    assert_eq!(num("ROUND(2.675, 2)"), 2.68);
    assert_eq!(num("ROUND(1234, -2)"), 1200.0);
    assert_eq!(num("ROUNDUP(2.11, 1)"), 2.2);
    assert_eq!(num("ROUNDUP(-2.11, 1)"), -2.2);
    assert_eq!(num("ROUNDDOWN(2.19, 1)"), 2.1);
    assert_eq!(num("ROUNDDOWN(-2.19, 1)"), -2.1);
    assert_eq!(num("INT(2.7)"), 2.0);
    assert_eq!(num("INT(-2.5)"), -3.0);
    assert_eq!(num("ABS(-4)"), 4.0);
    assert_eq!(num("MOD(7, 5)"), 2.0);
    assert_eq!(num("MOD(-7, 5)"), -2.0);
    assert_eq!(num("MIN(3, 1, 2)"), 1.0);
    assert_eq!(num("MAX(3, 1, 2)"), 3.0);
    assert_eq!(num("MAX({NoLinks})"), 0.0);
    assert_eq!(num("SUM(1, 2, 3.5)"), 6.5);
    assert_eq!(num("SUM(1, {Empty}, '2')"), 3.0);
    assert_eq!(num("AVERAGE(1, 2, 3, 4)"), 2.5);
    assert_eq!(num("COUNT(1, 'a', 2, {Empty})"), 2.0);
    assert_eq!(num("COUNTA(1, 'a', '', {Empty})"), 2.0);
    assert_eq!(num("COUNTALL(1, 'a', '', {Empty})"), 4.0);
    assert_eq!(num("COUNTA({Tags})"), 2.0);
    assert_eq!(num("CEILING(2.1)"), 3.0);
    assert_eq!(num("CEILING(7, 5)"), 10.0);
    assert_eq!(num("FLOOR(2.9)"), 2.0);
    assert_eq!(num("FLOOR(7, 5)"), 5.0);
    assert_eq!(num("SQRT(16)"), 4.0);
    assert!(num("SQRT(-1)").is_nan());
    assert_eq!(num("POWER(2, 10)"), 1024.0);
    assert!((num("EXP(1)") - std::f64::consts::E).abs() < 1e-12);
    assert!((num("LOG(1000)") - 3.0).abs() < 1e-12);
    assert!((num("LOG(8, 2)") - 3.0).abs() < 1e-12);
    assert_eq!(num("EVEN(1.5)"), 2.0);
    assert_eq!(num("EVEN(3)"), 4.0);
    assert_eq!(num("EVEN(-1)"), -2.0);
    assert_eq!(num("ODD(1.5)"), 3.0);
    assert_eq!(num("ODD(2)"), 3.0);
    assert_eq!(num("ODD(0)"), 1.0);
}

// ------------------------------------------------------------------ dates

fn date(src: &str) -> chrono::DateTime<Utc> {
    match ev(src) {
        Value::DateTime(d) => d,
        other => panic!("{src}: expected a date, got {other:?}"),
    }
}

fn ymd(y: i32, m: u32, d: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().unwrap()
}

#[test]
fn date_parsing_and_formatting() {
    assert_eq!(date("DATETIME_PARSE('2024-01-31')"), ymd(2024, 1, 31));
    assert_eq!(
        date("DATETIME_PARSE('2023-12-01T12:34:56.000Z')"),
        Utc.with_ymd_and_hms(2023, 12, 1, 12, 34, 56)
            .single()
            .unwrap()
    );
    assert_eq!(
        date("DATETIME_PARSE('2024-01-31T10:00:00+02:00')").to_rfc3339(),
        "2024-01-31T08:00:00+00:00"
    );
    assert_eq!(date("DATETIME_PARSE('3/5/2024')"), ymd(2024, 3, 5));
    assert_eq!(
        date("DATETIME_PARSE('05.03.2024', 'DD.MM.YYYY')"),
        ymd(2024, 3, 5)
    );
    assert_eq!(
        date("DATETIME_PARSE('2024/03/05 14:30', 'YYYY/MM/DD HH:mm')")
            .format("%H:%M")
            .to_string(),
        "14:30"
    );
    assert_eq!(
        date("DATETIME_PARSE('March 5th 2024', 'MMMM Do YYYY')"),
        ymd(2024, 3, 5)
    );
    assert_eq!(
        date("DATETIME_PARSE('1710000000', 'X')").timestamp(),
        1_710_000_000
    );
    assert_eq!(
        date("DATETIME_PARSE('5 Mar 2024 3:04 pm', 'D MMM YYYY h:mm a')")
            .format("%F %T")
            .to_string(),
        "2024-03-05 15:04:00"
    );
    assert!(ev("DATETIME_PARSE('nope')").is_error());
    assert_eq!(ev("DATETIME_PARSE('')"), Value::Blank);
    // a dateTime field equals the parsed date, and contains its ISO date as text
    let c = MapContext::new(now()).with(
        "When",
        Value::DateTime(
            Utc.with_ymd_and_hms(2023, 12, 1, 12, 34, 56)
                .single()
                .unwrap(),
        ),
    );
    for f in [
        "{When} = DATETIME_PARSE('2023-12-01T12:34:56.000Z')",
        "FIND('2023-12-01', {When})",
        "{When} = '2023-12-01T12:34:56.000Z'",
    ] {
        assert!(is_truthy(&eval(&parse(f).unwrap(), &c)), "{f}");
    }
    assert_eq!(txt("DATETIME_FORMAT({Due})"), "3/10/2024");
    assert_eq!(txt("DATETIME_FORMAT({Due}, 'YYYY-MM-DD')"), "2024-03-10");
    assert_eq!(
        txt("DATETIME_FORMAT(DATETIME_PARSE('2024-03-05T14:07:09Z'), 'DD/MM/YY HH:mm:ss')"),
        "05/03/24 14:07:09"
    );
    assert_eq!(
        txt(
            "DATETIME_FORMAT(DATETIME_PARSE('2024-03-05T14:07:09Z'), 'dddd, MMMM Do YYYY h:mm a [at] Q')"
        ),
        "Tuesday, March 5th 2024 2:07 pm at 1"
    );
    assert_eq!(txt("DATETIME_FORMAT({Due}, 'LL')"), "March 10, 2024");
    assert_eq!(txt("DATESTR({Due})"), "2024-03-10");
    assert_eq!(txt("TIMESTR(NOW())"), "10:30:00");
    // ISO text coerces where a date is expected
    assert_eq!(txt("DATETIME_FORMAT({DueText}, 'MMM D')"), "Mar 20");
    assert_eq!(ev("DATETIME_FORMAT({Empty})"), Value::Blank);
}

#[test]
fn date_arithmetic_and_comparison() {
    assert_eq!(date("DATEADD({Due}, 1, 'days')"), ymd(2024, 3, 11));
    assert_eq!(date("DATEADD({Due}, -2, 'weeks')"), ymd(2024, 2, 25));
    assert_eq!(date("DATEADD('2024-01-31', 1, 'months')"), ymd(2024, 2, 29));
    assert_eq!(date("DATEADD('2024-01-31', 1, 'M')"), ymd(2024, 2, 29));
    assert_eq!(date("DATEADD('2024-01-31', 1, 'year')"), ymd(2025, 1, 31));
    assert_eq!(
        date("DATEADD('2024-01-31', 1, 'quarters')"),
        ymd(2024, 4, 30)
    );
    assert_eq!(
        date("DATEADD('2024-01-31', 90, 'minutes')")
            .format("%H:%M")
            .to_string(),
        "01:30"
    );
    assert!(ev("DATEADD({Due}, 1, 'fortnights')").is_error());
    assert_eq!(
        num("DATETIME_DIFF('2024-03-10', '2024-03-01', 'days')"),
        9.0
    );
    assert_eq!(
        num("DATETIME_DIFF('2024-03-01', '2024-03-10', 'days')"),
        -9.0
    );
    assert_eq!(
        num("DATETIME_DIFF('2024-03-01T12:00:00Z', '2024-03-01', 'hours')"),
        12.0
    );
    assert_eq!(
        num("DATETIME_DIFF('2024-03-01T00:01:00Z', '2024-03-01')"),
        60.0
    );
    assert_eq!(
        num("DATETIME_DIFF('2024-03-30', '2024-01-31', 'months')"),
        1.0
    );
    assert_eq!(
        num("DATETIME_DIFF('2025-01-30', '2024-01-31', 'years')"),
        0.0
    );
    assert_eq!(
        num("DATETIME_DIFF('2025-01-31', '2024-01-31', 'years')"),
        1.0
    );
    assert_eq!(
        num("DATETIME_DIFF('2024-01-31', '2024-03-30', 'months')"),
        -1.0
    );
    assert!(truth("IS_BEFORE({Due}, TODAY())"));
    assert!(!truth("IS_AFTER({Due}, TODAY())"));
    assert!(truth("IS_AFTER({DueText}, {Due})"));
    assert!(truth("IS_SAME('2024-03-10T23:00:00Z', {Due}, 'day')"));
    assert!(!truth("IS_SAME('2024-03-10T23:00:00Z', {Due})"));
    assert!(truth("IS_SAME('2024-03-31', {Due}, 'month')"));
    assert!(truth("IS_SAME('2024-12-31', {Due}, 'year')"));
    assert!(truth("{Due} < TODAY()"));
    assert!(truth("{Due} < '2024-03-11'"));
    assert!(!truth("{Empty} < TODAY()"));
    assert_eq!(date("TODAY()"), ymd(2024, 3, 15));
    assert_eq!(date("NOW()"), now());
    assert_eq!(date("CREATED_TIME()"), now());
    assert_eq!(num("YEAR({Due})"), 2024.0);
    assert_eq!(num("MONTH({Due})"), 3.0);
    assert_eq!(num("DAY({Due})"), 10.0);
    assert_eq!(num("HOUR(NOW())"), 10.0);
    assert_eq!(num("MINUTE(NOW())"), 30.0);
    assert_eq!(num("SECOND(NOW())"), 0.0);
    assert_eq!(num("WEEKDAY({Due})"), 0.0); // 2024-03-10 is a Sunday
    assert_eq!(num("WEEKDAY({Due}, 'Monday')"), 6.0);
    assert_eq!(num("WEEKNUM('2024-01-01')"), 1.0);
    assert_eq!(num("WEEKNUM('2024-01-07')"), 2.0);
    assert_eq!(date("WORKDAY('2024-03-08', 1)"), ymd(2024, 3, 11));
    assert_eq!(
        date("WORKDAY('2024-03-08', 1, '2024-03-11')"),
        ymd(2024, 3, 12)
    );
    assert_eq!(date("WORKDAY('2024-03-11', -1)"), ymd(2024, 3, 8));
    assert_eq!(num("WORKDAY_DIFF('2024-03-01', '2024-03-31')"), 21.0);
    assert_eq!(
        num("WORKDAY_DIFF('2024-03-01', '2024-03-31', '2024-03-29')"),
        20.0
    );
    assert_eq!(num("WORKDAY_DIFF('2024-03-31', '2024-03-01')"), -21.0);
    assert_eq!(num("TONOW({Due})"), 5.0);
    assert_eq!(num("FROMNOW({Due})"), -5.0);
    assert!(ev("SET_TIMEZONE({Due}, 'Mars/Olympus')").is_error());
    assert_eq!(
        date("SET_TIMEZONE({Due}, 'Europe/Paris')"),
        ymd(2024, 3, 10)
    );
    assert_eq!(date("MAX({Due}, '2024-01-01')"), ymd(2024, 3, 10));
    assert_eq!(date("MIN({Due}, '2024-01-01')"), ymd(2024, 1, 1));
    assert!(ev("YEAR('garbage')").is_error());
    assert_eq!(ev("YEAR({Empty})"), Value::Blank);
}

// ------------------------------------------------------------------ arrays

#[test]
fn array_functions() {
    let c = MapContext::new(now()).with(
        "L",
        Value::Array(vec![
            Value::text("a"),
            Value::Blank,
            Value::text("b"),
            Value::text(""),
            Value::text("a"),
            Value::Array(vec![Value::text("c")]),
        ]),
    );
    let e = |src: &str| eval(&parse(src).unwrap(), &c);
    assert_eq!(
        e("ARRAYJOIN(ARRAYCOMPACT({L}), ';')"),
        Value::text("a;b;a;c")
    );
    assert_eq!(e("ARRAYJOIN({L})"), Value::text("a, , b, , a, c"));
    assert_eq!(
        e("ARRAYUNIQUE(ARRAYFLATTEN({L}))"),
        Value::Array(vec![
            Value::text("a"),
            Value::Blank,
            Value::text("b"),
            Value::text(""),
            Value::text("c")
        ])
    );
    assert_eq!(
        e("ARRAYSLICE({L}, 2, 3)"),
        Value::Array(vec![Value::Blank, Value::text("b")])
    );
    assert_eq!(
        e("ARRAYSLICE({L}, -1)"),
        Value::Array(vec![Value::Array(vec![Value::text("c")])])
    );
    assert_eq!(e("ARRAYJOIN('x', '-')"), Value::text("x"));
}

// ------------------------------------------------------------------ helpers

#[test]
fn string_literal_escapes_quotes_and_backslashes() {
    assert_eq!(string_literal("Jane's"), r#""Jane's""#);
    assert_eq!(string_literal(r#"say "hi""#), r#""say \"hi\"""#);
    assert_eq!(string_literal(r"a\b"), r#""a\\b""#);
    // an injection attempt stays text
    let hostile = r#"x") & ERROR() & ("#;
    let expr = parse(&format!("{{Name}} = {}", string_literal(hostile))).unwrap();
    assert_eq!(referenced_fields(&expr), vec!["Name"]);
    assert_eq!(eval(&expr, &ctx()), Value::Bool(false));
}

#[test]
fn field_ref_round_trips() {
    assert_eq!(field_ref("Due Date"), "{Due Date}");
    assert_eq!(field_ref("a}b"), r"{a\}b}");
    assert_eq!(field_ref("a\\"), r"{a\\}");
    assert_eq!(field_ref("a\\b"), r"{a\b}");
    for name in ["a}b", "a\\", "a\\}", "}}", "\\\\x", "a\\b"] {
        let e = parse(&field_ref(name)).unwrap();
        assert_eq!(referenced_fields(&e), vec![name.to_string()], "{name}");
    }
}

#[test]
fn hostile_sizes_stay_fast() {
    // many distinct unknown fields (as many as fit under the length cap): deduplicated with a
    // set, explained for the first 20
    let many: Vec<String> = (0..8_000).map(|i| format!("f{i}")).collect();
    let src = format!("AND({})", many.join(","));
    assert!(src.len() <= MAX_FORMULA_LEN);
    let e = check(&src, FIELDS).unwrap_err();
    assert!(matches!(&e.kind, FormulaErrorKind::UnknownFields(n) if n.len() == 8_000));
    assert!(e.message.contains("and 7980 more"), "{}", &e.message[..200]);
    assert_eq!(referenced_fields(&parse(&src).unwrap()).len(), 8_000);
    // a huge unknown name gets no similarity search
    let long = format!("{{{}}}", "x".repeat(60_000));
    assert!(check(&long, FIELDS).is_err());
    // a format full of unclosed brackets
    let fmt = "[".repeat(60_000);
    assert_eq!(
        ev(&format!("LEN(DATETIME_FORMAT({{Due}}, '{fmt}'))")),
        Value::Number(60_000.0)
    );
    // bigger than the cap: refused before parsing
    let many: Vec<String> = (0..50_000).map(|i| format!("f{i}")).collect();
    let src = format!("AND({})", many.join(","));
    assert_eq!(
        check(&src, FIELDS).unwrap_err().kind,
        FormulaErrorKind::TooLong
    );
}

#[test]
fn error_display_is_the_message() {
    let e = check("{Nmae}", &["Name"]).unwrap_err();
    assert_eq!(e.to_string(), e.message);
    assert!(e.message.contains("{Nmae}"));
    assert!(e.render("{Nmae}").ends_with("\n  {Nmae}\n  ^"));
}

#[test]
fn datetime_format_in_a_time_zone() {
    assert_eq!(
        txt(
            "DATETIME_FORMAT(SET_TIMEZONE('2024-03-10T23:30:00Z', 'Europe/Paris'), 'YYYY-MM-DD HH:mm Z')"
        ),
        "2024-03-11 00:30 +01:00"
    );
    assert_eq!(
        txt(
            "DATETIME_FORMAT(SET_TIMEZONE('2024-07-01T12:00:00Z', 'America/New_York'), 'h:mm A ZZ')"
        ),
        "8:00 AM -0400"
    );
    assert_eq!(
        txt("DATETIME_FORMAT(SET_TIMEZONE({Due}, 'Australia/Sydney'))"),
        "3/10/2024"
    );
    assert!(ev("DATETIME_FORMAT(SET_TIMEZONE({Due}, 'Nowhere/City'), 'YYYY')").is_error());
    assert_eq!(
        ev("DATETIME_FORMAT(SET_TIMEZONE({Empty}, 'Europe/Paris'))"),
        Value::Blank
    );
    // without a zone: UTC
    assert_eq!(
        txt("DATETIME_FORMAT('2024-03-10T23:30:00Z', 'HH:mm Z')"),
        "23:30 +00:00"
    );
}

#[test]
fn expressions_print_back_to_equivalent_formulas() {
    for (src, printed) in [
        ("1+2*3", "1 + 2 * 3"),
        ("(1+2)*3", "(1 + 2) * 3"),
        ("1-(2-3)", "1 - (2 - 3)"),
        ("(1-2)-3", "1 - 2 - 3"),
        ("-(1+2)", "-(1 + 2)"),
        ("{A b}&'x'", "{A b} & \"x\""),
        ("if(A, 'it''s', 2)", ""),
        ("if(A, 'it\\'s', B)", "if(A, \"it's\", B)"),
        ("a = b <> c", "a = b != c"),
    ] {
        match parse(src) {
            Ok(e) => assert_eq!(e.to_string(), printed, "{src}"),
            Err(_) => assert_eq!(printed, "", "{src}"),
        }
    }
}

/// The tree without source positions, for comparing a parse of printed text.
fn strip(e: &Expr) -> Expr {
    let kind = match &e.kind {
        ExprKind::Call { name, func, args } => ExprKind::Call {
            name: name.clone(),
            func: *func,
            args: args.iter().map(strip).collect(),
        },
        ExprKind::Neg(inner) => ExprKind::Neg(Box::new(strip(inner))),
        ExprKind::Binary { op, lhs, rhs } => ExprKind::Binary {
            op: *op,
            lhs: Box::new(strip(lhs)),
            rhs: Box::new(strip(rhs)),
        },
        other => other.clone(),
    };
    Expr {
        kind,
        start: 0,
        end: 0,
    }
}

fn node(kind: ExprKind) -> Expr {
    Expr {
        kind,
        start: 0,
        end: 0,
    }
}

/// Random syntax trees: literals, both kinds of field references, calls of real and unknown
/// functions, negation and every binary operator.
fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (0u32..100_000).prop_map(|n| node(ExprKind::Number(f64::from(n)))),
        (0f64..1e25).prop_map(|n| node(ExprKind::Number(n))),
        any::<String>().prop_map(|s| node(ExprKind::Text(s))),
        any::<String>()
            .prop_filter("non-blank", |s| !s.trim().is_empty())
            .prop_map(|name| node(ExprKind::Field { name, braced: true })),
        "[A-Za-z_][A-Za-z0-9_]{0,8}".prop_map(|name| node(ExprKind::Field {
            name,
            braced: false
        })),
        prop::sample::select(vec!["TODAY", "now", "Blank", "TRUE", "RECORD_ID", "NOSUCH"])
            .prop_map(|n| node(ExprKind::Call {
                name: n.to_string(),
                func: Func::from_name(n),
                args: vec![]
            })),
    ];
    let ops = prop::sample::select(vec![
        BinOp::Eq,
        BinOp::Ne,
        BinOp::Lt,
        BinOp::Gt,
        BinOp::Le,
        BinOp::Ge,
        BinOp::Concat,
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
    ]);
    let names: Vec<String> = Func::ALL
        .iter()
        .map(|f| f.name().to_string())
        .chain([
            "lower".to_string(),
            "Find".to_string(),
            "UNKNOWN_FN".to_string(),
        ])
        .collect();
    leaf.prop_recursive(8, 96, 4, move |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| node(ExprKind::Neg(Box::new(e)))),
            (inner.clone(), ops.clone(), inner.clone()).prop_map(|(l, op, r)| node(
                ExprKind::Binary {
                    op,
                    lhs: Box::new(l),
                    rhs: Box::new(r)
                }
            )),
            (
                prop::sample::select(names.clone()),
                prop::collection::vec(inner, 0..4)
            )
                .prop_map(|(name, args)| node(ExprKind::Call {
                    func: Func::from_name(&name),
                    name,
                    args
                })),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Fuzz-style: any tree prints to a formula that parses back to the same tree, and
    /// evaluating it (with every function's coercions) never panics.
    #[test]
    fn random_trees_round_trip_and_evaluate(e in arb_expr()) {
        let printed = e.to_string();
        let parsed = parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed}: {}", err.message)))?;
        prop_assert_eq!(strip(&parsed), e.clone(), "{}", printed);
        let v = eval(&parsed, &ctx());
        let _ = is_truthy(&v);
        let _ = v.to_json();
        let _ = check(&printed, FIELDS);
    }

    #[test]
    fn string_literal_round_trips(s in any::<String>()) {
        let expr = parse(&string_literal(&s)).unwrap();
        prop_assert_eq!(eval(&expr, &ctx()), Value::Text(s));
    }

    #[test]
    fn string_literal_cannot_inject(s in "[\"'\\\\(){}, &a-z]{0,40}") {
        let src = format!("{{Name}} = {}", string_literal(&s));
        let expr = parse(&src).unwrap();
        prop_assert_eq!(referenced_fields(&expr), vec!["Name".to_string()]);
        let is_eq = matches!(expr.kind, ExprKind::Binary { op: BinOp::Eq, .. });
        prop_assert!(is_eq);
    }

    #[test]
    fn field_ref_round_trips_any_name(name in any::<String>().prop_filter("non-blank", |s| !s.trim().is_empty())) {
        let expr = parse(&field_ref(&name)).unwrap();
        prop_assert_eq!(referenced_fields(&expr), vec![name]);
    }

    #[test]
    fn numbers_print_and_read_back_exactly(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
        let shown = value::format_number(x);
        prop_assert_eq!(value::parse_number(&shown), Some(x), "{}", shown);
        // and a literal of it evaluates to it
        let lit = if x < 0.0 { format!("-{}", value::format_number(-x)) } else { shown };
        prop_assert_eq!(eval(&parse(&lit).unwrap(), &ctx()), Value::Number(x));
    }

    #[test]
    fn text_functions_agree_with_rust(a in any::<String>(), b in any::<String>()) {
        let c = ctx();
        let run = |src: String| eval(&parse(&src).unwrap(), &c);
        let (la, lb) = (string_literal(&a), string_literal(&b));
        prop_assert_eq!(run(format!("LEN({la})")), Value::Number(a.chars().count() as f64));
        prop_assert_eq!(run(format!("{la} & {lb}")), Value::Text(format!("{a}{b}")));
        prop_assert_eq!(run(format!("CONCATENATE({la}, {lb})")), Value::Text(format!("{a}{b}")));
        prop_assert_eq!(run(format!("UPPER({la})")), Value::Text(a.to_uppercase()));
        prop_assert_eq!(run(format!("{la} = {la}")), Value::Bool(true));
        let found = run(format!("FIND({lb}, {la})"));
        let expected = a.find(b.as_str()).map_or(0, |i| a[..i].chars().count() + 1);
        prop_assert_eq!(found, Value::Number(expected as f64));
    }

    #[test]
    fn comparisons_are_a_consistent_order(x in -1e6f64..1e6, y in -1e6f64..1e6, s in "[a-z]{0,3}", t in "[a-z]{0,3}") {
        let c = ctx();
        let run = |src: String| is_truthy(&eval(&parse(&src).unwrap(), &c));
        for (a, b) in [(format!("{x}"), format!("{y}")), (string_literal(&s), string_literal(&t))] {
            let (a, b) = (format!("({a})"), format!("({b})"));
            let lt = run(format!("{a} < {b}"));
            let gt = run(format!("{a} > {b}"));
            let eq = run(format!("{a} = {b}"));
            prop_assert_eq!(u8::from(lt) + u8::from(gt) + u8::from(eq), 1);
            prop_assert_eq!(run(format!("{a} <= {b}")), lt || eq);
            prop_assert_eq!(run(format!("{a} >= {b}")), gt || eq);
            prop_assert_eq!(run(format!("{a} != {b}")), !eq);
            prop_assert_eq!(run(format!("{b} < {a}")), gt);
        }
    }

    #[test]
    fn parse_never_panics(src in any::<String>()) {
        if let Ok(expr) = parse(&src) {
            let _ = eval(&expr, &ctx());
        }
        let _ = check(&src, FIELDS);
    }

    #[test]
    fn formula_shaped_input_never_panics(
        src in proptest::collection::vec(prop_oneof![
            Just("("), Just(")"), Just(","), Just("{Name}"), Just("{Price}"), Just("{Tags}"),
            Just("'x'"), Just("\""), Just("'"), Just("1"), Just("0"), Just("-"), Just("+"),
            Just("*"), Just("/"), Just("&"), Just("="), Just("<"), Just(">="), Just("!="),
            Just("IF("), Just("AND("), Just("FIND("), Just("DATEADD("), Just("REPT("),
            Just("MID("), Just("SWITCH("), Just("ARRAYSLICE("), Just("DATETIME_FORMAT("),
            Just("REGEX_REPLACE("), Just("'days'"), Just("{Due}"), Just("1e308"), Just(" "),
            Just("\\"), Just("}"), Just("{"), Just("BLANK()"), Just("ERROR()"),
        ], 0..40)
    ) {
        let src: String = src.concat();
        if let Ok(expr) = parse(&src) {
            let v = eval(&expr, &ctx());
            let _ = is_truthy(&v);
            let _ = v.to_json();
        }
    }

    /// Costly shapes (REPT, REGEX_REPLACE, SUBSTITUTE, `&` over long text) under a small
    /// budget: no panic, and either a value or the step budget's error, never more work.
    #[test]
    fn costly_formulas_stay_within_their_budget(
        src in proptest::collection::vec(prop_oneof![
            Just("REPT("), Just("'ab'"), Just("500000"), Just("REGEX_REPLACE("),
            Just("SUBSTITUTE("), Just("CONCATENATE("), Just("&"), Just(","), Just(")"),
            Just("{Name}"), Just("LEN("), Just("'a'"), Just("'.'"), Just("1e6"), Just("ARRAYJOIN("),
            Just("{Tags}"), Just("IF("), Just("FIND("), Just("UPPER("),
        ], 0..30),
        seed in any::<u64>(),
    ) {
        let src: String = src.concat();
        if let Ok(expr) = parse(&src) {
            let limit = 1_000 + seed % 100_000;
            let b = Budget { max_steps: limit, max_time: None, cancel: None };
            match eval_within(&expr, &ctx(), &b) {
                Ok(v) => {
                    let _ = is_truthy(&v);
                }
                Err(e) => prop_assert_eq!(e, BudgetExceeded::Steps { limit }),
            }
        }
    }

    /// Anything longer than the cap is refused before parsing, whatever it is.
    #[test]
    fn over_the_cap_is_always_too_long(extra in 1usize..64, c in any::<char>()) {
        let src: String = std::iter::repeat_n(c, MAX_FORMULA_LEN / c.len_utf8() + extra).collect();
        prop_assert!(src.len() > MAX_FORMULA_LEN);
        prop_assert_eq!(parse(&src).unwrap_err().kind, FormulaErrorKind::TooLong);
    }

    #[test]
    fn error_positions_are_within_the_formula(src in any::<String>()) {
        if let Err(e) = check(&src, FIELDS) {
            let len = src.chars().count();
            prop_assert!(e.position.is_none_or(|p| p <= len), "{:?} > {}", e.position, len);
            prop_assert!(!e.message.is_empty());
        }
    }
}

/// The depth limit keeps parse and eval within a thread's stack: every nesting shape at the limit
/// runs on a thread with 1.5 MiB (tokio's workers have 2 MiB), even in a debug build, where 197
/// nested calls were measured to need about 1 MiB (release builds need far less).
#[test]
fn max_depth_formulas_fit_in_a_small_stack() {
    let d = MAX_DEPTH - 3;
    let shapes = [
        format!("{}1{}", "(".repeat(d), ")".repeat(d)),
        format!("{}{{Price}}{}", "ABS(".repeat(d), ")".repeat(d)),
        format!("{}1{}", "IF(TRUE(), ".repeat(d), ")".repeat(d)),
        format!("{}'x'{}", "SWITCH(1, 1, ".repeat(d), ")".repeat(d)),
        format!("{}1", "-".repeat(d)),
        vec!["{Name}"; d].join(" & "),
        vec!["1"; d].join(" * "),
        format!(
            "{}{{Due}}{}",
            "DATETIME_FORMAT(SET_TIMEZONE(".repeat(d / 2),
            ", 'UTC'))".repeat(d / 2)
        ),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(1536 * 1024)
        .spawn(move || {
            let c = ctx();
            shapes
                .iter()
                .map(|src| {
                    let e = check(src, &["Name", "Price", "Due"])
                        .unwrap_or_else(|e| panic!("{}: {}", &src[..40], e.message));
                    let v = eval(&e, &c);
                    let _ = e.to_string();
                    let _ = e.clone() == e;
                    v
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
    let values = handle.join().expect("no stack overflow");
    assert_eq!(values.first(), Some(&Value::Number(1.0)));
    assert_eq!(values.get(1), Some(&Value::Number(10.0)));
    assert_eq!(values.get(2), Some(&Value::Number(1.0)));
    assert_eq!(values.get(4), Some(&Value::Number(-1.0)));
}

#[test]
fn a_formula_over_the_cap_is_refused_before_parsing() {
    // 10 MB: parsing it once peaked at 907 MB; every byte would be a syntax error.
    let huge = ")".repeat(10 * 1024 * 1024);
    let e = parse(&huge).unwrap_err();
    assert_eq!(e.kind, FormulaErrorKind::TooLong);
    assert!(e.message.contains("65536 bytes"), "{}", e.message);
    assert_eq!(e.position, None);
    assert_eq!(
        check(&huge, FIELDS).unwrap_err().kind,
        FormulaErrorKind::TooLong
    );
    assert!(
        e.airtable_message().starts_with(error::AIRTABLE_PREFIX),
        "{}",
        e.airtable_message()
    );
    // At the cap it is parsed (and here a plain syntax error).
    let at_cap = ")".repeat(MAX_FORMULA_LEN);
    assert_eq!(parse(&at_cap).unwrap_err().kind, FormulaErrorKind::Syntax);
}

#[test]
fn a_hostile_formula_stops_at_its_step_budget() {
    let hostile = check(r#"LEN(REGEX_REPLACE(REPT("a",500000),"a","b"))<0"#, FIELDS).unwrap();
    let budget = Budget {
        max_steps: 1_000_000,
        max_time: None,
        cancel: None,
    };
    // REPT's 500,000 bytes are charged before REGEX_REPLACE runs over them.
    assert_eq!(
        eval_within(&hostile, &ctx(), &budget),
        Err(BudgetExceeded::Steps { limit: 1_000_000 })
    );
    // Ordinary formulas fit easily, and the budget is per call.
    let ok = check("IF({Price} * {Quantity} > 20, UPPER({Name}), 'no')", FIELDS).unwrap();
    for _ in 0..3 {
        assert_eq!(eval_within(&ok, &ctx(), &budget), Ok(Value::text("ALICE")));
    }
    // Without a budget the evaluator is unbounded (the text cap still applies).
    assert_eq!(eval(&hostile, &ctx()), Value::Bool(false));
}

#[test]
fn a_cancelled_evaluation_stops() {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let budget = Budget::default().with_cancel(flag);
    let e = check(r#"LEN(REPT("ab", 100000))"#, FIELDS).unwrap();
    assert_eq!(
        eval_within(&e, &ctx(), &budget),
        Err(BudgetExceeded::Cancelled)
    );
}
