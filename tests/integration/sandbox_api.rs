//! The sandbox's Web API over loopback HTTP: answers and error shapes of every endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::sandbox_support;

use reqwest::StatusCode;
use sandbox_support::{DEMO, Sb, err_type};
use serde_json::{Value, json};

fn is_rec_id(s: &str) -> bool {
    s.len() == 17 && s.starts_with("rec") && s[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[tokio::test]
async fn auth_and_unknown_routes() {
    let sb = Sb::demo().await;
    let r = sb.http.get(sb.url("/v0/meta/whoami")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}})
    );
    let r = sb
        .http
        .get(sb.url("/v0/meta/whoami"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (s, v) = sb.get("/v0/meta/whoami").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["id"], "usrSandboxUser001");

    let (s, v) = sb.get("/v1/nothing/here").await;
    assert_eq!(
        (s, v),
        (StatusCode::NOT_FOUND, json!({"error": "NOT_FOUND"}))
    );
    // A method the route does not have is an unknown route too.
    let (s, v) = sb
        .req(reqwest::Method::DELETE, "/v0/meta/whoami", None)
        .await;
    assert_eq!(
        (s, v),
        (StatusCode::NOT_FOUND, json!({"error": "NOT_FOUND"}))
    );
}

#[tokio::test]
async fn bases_and_schema() {
    let sb = Sb::demo().await;
    let (s, v) = sb.get("/v0/meta/bases").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["bases"][0]["id"], DEMO);
    assert_eq!(v["bases"][0]["permissionLevel"], "create");
    assert!(v.get("offset").is_none());

    let (s, v) = sb.get(&format!("/v0/meta/bases/{DEMO}/tables")).await;
    assert_eq!(s, StatusCode::OK);
    let tables = v["tables"].as_array().unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["People", "Projects", "Tasks"]);
    let tasks = &tables[2];
    assert_eq!(tasks["primaryFieldId"], tasks["fields"][0]["id"]);
    let types: Vec<&str> = tasks["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    for t in [
        "singleSelect",
        "date",
        "checkbox",
        "multipleRecordLinks",
        "multipleLookupValues",
        "formula",
        "autoNumber",
        "createdTime",
        "multipleAttachments",
    ] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    assert!(tasks["views"][0].get("visibleFieldIds").is_none());
    // Inverse links exist in the linked tables.
    let projects = &tables[1];
    let inv = projects["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Tasks")
        .unwrap();
    assert_eq!(inv["type"], "multipleRecordLinks");
    assert_eq!(inv["options"]["linkedTableId"], tasks["id"]);

    for q in ["include=visibleFieldIds", "include%5B%5D=visibleFieldIds"] {
        let (_, v) = sb.get(&format!("/v0/meta/bases/{DEMO}/tables?{q}")).await;
        let open = v["tables"][2]["views"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "Open tasks")
            .unwrap()
            .clone();
        let n = open["visibleFieldIds"].as_array().unwrap().len();
        assert_eq!(
            n,
            v["tables"][2]["fields"].as_array().unwrap().len() - 2,
            "two hidden"
        );
    }

    let (s, v) = sb.get("/v0/meta/bases/appAAAAAAAAAAAAAA/tables").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(err_type(&v), "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND");
}

