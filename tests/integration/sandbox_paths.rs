//! Every path form Airtable accepts, on every route of the sandbox: the table as an ID, as a
//! name, as a URL-encoded name with spaces, punctuation and non-ASCII letters, each with and
//! without a trailing slash (another widely used client posts creates to `/v0/{base}/{table}/`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::sandbox_support;

use reqwest::StatusCode;
use sandbox_support::{DEMO, Sb};
use serde_json::{Value, json};

/// Percent-encode a path segment (every byte but RFC 3986's unreserved characters).
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn ok(what: &str, (s, v): (StatusCode, Value)) -> Value {
    assert_eq!(s, StatusCode::OK, "{what}: {v}");
    v
}

/// Create a table named `name` with fields Name and Note; its ID.
async fn table(sb: &Sb, name: &str) -> String {
    let v = ok(
        "create table",
        sb.post(
            &format!("/v0/meta/bases/{DEMO}/tables"),
            json!({"name": name, "fields": [
                {"name": "Name", "type": "singleLineText"},
                {"name": "Note", "type": "multilineText"}
            ]}),
        )
        .await,
    );
    v["id"].as_str().unwrap().to_owned()
}

/// Drive every record, comment and meta route with table reference `t` and suffix `sl`
/// ("" or "/"); `tid` is the table's ID (to check what was written).
async fn every_route(sb: &Sb, t: &str, tid: &str, sl: &str, tag: &str) {
    let b = DEMO;
    // Create: the batch form and the single-record form.
    let v = ok(
        &format!("{tag} create"),
        sb.post(
            &format!("/v0/{b}/{t}{sl}"),
            json!({"records": [{"fields": {"Name": format!("{tag} a")}}, {"fields": {"Name": format!("{tag} b")}}]}),
        )
        .await,
    );
    let a = v["records"][0]["id"].as_str().unwrap().to_owned();
    let bb = v["records"][1]["id"].as_str().unwrap().to_owned();
    let v = ok(
        &format!("{tag} create one"),
        sb.post(
            &format!("/v0/{b}/{t}{sl}"),
            json!({"fields": {"Name": format!("{tag} c")}}),
        )
        .await,
    );
    let c = v["id"].as_str().unwrap().to_owned();

    // Reads: list (GET with a query, POST listRecords) and one record.
    let formula = seg(&format!("FIND(\"{tag}\", {{Name}})"));
    let v = ok(
        &format!("{tag} list"),
        sb.get(&format!("/v0/{b}/{t}{sl}?filterByFormula={formula}"))
            .await,
    );
    assert_eq!(v["records"].as_array().unwrap().len(), 3, "{tag}: {v}");
    let v = ok(
        &format!("{tag} listRecords"),
        sb.post(
            &format!("/v0/{b}/{t}/listRecords{sl}"),
            json!({"filterByFormula": format!("FIND(\"{tag}\", {{Name}})"), "maxRecords": 2}),
        )
        .await,
    );
    assert_eq!(v["records"].as_array().unwrap().len(), 2, "{tag}: {v}");
    let v = ok(
        &format!("{tag} get"),
        sb.get(&format!("/v0/{b}/{t}/{a}{sl}")).await,
    );
    assert_eq!(v["fields"]["Name"], format!("{tag} a"));

    // Updates: one (PATCH, PUT) and many (PATCH, PUT).
    ok(
        &format!("{tag} patch one"),
        sb.patch(
            &format!("/v0/{b}/{t}/{a}{sl}"),
            json!({"fields": {"Note": "patched"}}),
        )
        .await,
    );
    ok(
        &format!("{tag} put one"),
        sb.put(
            &format!("/v0/{b}/{t}/{c}{sl}"),
            json!({"fields": {"Name": format!("{tag} c"), "Note": "put"}}),
        )
        .await,
    );
    ok(
        &format!("{tag} patch many"),
        sb.patch(
            &format!("/v0/{b}/{t}{sl}"),
            json!({"records": [{"id": bb, "fields": {"Note": "many"}}]}),
        )
        .await,
    );
    ok(
        &format!("{tag} put many"),
        sb.put(
            &format!("/v0/{b}/{t}{sl}"),
            json!({"records": [{"id": bb, "fields": {"Name": format!("{tag} b"), "Note": "put many"}}]}),
        )
        .await,
    );
    let v = ok("check", sb.get(&format!("/v0/{b}/{tid}/{a}")).await);
    assert_eq!(v["fields"]["Note"], "patched", "{tag}");
    let v = ok("check", sb.get(&format!("/v0/{b}/{tid}/{bb}")).await);
    assert_eq!(v["fields"]["Note"], "put many", "{tag}");
    let v = ok("check", sb.get(&format!("/v0/{b}/{tid}/{c}")).await);
    assert_eq!(v["fields"]["Note"], "put", "{tag}");

    // Comments: create, list, update, delete.
    let v = ok(
        &format!("{tag} comment"),
        sb.post(
            &format!("/v0/{b}/{t}/{a}/comments{sl}"),
            json!({"text": "hello"}),
        )
        .await,
    );
    let com = v["id"].as_str().unwrap().to_owned();
    let v = ok(
        &format!("{tag} comments"),
        sb.get(&format!("/v0/{b}/{t}/{a}/comments{sl}")).await,
    );
    assert_eq!(v["comments"].as_array().unwrap().len(), 1, "{tag}: {v}");
    ok(
        &format!("{tag} edit comment"),
        sb.patch(
            &format!("/v0/{b}/{t}/{a}/comments/{com}{sl}"),
            json!({"text": "edited"}),
        )
        .await,
    );
    ok(
        &format!("{tag} delete comment"),
        sb.delete(&format!("/v0/{b}/{t}/{a}/comments/{com}{sl}"))
            .await,
    );

    // Deletes: one, and many by records[].
    let v = ok(
        &format!("{tag} delete one"),
        sb.delete(&format!("/v0/{b}/{t}/{a}{sl}")).await,
    );
    assert_eq!(v["deleted"], true);
    let v = ok(
        &format!("{tag} delete many"),
        sb.delete(&format!(
            "/v0/{b}/{t}{sl}?{}={bb}&{}={c}",
            seg("records[]"),
            seg("records[]")
        ))
        .await,
    );
    assert_eq!(v["records"].as_array().unwrap().len(), 2, "{tag}: {v}");
    let v = ok("check", sb.get(&format!("/v0/{b}/{tid}")).await);
    let left: Vec<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["fields"]["Name"].as_str())
        .filter(|n| n.starts_with(tag))
        .collect();
    assert!(left.is_empty(), "{tag}: {left:?}");

    // Schema: read, update the table, create and update a field.
    ok(
        &format!("{tag} schema"),
        sb.get(&format!("/v0/meta/bases/{b}/tables{sl}")).await,
    );
    ok(
        &format!("{tag} update table"),
        sb.patch(
            &format!("/v0/meta/bases/{b}/tables/{t}{sl}"),
            json!({"description": tag}),
        )
        .await,
    );
    let v = ok(
        &format!("{tag} create field"),
        sb.post(
            &format!("/v0/meta/bases/{b}/tables/{t}/fields{sl}"),
            json!({"name": format!("F {tag}"), "type": "number", "options": {"precision": 0}}),
        )
        .await,
    );
    let fid = v["id"].as_str().unwrap().to_owned();
    ok(
        &format!("{tag} update field"),
        sb.patch(
            &format!("/v0/meta/bases/{b}/tables/{t}/fields/{fid}{sl}"),
            json!({"description": tag}),
        )
        .await,
    );
    let v = ok(
        "schema",
        sb.get(&format!("/v0/meta/bases/{b}/tables")).await,
    );
    let t_meta = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == tid)
        .unwrap();
    assert_eq!(t_meta["description"], tag);
    let f = t_meta["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == fid)
        .unwrap();
    assert_eq!(f["description"], tag);
}

