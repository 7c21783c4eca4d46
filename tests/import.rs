//! import_records against the sandbox, through an in-process MCP client: awkward CSV files
//! (semicolons, quoted newlines, Latin-1, BOM, empty rows), every common field type, upsert by
//! key, rejections by row and column, and undo of a whole import.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mcp_support;

use std::str::FromStr;

use airtable_mcp::airtable::{BaseId, Client, CreateTable, FieldSpec, ListQuery, Record};
use airtable_mcp::tools::ServerOptions;
use mcp_support::*;
use serde_json::{Value, json};

fn base() -> BaseId {
    BaseId::from_str(DEMO).expect("demo base id")
}

fn spec(name: &str, t: &str, options: Option<Value>) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        field_type: serde_json::from_value(json!(t)).expect("field type"),
        description: None,
        options,
    }
}

async fn table(client: &Client, name: &str, fields: Vec<FieldSpec>) -> String {
    let req = CreateTable {
        name: name.into(),
        description: None,
        fields,
    };
    client
        .create_table(&base(), &req)
        .await
        .expect("create table")
        .id
        .to_string()
}

async fn records(client: &Client, table: &str) -> Vec<Record> {
    client
        .list_all_records(&base(), table, ListQuery::default())
        .await
        .expect("list records")
}

fn by(recs: &[Record], field: &str, value: &str) -> Value {
    let r = recs
        .iter()
        .find(|r| r.fields.get(field) == Some(&json!(value)))
        .unwrap_or_else(|| panic!("no record with {field} = {value}"));
    Value::Object(r.fields.clone())
}

fn typed_fields() -> Vec<FieldSpec> {
    vec![
        spec("Name", "singleLineText", None),
        spec("Qty", "number", Some(json!({"precision": 1}))),
        spec(
            "Price",
            "currency",
            Some(json!({"precision": 2, "symbol": "$"})),
        ),
        spec("Share", "percent", Some(json!({"precision": 0}))),
        spec(
            "Due",
            "date",
            Some(json!({"dateFormat": {"name": "european"}})),
        ),
        spec(
            "Done",
            "checkbox",
            Some(json!({"icon": "check", "color": "greenBright"})),
        ),
        spec(
            "Status",
            "singleSelect",
            Some(json!({"choices": [{"name": "Open"}, {"name": "Closed"}]})),
        ),
        spec(
            "Tags",
            "multipleSelects",
            Some(json!({"choices": [{"name": "red"}, {"name": "blue"}]})),
        ),
        spec("Notes", "multilineText", None),
    ]
}

#[tokio::test]
async fn inline_csv_is_planned_then_imported_converted_and_undone() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let t = table(&client, "Import typed", typed_fields()).await;
    let csv = "name;QTY;Price;Share;Due;Done;Status;Tags;Notes;Extra\r\n\
               Alpha;1.234,5;$1,200.50;12%;31/03/2024;yes;open;red, blue;\"two\nlines\";x\r\n\
               ;;;;;;;;;\r\n\
               Beta;7;3;50%;01/02/2024;no;Closed;blue;plain;y\r\n\
               Gamma;seven;1;1%;2024-01-01;maybe;Open;;;z\r\n";
    let args = json!({"base_id": DEMO, "table_id": t, "source": csv});
    let plan = ok(&h.client, "import_records", args.clone()).await;
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["rows"], 3);
    assert_eq!(plan["empty_rows"], 1);
    assert_eq!(plan["to_create"], 2);
    assert_eq!(plan["unmapped_columns"], json!(["Extra"]));
    assert_eq!(plan["mapped"]["QTY"], "Qty");
    let rejected = plan["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{plan}");
    assert_eq!(rejected[0]["row"], 6);
    assert_eq!(rejected[0]["column"], "QTY");
    assert_eq!(rejected[1]["column"], "Done");
    assert!(plan["detected"].as_str().unwrap().contains("';'"));
    assert!(records(&client, &t).await.is_empty(), "the dry run wrote");

    let mut apply = args.clone();
    apply["dry_run"] = json!(false);
    let done = ok(&h.client, "import_records", apply).await;
    let written = done["written"].as_array().unwrap();
    assert_eq!(written.len(), 2, "{done}");
    assert_eq!(written[0]["row"], 2);
    let recs = records(&client, &t).await;
    assert_eq!(recs.len(), 2);
    let a = by(&recs, "Name", "Alpha");
    assert_eq!(a["Qty"], json!(1234.5));
    assert_eq!(a["Price"], json!(1200.5));
    assert_eq!(a["Share"], json!(0.12));
    assert_eq!(a["Due"], "2024-03-31");
    assert_eq!(a["Done"], true);
    assert_eq!(a["Status"], "Open");
    assert_eq!(a["Tags"], json!(["red", "blue"]));
    assert_eq!(a["Notes"], "two\nlines");
    let b = by(&recs, "Name", "Beta");
    assert_eq!(b["Due"], "2024-02-01");
    assert!(b.get("Done").is_none() || b["Done"] == false);

    // The whole import is one journal entry.
    let write_id = done["write"]["write_id"]
        .as_str()
        .expect("write_id")
        .to_owned();
    ok(&h.client, "undo_write", json!({"write_id": write_id})).await;
    assert!(records(&client, &t).await.is_empty());
}

