//! Records semantics of the sandbox: upsert, comments, computed fields, inverse links, and a
//! property test that random records survive create then list unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::sandbox_support;

use proptest::prelude::*;
use reqwest::StatusCode;
use sandbox_support::{DEMO, Sb, err_type};
use serde_json::{Map, Value, json};

fn rec_by_name<'a>(recs: &'a [Value], name: &str) -> &'a Value {
    recs.iter().find(|r| r["fields"]["Name"] == name).unwrap()
}

#[tokio::test]
async fn upsert_creates_updates_and_refuses_ambiguity() {
    let sb = Sb::demo().await;
    let t = format!("/v0/{DEMO}/People");
    let body = json!({
        "performUpsert": {"fieldsToMergeOn": ["Email"]},
        "records": [
            {"fields": {"Email": "ada.lovelace@example.com", "Role": "Designer"}},
            {"fields": {"Name": "New Person", "Email": "new@example.com"}},
        ]
    });
    let (s, v) = sb.patch(&t, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["createdRecords"].as_array().unwrap().len(), 1);
    assert_eq!(v["updatedRecords"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["records"][0]["fields"]["Name"], "Ada Lovelace",
        "PATCH keeps other fields"
    );
    assert_eq!(v["records"][0]["fields"]["Role"], "Designer");
    assert_eq!(v["records"][1]["id"], v["createdRecords"][0]);
    assert_eq!(v["records"][0]["id"], v["updatedRecords"][0]);

    // PUT upsert clears what is not sent.
    let (s, v) = sb
        .put(&t, json!({"performUpsert": {"fieldsToMergeOn": ["Email"]}, "records": [{"fields": {"Email": "new@example.com"}}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["records"][0]["fields"].get("Name").is_none());

    // Two records share a value: ambiguous.
    let (s, _) = sb.post(&t, json!({"records": [{"fields": {"Name": "Twin", "Email": "t@example.com"}}, {"fields": {"Name": "Twin", "Email": "t2@example.com"}}]})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = sb
        .patch(&t, json!({"performUpsert": {"fieldsToMergeOn": ["Name"]}, "records": [{"fields": {"Name": "Twin", "Role": "QA"}}]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err_type(&v), "INVALID_RECORDS");
    // Computed merge fields are refused; unknown ones too.
    let (s, _) = sb
        .patch(&t, json!({"performUpsert": {"fieldsToMergeOn": ["Task count"]}, "records": [{"fields": {"Name": "x"}}]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = sb
        .patch(&t, json!({"performUpsert": {"fieldsToMergeOn": ["Nope"]}, "records": [{"fields": {"Name": "x"}}]}))
        .await;
    assert_eq!(
        (s, err_type(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_FIELD_NAME".into()
        )
    );
    // With an id, a record is a plain update; an unknown id creates nothing.
    let (s, v) = sb
        .patch(&t, json!({"performUpsert": {"fieldsToMergeOn": ["Email"]}, "records": [{"id": "recAAAAAAAAAAAAAA", "fields": {"Email": "z@example.com"}}]}))
        .await;
    assert_eq!(
        (s, err_type(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "ROW_DOES_NOT_EXIST".into()
        )
    );
}

#[tokio::test]
async fn comments_lifecycle_and_comment_count() {
    let sb = Sb::demo().await;
    let people = sb.all(DEMO, "People", "").await;
    let id = people[0]["id"].as_str().unwrap();
    let base = format!("/v0/{DEMO}/People/{id}/comments");
    let (s, v) = sb.get(&base).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"comments": [], "offset": null}))
    );
    let mut ids = Vec::new();
    for i in 0..3 {
        let (s, v) = sb
            .post(
                &base,
                json!({"text": format!("note {i} @[usrSandboxUser001]")}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["id"].as_str().unwrap().starts_with("com"));
        assert_eq!(v["author"]["id"], "usrSandboxUser001");
        assert!(v["lastUpdatedTime"].is_null());
        assert_eq!(v["mentioned"]["usrSandboxUser001"]["type"], "user");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let (_, v) = sb.get(&format!("{base}?pageSize=2")).await;
    let texts: Vec<&str> = v["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert!(texts[0].starts_with("note 2"), "newest first: {texts:?}");
    assert_eq!(texts.len(), 2);
    let off = v["offset"].as_str().unwrap().to_string();
    let (_, v) = sb.get(&format!("{base}?pageSize=2&offset={off}")).await;
    assert_eq!(v["comments"].as_array().unwrap().len(), 1);
    assert!(v["offset"].is_null());

    let (s, v) = sb
        .patch(&format!("{base}/{}", ids[0]), json!({"text": "edited"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["text"], "edited");
    assert!(v["lastUpdatedTime"].is_string());
    let (s, v) = sb.delete(&format!("{base}/{}", ids[1])).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"id": ids[1], "deleted": true}))
    );
    let (s, _) = sb.delete(&format!("{base}/{}", ids[1])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = sb.post(&base, json!({"text": ""})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = sb
        .get(&format!("/v0/{DEMO}/People/recAAAAAAAAAAAAAA/comments"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let recs = sb
        .all(DEMO, "People", "recordMetadata%5B%5D=commentCount")
        .await;
    assert_eq!(recs[0]["commentCount"], 2);
    assert_eq!(recs[1]["commentCount"], 0);
    let recs = sb.all(DEMO, "People", "").await;
    assert!(recs[0].get("commentCount").is_none());
}

#[tokio::test]
async fn links_lookups_counts_and_inverse_links_stay_in_step() {
    let sb = Sb::demo().await;
    let projects = sb.all(DEMO, "Projects", "").await;
    let p = rec_by_name(&projects, "Website redesign");
    let pid = p["id"].as_str().unwrap().to_string();
    let n_tasks = p["fields"]["Tasks"].as_array().unwrap().len();
    assert_eq!(n_tasks, 14);
    assert_eq!(p["fields"]["Task count"], 14);
    assert_eq!(
        p["fields"]["Owner email"],
        json!(["ada.lovelace@example.com"])
    );

    // A new task linked to the project shows up in the inverse link and the count.
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/Tasks"),
            json!({"fields": {"Name": "Extra", "Project": [pid], "Status": "Todo"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["fields"]["Project status"],
        json!([p["fields"]["Status"]])
    );
    let tid = v["id"].as_str().unwrap().to_string();
    let (_, p2) = sb.get(&format!("/v0/{DEMO}/Projects/{pid}")).await;
    assert_eq!(p2["fields"]["Task count"], 15);
    assert!(
        p2["fields"]["Tasks"]
            .as_array()
            .unwrap()
            .contains(&json!(tid))
    );

    // Unlinking from the task side removes it from the project.
    let (s, _) = sb
        .patch(
            &format!("/v0/{DEMO}/Tasks/{tid}"),
            json!({"fields": {"Project": []}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, p3) = sb.get(&format!("/v0/{DEMO}/Projects/{pid}")).await;
    assert_eq!(p3["fields"]["Task count"], 14);

    // Linking from the project side updates the task.
    let mut tasks: Vec<Value> = p3["fields"]["Tasks"].as_array().unwrap().clone();
    tasks.push(json!(tid));
    let (s, v) = sb
        .patch(
            &format!("/v0/{DEMO}/Projects/{pid}"),
            json!({"fields": {"Tasks": tasks}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, t) = sb.get(&format!("/v0/{DEMO}/Tasks/{tid}")).await;
    assert_eq!(t["fields"]["Project"], json!([pid]));

    // Deleting the task removes it from the project's links.
    let (s, _) = sb.delete(&format!("/v0/{DEMO}/Tasks/{tid}")).await;
    assert_eq!(s, StatusCode::OK);
    let (_, p4) = sb.get(&format!("/v0/{DEMO}/Projects/{pid}")).await;
    assert!(
        !p4["fields"]["Tasks"]
            .as_array()
            .unwrap()
            .contains(&json!(tid))
    );

    // Links to records that do not exist are refused.
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/Tasks"),
            json!({"fields": {"Project": ["recAAAAAAAAAAAAAA"]}}),
        )
        .await;
    assert_eq!(
        (s, err_type(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "ROW_DOES_NOT_EXIST".into()
        )
    );

    // createdTime / autoNumber / attachments metadata.
    let all = sb.all(DEMO, "Tasks", "maxRecords=10").await;
    let with_att = all
        .iter()
        .find(|r| r["fields"].get("Attachments").is_some())
        .unwrap();
    let att = &with_att["fields"]["Attachments"][0];
    assert!(att["id"].as_str().unwrap().starts_with("att"));
    for k in ["url", "filename", "size", "type"] {
        assert!(att.get(k).is_some(), "{k}");
    }
    assert_eq!(all[0]["fields"]["Task ID"], 1);
    assert_eq!(all[0]["fields"]["Created"], all[0]["createdTime"]);
}

#[tokio::test]
async fn attachments_keep_existing_by_id_and_add_by_url() {
    let sb = Sb::demo().await;
    let (s, v) = sb
        .post(&format!("/v0/{DEMO}/Tasks"), json!({"fields": {"Name": "A", "Attachments": [{"url": "https://example.com/a/b/report.pdf"}]}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let att = v["fields"]["Attachments"][0].clone();
    assert_eq!(att["filename"], "report.pdf");
    assert_eq!(att["type"], "application/pdf");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = sb
        .patch(
            &format!("/v0/{DEMO}/Tasks/{id}"),
            json!({"fields": {"Attachments": [{"id": att["id"]}, {"url": "https://example.com/x.png", "filename": "pic.png"}]}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let arr = v["fields"]["Attachments"].as_array().unwrap();
    assert_eq!(arr[0], att);
    assert_eq!(arr[1]["filename"], "pic.png");
    assert_eq!(arr[1]["type"], "image/png");
}

fn field_value() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        "[ -~]{1,30}".prop_map(|s| ("Name".to_string(), json!(s))),
        "[a-zA-Z0-9 \\n]{1,40}".prop_map(|s| ("Notes".to_string(), json!(s))),
        (-1_000_000i64..1_000_000).prop_map(|n| ("Estimate (hours)".to_string(), json!(n))),
        (-1.0e6f64..1.0e6).prop_map(|f| ("Estimate (hours)".to_string(), json!(f))),
        Just(("Done".to_string(), json!(true))),
        prop::sample::select(vec!["Todo", "In progress", "Blocked", "Done"])
            .prop_map(|s| ("Status".to_string(), json!(s))),
        prop::sample::select(vec!["High", "Medium", "Low"])
            .prop_map(|s| ("Priority".to_string(), json!(s))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    #[test]
    fn random_records_survive_create_then_list(batch in prop::collection::vec(prop::collection::vec(field_value(), 1..6), 1..10)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let sb = Sb::demo().await;
            let records: Vec<Value> = batch
                .iter()
                .map(|fs| {
                    let m: Map<String, Value> = fs.iter().cloned().collect();
                    json!({"fields": m})
                })
                .collect();
            let (s, v) = sb.post(&format!("/v0/{DEMO}/Tasks"), json!({"records": records})).await;
            prop_assert_eq!(s, StatusCode::OK, "{}", v);
            let created: Vec<String> = v["records"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
            let listed = sb.all(DEMO, "Tasks", "fields[]=Name&fields[]=Notes&fields[]=Estimate+(hours)&fields[]=Done&fields[]=Status&fields[]=Priority").await;
            for (id, input) in created.iter().zip(&records) {
                let got = listed.iter().find(|r| r["id"] == id.as_str()).unwrap();
                prop_assert_eq!(&got["fields"], &input["fields"]);
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn formulas_rollups_and_filter_by_formula() {
    let sb = Sb::demo().await;
    let tasks = sb.all(DEMO, "Tasks", "").await;
    for t in &tasks {
        let h = t["fields"]["Estimate (hours)"].as_f64().unwrap();
        assert_eq!(
            t["fields"]["Estimate (minutes)"].as_f64().unwrap(),
            h * 60.0
        );
    }
    let projects = sb.all(DEMO, "Projects", "").await;
    let p = rec_by_name(&projects, "Website redesign");
    let sum: f64 = tasks
        .iter()
        .filter(|t| t["fields"]["Project"][0] == p["id"])
        .map(|t| t["fields"]["Estimate (hours)"].as_f64().unwrap())
        .sum();
    assert!((p["fields"]["Total estimate (hours)"].as_f64().unwrap() - sum).abs() < 1e-9);

    // filterByFormula: text equality, checkbox, links by primary value, RECORD_ID().
    let open = sb
        .all(DEMO, "Tasks", "filterByFormula=NOT(%7BDone%7D)")
        .await;
    let expected = tasks
        .iter()
        .filter(|t| t["fields"].get("Done").is_none())
        .count();
    assert_eq!(open.len(), expected);
    assert!(expected > 0 && expected < 168);
    let in_project = sb
        .all(
            DEMO,
            "Tasks",
            "filterByFormula=%7BProject%7D+%3D+%27Website+redesign%27",
        )
        .await;
    assert_eq!(in_project.len(), 14);
    let id = tasks[5]["id"].as_str().unwrap();
    let one = sb
        .all(
            DEMO,
            "Tasks",
            &format!("filterByFormula=RECORD_ID()%3D%27{id}%27"),
        )
        .await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["id"], id);
    // A field ID works in braces too.
    let (_, schema) = sb.get(&format!("/v0/meta/bases/{DEMO}/tables")).await;
    let done_id = schema["tables"][2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Done")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_id = sb
        .all(
            DEMO,
            "Tasks",
            &format!("filterByFormula=NOT(%7B{done_id}%7D)"),
        )
        .await;
    assert_eq!(by_id.len(), expected);
    // The formula field's schema shows field IDs.
    let formula = schema["tables"][2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Estimate (minutes)")
        .unwrap()
        .clone();
    assert!(
        formula["options"]["formula"]
            .as_str()
            .unwrap()
            .starts_with("{fld"),
        "{formula}"
    );
    // Combined with a view (its own filter and sort), and via POST listRecords.
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/Tasks/listRecords"),
            json!({"view": "Open tasks", "filterByFormula": "{Priority} = 'High'", "pageSize": 100}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let got = v["records"].as_array().unwrap();
    let want = tasks
        .iter()
        .filter(|t| t["fields"].get("Done").is_none() && t["fields"]["Priority"] == "High")
        .count();
    assert_eq!(got.len(), want);
    let due: Vec<&str> = got
        .iter()
        .map(|r| r["fields"]["Due date"].as_str().unwrap())
        .collect();
    assert!(due.windows(2).all(|w| w[0] <= w[1]), "view order");

    // Errors carry Airtable's messages.
    let (s, v) = sb
        .get(&format!(
            "/v0/{DEMO}/Tasks?filterByFormula=%7BNope%7D+%3D+1"
        ))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v,
        json!({"error": {"type": "INVALID_FILTER_BY_FORMULA", "message": "The formula for filtering records is invalid: Unknown field names: nope"}})
    );
    let (s, v) = sb
        .get(&format!("/v0/{DEMO}/Tasks?filterByFormula=AND("))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["error"]["message"],
        "The formula for filtering records is invalid: Invalid formula. Please check your formula text."
    );
    let (s, v) = sb
        .get(&format!("/v0/{DEMO}/Tasks?filterByFormula=NOSUCH(1)"))
        .await;
    assert_eq!(
        (s, err_type(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FILTER_BY_FORMULA".into()
        )
    );
}

#[tokio::test]
async fn computed_fields_created_through_the_api() {
    let sb = Sb::demo().await;
    let (_, schema) = sb.get(&format!("/v0/meta/bases/{DEMO}/tables")).await;
    let projects_id = schema["tables"][1]["id"].as_str().unwrap().to_string();
    let meta = format!("/v0/meta/bases/{DEMO}/tables/{projects_id}/fields");
    for (name, ty, options) in [
        (
            "Max estimate",
            "rollup",
            json!({"recordLinkFieldId": "Tasks", "fieldIdInLinkedTable": "Estimate (hours)", "formula": "MAX(values)"}),
        ),
        (
            "Task names",
            "rollup",
            json!({"recordLinkFieldId": "Tasks", "fieldIdInLinkedTable": "Name", "formula": "ARRAYJOIN(values, '; ')"}),
        ),
        (
            "Open count",
            "rollup",
            json!({"recordLinkFieldId": "Tasks", "fieldIdInLinkedTable": "Done", "formula": "COUNTA(values)"}),
        ),
        (
            "Avg",
            "rollup",
            json!({"recordLinkFieldId": "Tasks", "fieldIdInLinkedTable": "Estimate (hours)", "formula": "AVERAGE(values)"}),
        ),
        (
            "Label",
            "formula",
            json!({"formula": "UPPER({Name}) & ' / ' & {Task count}"}),
        ),
    ] {
        let (s, v) = sb
            .post(&meta, json!({"name": name, "type": ty, "options": options}))
            .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
    }
    let (s, v) = sb
        .post(
            &meta,
            json!({"name": "Broken", "type": "formula", "options": {"formula": "{Nope} + 1"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("Nope"),
        "{v}"
    );

    let projects = sb.all(DEMO, "Projects", "").await;
    let tasks = sb.all(DEMO, "Tasks", "").await;
    let p = rec_by_name(&projects, "Mobile app v2");
    let mine: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["fields"]["Project"][0] == p["id"])
        .collect();
    let max = mine
        .iter()
        .map(|t| t["fields"]["Estimate (hours)"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(p["fields"]["Max estimate"].as_f64().unwrap(), max);
    let avg = mine
        .iter()
        .map(|t| t["fields"]["Estimate (hours)"].as_f64().unwrap())
        .sum::<f64>()
        / mine.len() as f64;
    assert!((p["fields"]["Avg"].as_f64().unwrap() - avg).abs() < 1e-9);
    let names = p["fields"]["Task names"].as_str().unwrap();
    assert_eq!(names.split("; ").count(), 14);
    assert_eq!(p["fields"]["Label"], "MOBILE APP V2 / 14");
    assert!(p["fields"]["Open count"].as_f64().is_some());
}

/// pyairtable posts creates to `/v0/{base}/{table}/`; Airtable accepts trailing slashes on
/// every route, and so does the sandbox.
#[tokio::test]
async fn trailing_slashes_are_accepted_on_every_route() {
    let sb = Sb::demo().await;
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/Tasks/"),
            json!({"records": [{"fields": {"Name": "slash"}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["records"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = sb.get(&format!("/v0/{DEMO}/Tasks/{id}/")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["fields"]["Name"], "slash");
    let (s, v) = sb
        .patch(
            &format!("/v0/{DEMO}/Tasks/{id}//"),
            json!({"fields": {"Name": "slash2"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = sb.get(&format!("/v0/{DEMO}/Tasks/?maxRecords=1")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    for path in ["/v0/meta/bases/", "/v0/meta/whoami/"] {
        let (s, v) = sb.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
    let (s, _) = sb.delete(&format!("/v0/{DEMO}/Tasks/{id}/")).await;
    assert_eq!(s, StatusCode::OK);
    // Unknown routes are still 404.
    let (s, _) = sb.get("/v0/meta/nothing/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