#[tokio::test]
async fn every_route_accepts_table_ids_names_encoded_names_and_trailing_slashes() {
    let sb = Sb::demo().await;
    for name in [
        "Plain",
        "Two words & more",
        "C++ notes? #1",
        "Équipe ☕ Ünits / 2026",
    ] {
        let tid = table(&sb, name).await;
        let forms = [(tid.clone(), "id"), (seg(name), "name")];
        for (t, how) in &forms {
            for sl in ["", "/"] {
                let tag = format!("[{name}|{how}|{sl}]");
                every_route(&sb, t, &tid, sl, &tag).await;
            }
        }
    }
    // The demo's own tables by plain name, with the base ID and trailing slash forms.
    let v = ok(
        "demo",
        sb.get(&format!("/v0/{DEMO}/Tasks/?maxRecords=1")).await,
    );
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    for path in ["/v0/meta/bases/", "/v0/meta/whoami/", "/v0/meta/bases"] {
        ok(path, sb.get(path).await);
    }
}

#[tokio::test]
async fn unknown_tables_and_routes_stay_errors_with_or_without_slashes() {
    let sb = Sb::demo().await;
    for sl in ["", "/"] {
        let (s, v) = sb
            .get(&format!("/v0/{DEMO}/{}{sl}", seg("No such table")))
            .await;
        // Airtable's answer for a table that does not exist (or that the token cannot see).
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["error"]["type"], "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND");
        let (s, _) = sb.get(&format!("/v0/meta/nothing{sl}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = sb.get(&format!("/v0/{DEMO}/Tasks/recNOPE/x/y/z{sl}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}
