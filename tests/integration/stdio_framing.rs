//! The stdio server (`airtable-mcp serve --sandbox`) answers every unusable line: a message over
//! 16 MiB gets a JSON-RPC error with its id (the client no longer waits forever), text that is
//! not JSON a parse error, and the session goes on. Also what stdio writes its own way: tools/list
//! from the catalogue's lines, and record lists with their JSON text as structured content.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// The binary with `args`, piped stdin and stdout, in a clean environment under `home` (no
/// token, no keyring, no user config).
fn serve(home: &std::path::Path, args: &[&str]) -> tokio::process::Child {
    Command::new(env!("CARGO_BIN_EXE_airtable-mcp"))
        .env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AIRTABLE_MCP_KEYRING", "none")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The next line the server writes, as JSON, within `secs` seconds.
async fn next_message(
    out: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    secs: u64,
) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(secs), out.next_line())
        .await
        .expect("the server stopped answering")
        .unwrap()
        .expect("the server exited");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn oversized_and_malformed_lines_get_errors_with_their_ids() {
    let home = tempfile::tempdir().unwrap();
    let mut child = serve(home.path(), &["serve", "--sandbox"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();

    let big = json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
        "params": {"name": "list_bases", "arguments": {"blob": "a".repeat(17 * 1024 * 1024)}}});
    let writer = tokio::spawn(async move {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "framing-test", "version": "0"}}});
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let ping = json!({"jsonrpc": "2.0", "id": 100, "method": "ping"});
        let text = format!("{init}\n{initialized}\n{big}\nnot json at all\n{ping}\n");
        stdin.write_all(text.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        stdin
    });

    let mut by_id = std::collections::HashMap::new();
    let mut without_id = Vec::new();
    while !(by_id.contains_key(&99) && by_id.contains_key(&100) && !without_id.is_empty()) {
        let v = next_message(&mut out, 120).await;
        match v.get("id").and_then(Value::as_i64) {
            Some(id) => {
                by_id.insert(id, v);
            }
            None => without_id.push(v),
        }
    }
    assert!(
        by_id[&1]["result"]["serverInfo"].is_object(),
        "{}",
        by_id[&1]
    );
    let err = &by_id[&99]["error"];
    assert_eq!(err["code"], -32600, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("larger than"),
        "{err}"
    );
    assert_eq!(without_id[0]["error"]["code"], -32700, "{}", without_id[0]);
    assert!(by_id[&100]["result"].is_object(), "{}", by_id[&100]);
    drop(writer.await.unwrap());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

/// `tools/list` over stdio is written from the catalogue's lines (stand-ins in the handler,
/// copied text in the writer): what arrives is every exposed tool, whole, as the tool
/// definitions serialise it, with and without --read-only.
#[tokio::test]
async fn tools_list_over_stdio_is_every_exposed_tool_whole() {
    let all: Vec<Value> = airtable_mcp::tools::all_tools()
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    for read_only in [false, true] {
        let home = tempfile::tempdir().unwrap();
        let mut args = vec!["serve"];
        if read_only {
            args.push("--read-only");
        }
        let mut child = serve(home.path(), &args);
        let mut stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "list-test", "version": "0"}}});
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
        stdin
            .write_all(format!("{init}\n{initialized}\n{list}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        let listed = loop {
            let v = next_message(&mut out, 60).await;
            if v["id"] == 2 {
                break v;
            }
        };
        let tools = listed["result"]["tools"].as_array().expect("tools").clone();
        let expected: Vec<Value> = all
            .iter()
            .filter(|t| {
                let spec = airtable_mcp::tools::find_spec(t["name"].as_str().unwrap()).unwrap();
                !read_only || spec.access == airtable_mcp::tools::Access::Read
            })
            .cloned()
            .collect();
        assert!(expected.len() > 10, "{}", expected.len());
        assert_eq!(tools.len(), expected.len(), "read_only={read_only}");
        for (got, want) in tools.iter().zip(&expected) {
            assert_eq!(got, want, "read_only={read_only}");
        }
        drop(stdin);
        let _ = child.wait().await;
    }
}

/// A record list over stdio carries its JSON text as its structured content (written once, not
/// serialised from a tree): the same value as the text, in both protocol eras, all 100 rows.
#[tokio::test]
async fn record_lists_over_stdio_carry_their_text_as_structured_content() {
    for version in ["2025-06-18", "2026-07-28"] {
        let home = tempfile::tempdir().unwrap();
        let mut child = serve(home.path(), &["serve", "--sandbox"]);
        let mut stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "list-test", "version": "0"}}});
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let call = |id: u64, max: u64, fields: Value| {
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": "get_records", "arguments": {"base_id": "appDemoTracker001",
                "table_id": "Tasks", "max_records": max, "fields": fields}}})
        };
        let calls = [
            call(2, 100, json!(null)),
            call(3, 3, json!(["Name", "Created", "Project", "Attachments"])),
        ];
        stdin
            .write_all(format!("{init}\n{initialized}\n{}\n{}\n", calls[0], calls[1]).as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        let mut answers = std::collections::BTreeMap::new();
        while answers.len() < 2 {
            let v = next_message(&mut out, 60).await;
            if v["id"] == 2 || v["id"] == 3 {
                answers.insert(v["id"].as_u64().unwrap(), v);
            }
        }
        for (id, rows) in [(2, 100), (3, 3)] {
            let result = &answers[&id]["result"];
            assert_eq!(
                result.get("isError"),
                Some(&json!(false)),
                "{version} {result}"
            );
            let text: Value =
                serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
            assert_eq!(result["structuredContent"], text, "{version}");
            assert_eq!(text["count"], rows, "{version}");
            assert_eq!(text["rows"].as_array().unwrap().len(), rows, "{version}");
            assert_eq!(text["columns"][0], "id", "{version}");
        }
        drop(stdin);
        let _ = child.wait().await;
    }
}