#[tokio::test]
async fn upsert_by_key_updates_the_second_time_and_reports_duplicates() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let t = table(
        &client,
        "Import upsert",
        vec![
            spec("SKU", "singleLineText", None),
            spec("Qty", "number", Some(json!({"precision": 0}))),
        ],
    )
    .await;
    let first = "SKU,Qty\nA,1\nB,2\nA,3\n";
    let args = json!({"base_id": DEMO, "table_id": t, "source": first, "key_fields": ["SKU"], "dry_run": false});
    let done = ok(&h.client, "import_records", args).await;
    assert_eq!(done["duplicate_keys"][0]["row"], 4, "{done}");
    assert_eq!(records(&client, &t).await.len(), 2);

    let second = "SKU,Qty\nA,10\nB,2\nC,5\n";
    let args = json!({"base_id": DEMO, "table_id": t, "source": second, "key_fields": ["SKU"]});
    let plan = ok(&h.client, "import_records", args.clone()).await;
    assert_eq!(
        (
            plan["to_create"].clone(),
            plan["to_update"].clone(),
            plan["unchanged"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    assert_eq!(plan["updates"][0]["changes"][0]["after"], 10);
    let mut apply = args;
    apply["dry_run"] = json!(false);
    ok(&h.client, "import_records", apply).await;
    let recs = records(&client, &t).await;
    assert_eq!(recs.len(), 3, "no duplicates");
    assert_eq!(by(&recs, "SKU", "A")["Qty"], 10);
}

#[tokio::test]
async fn files_in_the_export_dir_latin1_bom_json_and_many_rows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(
        root.join("latin1.csv"),
        b"Name\tNotes\nJos\xe9\tM\xfcnchen\n",
    )
    .unwrap();
    std::fs::write(root.join("bom.csv"), "\u{feff}Name,Notes\nÅsa,ok\n").unwrap();
    std::fs::write(
        root.join("rows.json"),
        r#"[{"Name":"J1","Notes":"n"},{"Name":"J2"}]"#,
    )
    .unwrap();
    let mut big = String::from("Name,Notes\n");
    for i in 0..1000 {
        big.push_str(&format!("R{i},\"line {i}, with comma\"\n"));
    }
    std::fs::write(root.join("big.csv"), big).unwrap();
    let h = harness_with(ServerOptions {
        export_dir: Some(root.clone()),
        ..ServerOptions::default()
    })
    .await;
    let client = client_for(&h.sandbox);
    let t = table(
        &client,
        "Import files",
        vec![
            spec("Name", "singleLineText", None),
            spec("Notes", "multilineText", None),
        ],
    )
    .await;
    for f in ["latin1.csv", "bom.csv", "rows.json", "big.csv"] {
        let args = json!({"base_id": DEMO, "table_id": t, "source": format!("file:{f}"), "dry_run": false});
        let done = ok(&h.client, "import_records", args).await;
        assert!(done["not_written"].is_null(), "{f}: {done}");
    }
    let recs = records(&client, &t).await;
    assert_eq!(recs.len(), 1004);
    assert_eq!(by(&recs, "Name", "José")["Notes"], "München");
    assert_eq!(by(&recs, "Name", "Åsa")["Notes"], "ok");
    assert_eq!(by(&recs, "Name", "J1")["Notes"], "n");
    assert_eq!(by(&recs, "Name", "R999")["Notes"], "line 999, with comma");
    let outside = err(
        &h.client,
        "import_records",
        json!({"base_id": DEMO, "table_id": t, "source": "file:../x.csv"}),
    )
    .await;
    assert!(!outside.is_empty());
}
