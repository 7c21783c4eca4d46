//! Hostile tool arguments (issue #11): random argument objects for every tool — the tool's own
//! parameter names with values of any JSON type (hostile strings, huge numbers, nesting), and
//! unknown names — through the in-process MCP client against the demo sandbox. Whatever comes
//! in, the server answers every call (a tool error or an invalid-params error, never an
//! internal error), never panics, keeps each result within its size budget, and still serves
//! the next call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airtable_mcp::tools::{self, ServerOptions};
use mcp_support::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

/// Strings a model (or an attacker) might send.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("appDemoTracker001".to_owned()),
        Just("Tasks".to_owned()),
        Just("People".to_owned()),
        Just("Name".to_owned()),
        Just("recAAAAAAAAAAAAAA".to_owned()),
        Just("tblAAAAAAAAAAAAAA".to_owned()),
        Just("../../../etc/passwd".to_owned()),
        Just("{Name}".to_owned()),
        Just("AND(".to_owned()),
        Just("\"}) OR TRUE() OR ({\"".to_owned()),
        Just("\u{0}\u{202e}\u{200b}\u{e0041}".to_owned()),
        Just("x".repeat(70_000)),
        Just("9".repeat(400)),
        "[a-zA-Z0-9 _{}()\",.-]{0,40}",
        any::<String>(),
    ]
}

/// Any JSON value, a few levels deep, with hostile leaves.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(0)),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A call: a tool name and an argument object made of its own parameter names (each present or
/// not) plus, sometimes, an unknown name.
fn call_strategy(tools: Arc<Vec<(String, Vec<String>)>>) -> impl Strategy<Value = (String, Value)> {
    let n = tools.len();
    (
        0..n,
        prop::collection::vec(proptest::option::of(json_value()), 12),
        prop::collection::vec(prop::bool::weighted(0.8), 12),
        proptest::option::weighted(0.2, ("[a-z_]{1,12}", json_value())),
    )
        .prop_map(move |(i, values, anchored, extra)| {
            let (name, props) = &tools[i];
            let mut args = Map::new();
            for ((p, v), anchor) in props.iter().zip(values).zip(anchored) {
                // Mostly a real base and table, so that calls get past the lookups and into
                // the tools' own handling of the other arguments.
                let real = match p.as_str() {
                    "base_id" | "source_base_id" | "target_base_id" => Some("appDemoTracker001"),
                    "table_id" | "source_table_id" | "target_table_id" => Some("Tasks"),
                    _ => None,
                };
                match (real, anchor) {
                    (Some(r), true) => {
                        args.insert(p.clone(), json!(r));
                    }
                    _ => {
                        if let Some(v) = v {
                            args.insert(p.clone(), v);
                        }
                    }
                }
            }
            if let Some((k, v)) = extra {
                args.insert(k, v);
            }
            (name.clone(), Value::Object(args))
        })
}

#[test]
fn hostile_arguments_never_break_the_server() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counter = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let options = ServerOptions::default();
    let budget = options.result_budget;
    let h = rt.block_on(harness_with(options));

    // Every tool, with the names of its parameters (from its input schema).
    let tools: Vec<(String, Vec<String>)> = tools::all_tools()
        .iter()
        .map(|t| {
            let props = t
                .input_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            (t.name.to_string(), props)
        })
        .collect();
    assert!(tools.len() >= 20, "the catalogue is listed");
    let strategy = call_strategy(Arc::new(tools));

    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let tally = std::cell::RefCell::new([0usize; 3]);
    let result = runner.run(&strategy, |(name, args)| {
        rt.block_on(async {
            // A guard against hangs, not a speed assertion.
            let answered = tokio::time::timeout(
                Duration::from_secs(60),
                try_call(&h.client, &name, args.clone()),
            )
            .await
            .map_err(|_| TestCaseError::fail(format!("{name} did not answer: {args}")))?;
            match answered {
                Ok(result) => {
                    let size = serde_json::to_string(&result).map(|s| s.len()).unwrap_or(0);
                    // Text content repeats the structured content: twice the budget, plus room
                    // for a note.
                    prop_assert!(
                        size <= 2 * budget + 16 * 1024,
                        "{name}: result of {size} bytes over the budget"
                    );
                    if result.is_error == Some(true) {
                        prop_assert!(!text(&result).is_empty(), "{name}: an error without text");
                        tally.borrow_mut()[1] += 1;
                    } else {
                        tally.borrow_mut()[0] += 1;
                    }
                }
                Err(rmcp::ServiceError::McpError(e)) => {
                    prop_assert!(
                        e.code != rmcp::model::ErrorCode::INTERNAL_ERROR,
                        "{name}: internal error {e:?} for {args}"
                    );
                    tally.borrow_mut()[2] += 1;
                }
                Err(e) => return Err(TestCaseError::fail(format!("{name}: transport broke: {e}"))),
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let [succeeded, tool_errors, invalid_params] = *tally.borrow();
    eprintln!(
        "fuzz: {succeeded} calls succeeded, {tool_errors} tool errors, {invalid_params} invalid-params errors"
    );
    assert!(
        succeeded > 0,
        "no call got through: the generator is too weak"
    );
    // Still serving.
    let bases = rt.block_on(ok(&h.client, "list_bases", json!({})));
    assert!(bases["bases"].as_array().is_some_and(|b| !b.is_empty()));
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the server panicked");
}