#[tokio::test]
async fn list_paging_projection_and_sort() {
    let sb = Sb::demo().await;
    let (s, v) = sb.get(&format!("/v0/{DEMO}/Tasks")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["records"].as_array().unwrap().len(), 100);
    let off = v["offset"].as_str().unwrap();
    let (itr, rec) = off.split_once('/').unwrap();
    assert!(itr.starts_with("itr") && itr.len() == 17, "{off}");
    assert!(is_rec_id(rec));
    let all = sb.all(DEMO, "Tasks", "").await;
    assert_eq!(all.len(), 168);
    let r0 = &all[0];
    assert!(is_rec_id(r0["id"].as_str().unwrap()));
    let ct = r0["createdTime"].as_str().unwrap();
    assert!(ct.ends_with('Z') && ct.len() == 24, "{ct}");

    // pageSize=10&maxRecords=25 gives 10, 10, 5.
    let mut sizes = Vec::new();
    let mut offset = String::new();
    loop {
        let (_, v) = sb
            .get(&format!(
                "/v0/{DEMO}/Tasks?pageSize=10&maxRecords=25&offset={offset}"
            ))
            .await;
        sizes.push(v["records"].as_array().unwrap().len());
        match v["offset"].as_str() {
            Some(o) => offset = o.to_string(),
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 5]);

    // fields[] (encoded and with + for spaces) and sort[0][field] desc.
    let (s, v) = sb
        .get(&format!(
            "/v0/{DEMO}/Tasks?fields%5B%5D=Name&fields%5B%5D=Estimate+%28hours%29&sort%5B0%5D%5Bfield%5D=Estimate+(hours)&sort%5B0%5D%5Bdirection%5D=desc&pageSize=100"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let recs = v["records"].as_array().unwrap();
    let est: Vec<f64> = recs
        .iter()
        .map(|r| r["fields"]["Estimate (hours)"].as_f64().unwrap())
        .collect();
    assert!(est.windows(2).all(|w| w[0] >= w[1]), "{est:?}");
    for r in recs {
        let keys: Vec<&String> = r["fields"].as_object().unwrap().keys().collect();
        assert!(
            keys.iter()
                .all(|k| *k == "Name" || *k == "Estimate (hours)"),
            "{keys:?}"
        );
    }

    // returnFieldsByFieldId.
    let (_, v) = sb
        .get(&format!(
            "/v0/{DEMO}/Tasks?maxRecords=1&returnFieldsByFieldId=true"
        ))
        .await;
    let k = v["records"][0]["fields"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert!(k.starts_with("fld"), "{k}");

    // POST listRecords takes the same options as JSON.
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/Tasks/listRecords"),
            json!({"pageSize": 5, "fields": ["Name"], "sort": [{"field": "Name"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 5);
    assert!(v["offset"].is_string());
    let (_, v2) = sb
        .post(
            &format!("/v0/{DEMO}/Tasks/listRecords"),
            json!({"pageSize": 5, "fields": ["Name"], "sort": [{"field": "Name"}], "offset": v["offset"]}),
        )
        .await;
    assert_ne!(v2["records"][0]["id"], v["records"][0]["id"]);

    // Errors.
    let (s, v) = sb.get(&format!("/v0/{DEMO}/Tasks?offset=bogus")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err_type(&v), "INVALID_OFFSET_VALUE");
    assert_eq!(
        v["error"]["message"],
        "The value of offset bogus is invalid"
    );
    let (s, v) = sb.get(&format!("/v0/{DEMO}/Tasks?fields[]=Nope")).await;
    assert_eq!(
        (s, err_type(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_FIELD_NAME".into()
        )
    );
    let (s, v) = sb.get(&format!("/v0/{DEMO}/Tasks?pageSize=101")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = sb.get(&format!("/v0/{DEMO}/Nope")).await;
    assert_eq!(
        (s, err_type(&v)),
        (
            StatusCode::FORBIDDEN,
            "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND".into()
        )
    );
    let (s, v) = sb.get("/v0/appAAAAAAAAAAAAAA/Tasks").await;
    assert_eq!(
        (s, v),
        (StatusCode::NOT_FOUND, json!({"error": "NOT_FOUND"}))
    );
    let (s, v) = sb.get(&format!("/v0/{DEMO}/Tasks?view=Nope")).await;
    assert_eq!(
        (s, err_type(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "VIEW_NAME_NOT_FOUND".into()
        )
    );
    let (s, v) = sb.get(&format!("/v0/{DEMO}/Tasks?cellFormat=string")).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "timeZone and userLocale are required: {v}"
    );
}

#[tokio::test]
async fn cell_format_string() {
    let sb = Sb::demo().await;
    let (s, v) = sb
        .get(&format!(
            "/v0/{DEMO}/Projects?cellFormat=string&timeZone=America%2FNew_York&userLocale=en-us&maxRecords=1"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = &v["records"][0]["fields"];
    assert_eq!(f["Name"], "Website redesign");
    assert_eq!(f["Budget"], "$5,000");
    assert_eq!(f["Tags"], "Frontend, Backend");
    assert_eq!(f["Owner"], "Ada Lovelace", "links show the primary value");
    assert_eq!(f["Task count"], "14");
    assert_eq!(f["Start date"], "2026-01-05");
    assert!(f.as_object().unwrap().values().all(Value::is_string), "{f}");
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/Tasks/listRecords?timeZone=utc&userLocale=en-gb"),
            json!({"cellFormat": "string", "maxRecords": 1, "fields": ["Done", "Created", "Project"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = &v["records"][0]["fields"];
    assert_eq!(f["Created"], "2026-01-02 12:51", "{f}");
    assert_eq!(f["Done"], "checked");
    assert_eq!(f["Project"], "Website redesign");
    let (s, _) = sb
        .get(&format!(
            "/v0/{DEMO}/Tasks?cellFormat=string&timeZone=Mars%2FBase&userLocale=en"
        ))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn views_order_records() {
    let sb = Sb::demo().await;
    let recs = sb.all(DEMO, "Tasks", "view=By+due+date").await;
    assert_eq!(recs.len(), 168);
    let due: Vec<&str> = recs
        .iter()
        .map(|r| r["fields"]["Due date"].as_str().unwrap())
        .collect();
    assert!(due.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test]
async fn create_get_update_delete() {
    let sb = Sb::demo().await;
    let t = format!("/v0/{DEMO}/Tasks");
    // Single form: bare record.
    let (s, v) = sb
        .post(&t, json!({"fields": {"Name": "Write docs", "Estimate (hours)": 2, "Done": false, "Status": "Todo"}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert!(is_rec_id(&id));
    assert_eq!(v["fields"]["Name"], "Write docs");
    assert!(v["fields"].get("Done").is_none(), "false checkbox omitted");
    assert!(v["fields"]["Task ID"].as_i64().unwrap() > 168);

    // Batch form.
    let recs: Vec<Value> = (0..10)
        .map(|i| json!({"fields": {"Name": format!("T{i}")}}))
        .collect();
    let (s, v) = sb
        .post(&t, json!({"records": recs, "typecast": false}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 10);
    assert_eq!(v["records"][3]["fields"]["Name"], "T3");

    let recs: Vec<Value> = (0..11)
        .map(|i| json!({"fields": {"Name": format!("T{i}")}}))
        .collect();
    let (s, v) = sb.post(&t, json!({"records": recs})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["type"], "INVALID_RECORDS");
    assert_eq!(
        v["error"]["message"],
        "A maximum of 10 records can be created per request but you have provided 11."
    );

    let (s, v) = sb.post(&t, json!({"fields": {"Nope": 1}})).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": {"type": "UNKNOWN_FIELD_NAME", "message": "Unknown field name: \"Nope\""}})
        )
    );
    let (s, v) = sb.post(&t, json!({"fields": {"Task ID": 3}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["type"], "INVALID_VALUE_FOR_COLUMN");
    assert_eq!(
        v["error"]["message"],
        "Field \"Task ID\" cannot accept a value because the field is computed"
    );
    let (s, v) = sb.post(&t, json!({"fields": {"Status": "Someday"}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["type"], "INVALID_MULTIPLE_CHOICE_OPTIONS");
    let (s, v) = sb
        .post(&t, json!({"fields": {"Estimate (hours)": "three"}}))
        .await;
    assert_eq!(
        (s, err_type(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_VALUE_FOR_COLUMN".into()
        )
    );
    let (s, v) = sb.post(&t, json!({"nothing": 1})).await;
    assert_eq!(
        (s, err_type(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_MISSING_FIELDS".into()
        )
    );
    let r = sb
        .http
        .post(sb.url(&t))
        .bearer_auth(sb.handle.token())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Get, by table ID too.
    let (s, v) = sb.get(&format!("{t}/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["fields"]["Name"], "Write docs");
    let (s, v) = sb.get(&format!("{t}/recAAAAAAAAAAAAAA")).await;
    assert_eq!(
        (s, v),
        (StatusCode::NOT_FOUND, json!({"error": "NOT_FOUND"}))
    );

    // PATCH keeps the rest; PUT clears what is not sent.
    let (s, v) = sb
        .patch(&format!("{t}/{id}"), json!({"fields": {"Done": true}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["fields"]["Done"], true);
    assert_eq!(v["fields"]["Name"], "Write docs");
    let (s, v) = sb
        .put(
            &format!("{t}/{id}"),
            json!({"fields": {"Name": "Only name"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["fields"].get("Done").is_none());
    assert!(v["fields"].get("Estimate (hours)").is_none());
    assert_eq!(v["fields"]["Name"], "Only name");
    let (s, v) = sb
        .patch(&format!("{t}/{id}"), json!({"fields": {"Name": null}}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["fields"].get("Name").is_none(), "null clears");
    let (s, _) = sb
        .patch(&format!("{t}/recAAAAAAAAAAAAAA"), json!({"fields": {}}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Batch update, with an unknown ID.
    let (s, v) = sb
        .patch(
            &t,
            json!({"records": [{"id": id, "fields": {"Name": "B"}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["records"][0]["fields"]["Name"], "B");
    let (s, v) = sb
        .patch(&t, json!({"records": [{"id": id, "fields": {"Name": "C"}}, {"id": "recAAAAAAAAAAAAAA", "fields": {}}]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v,
        json!({"error": {"type": "ROW_DOES_NOT_EXIST", "message": "Record ID recAAAAAAAAAAAAAA does not exist in this table"}})
    );
    let (_, v) = sb.get(&format!("{t}/{id}")).await;
    assert_eq!(v["fields"]["Name"], "B", "a failed batch writes nothing");
    let (s, v) = sb
        .patch(&t, json!({"records": [{"fields": {"Name": "C"}}]}))
        .await;
    assert_eq!(
        (s, err_type(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_RECORDS".into())
    );

    // Delete single and batch.
    let (s, v) = sb.delete(&format!("{t}/{id}")).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"deleted": true, "id": id})));
    let (s, _) = sb.get(&format!("{t}/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let ids: Vec<String> = sb
        .all(DEMO, "Tasks", "")
        .await
        .iter()
        .rev()
        .take(3)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let q: Vec<String> = ids.iter().map(|i| format!("records%5B%5D={i}")).collect();
    let (s, v) = sb.delete(&format!("{t}?{}", q.join("&"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 3);
    assert_eq!(v["records"][0], json!({"deleted": true, "id": ids[0]}));
    let many: Vec<String> = (0..11)
        .map(|_| "records[]=recAAAAAAAAAAAAAA".to_string())
        .collect();
    let (s, _) = sb.delete(&format!("{t}?{}", many.join("&"))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn typecast_converts_and_creates_options() {
    let sb = Sb::demo().await;
    let t = format!("/v0/{DEMO}/Tasks");
    let (s, v) = sb
        .post(
            &t,
            json!({"typecast": true, "fields": {
                "Name": 42, "Estimate (hours)": "2.5", "Done": "yes", "Due date": "2026/03/04",
                "Status": "Someday", "Project": "Website redesign, Brand new project", "Assignee": ["Ada Lovelace"]
            }}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = &v["fields"];
    assert_eq!(f["Name"], "42");
    assert_eq!(f["Estimate (hours)"], 2.5);
    assert_eq!(f["Done"], true);
    assert_eq!(f["Due date"], "2026-03-04");
    assert_eq!(f["Status"], "Someday");
    assert_eq!(f["Project"].as_array().unwrap().len(), 2);
    assert_eq!(f["Assignee"].as_array().unwrap().len(), 1);
    let (_, schema) = sb.get(&format!("/v0/meta/bases/{DEMO}/tables")).await;
    let status = schema["tables"][2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Status")
        .unwrap()
        .clone();
    assert!(
        status["options"]["choices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "Someday")
    );
    let projects = sb.all(DEMO, "Projects", "").await;
    assert_eq!(projects.len(), 13, "typecast created the missing project");
    // A write that fails part-way leaves nothing behind (no new option, no record).
    let (s, v) = sb
        .post(
            &t,
            json!({"typecast": true, "fields": {"Status": "Half done", "Estimate (hours)": "abc"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = sb
        .post(&t, json!({"fields": {"Status": "Half done"}}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(err_type(&v), "INVALID_MULTIPLE_CHOICE_OPTIONS");
    // Without typecast a link must be record IDs.
    let (s, v) = sb
        .post(&t, json!({"fields": {"Project": ["Website redesign"]}}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["error"]["message"],
        "Value is not an array of record IDs."
    );
}

#[tokio::test]
async fn tables_by_encoded_name_and_schema_writes() {
    let sb = Sb::demo().await;
    let (s, v) = sb
        .post(
            &format!("/v0/meta/bases/{DEMO}/tables"),
            json!({"name": "Q&A / Notes", "description": "odd name", "fields": [
                {"name": "Title", "type": "singleLineText"},
                {"name": "Score", "type": "number", "options": {"precision": 2}},
                {"name": "Kind", "type": "singleSelect", "options": {"choices": [{"name": "a"}]}},
                {"name": "Tasks", "type": "multipleRecordLinks", "options": {"linkedTableId": "tblNOPE"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = sb
        .post(
            &format!("/v0/meta/bases/{DEMO}/tables"),
            json!({"name": "Q&A / Notes", "description": "odd name", "fields": [
                {"name": "Title", "type": "singleLineText"},
                {"name": "Score", "type": "number", "options": {"precision": 2}},
                {"name": "Kind", "type": "singleSelect", "options": {"choices": [{"name": "a"}]}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let tid = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["views"][0]["name"], "Grid view");
    assert!(
        v["fields"][2]["options"]["choices"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("sel")
    );
    let enc = "Q%26A%20%2F%20Notes";
    let (s, v) = sb
        .post(
            &format!("/v0/{DEMO}/{enc}"),
            json!({"fields": {"Title": "x", "Score": 1.25}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = sb.get(&format!("/v0/{DEMO}/{tid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["records"][0]["fields"]["Score"], 1.25);

    let (s, v) = sb
        .patch(
            &format!("/v0/meta/bases/{DEMO}/tables/{tid}"),
            json!({"name": "Notes", "description": "changed"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "Notes");
    let (s, _) = sb
        .patch(&format!("/v0/meta/bases/{DEMO}/tables/{tid}"), json!({}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = sb
        .patch(
            &format!("/v0/meta/bases/{DEMO}/tables/{tid}"),
            json!({"name": "tasks"}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "names are unique case-insensitively: {v}"
    );

    let (s, v) = sb
        .post(
            &format!("/v0/meta/bases/{DEMO}/tables/{tid}/fields"),
            json!({"name": "Seen", "type": "checkbox", "description": "d"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["type"], "checkbox");
    assert_eq!(v["options"]["icon"], "check");
    let fid = v["id"].as_str().unwrap().to_string();
    let (s, _) = sb
        .post(
            &format!("/v0/meta/bases/{DEMO}/tables/{tid}/fields"),
            json!({"name": "seen", "type": "checkbox"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = sb
        .patch(
            &format!("/v0/meta/bases/{DEMO}/tables/{tid}/fields/{fid}"),
            json!({"name": "Seen it"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"id": fid, "name": "Seen it", "type": "checkbox", "description": "d", "options": {"icon": "check", "color": "greenBright"}})
    );

    // Create base.
    let (s, v) = sb
        .post("/v0/meta/bases", json!({"name": "New", "workspaceId": "wspAAAAAAAAAAAAAA", "tables": [{"name": "T", "fields": [{"name": "N", "type": "singleLineText"}]}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("app"));
    let (_, v) = sb.get("/v0/meta/bases").await;
    assert_eq!(v["bases"].as_array().unwrap().len(), 2);
    let (_, v) = sb.get("/v0/meta/bases?pageSize=1").await;
    assert_eq!(v["bases"].as_array().unwrap().len(), 1);
    let off = v["offset"].as_str().unwrap().to_string();
    let (_, v) = sb
        .get(&format!("/v0/meta/bases?pageSize=1&offset={off}"))
        .await;
    assert_eq!(v["bases"][0]["name"], "New");
}
