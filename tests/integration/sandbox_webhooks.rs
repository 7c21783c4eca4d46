//! The sandbox's webhooks API over loopback HTTP: create, list, refresh, delete, payloads in
//! Airtable's v0 shape for its own record writes, cursors, filters, limits and expiry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::sandbox_support;

use std::time::Duration;

use reqwest::StatusCode;
use sandbox_support::{DEMO, Sb, err_type};
use serde_json::{Value, json};

const DAY: Duration = Duration::from_secs(86_400);

/// (table ID, field IDs by name) of the demo's Tasks table.
async fn tasks(sb: &Sb) -> (String, std::collections::HashMap<String, String>) {
    let (_, v) = sb.get(&format!("/v0/meta/bases/{DEMO}/tables")).await;
    let t = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Tasks")
        .unwrap()
        .clone();
    let fields = t["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (t["id"].as_str().unwrap().to_owned(), fields)
}

fn hooks() -> String {
    format!("/v0/bases/{DEMO}/webhooks")
}

async fn create(sb: &Sb, filters: Value, previous: bool) -> (StatusCode, Value) {
    sb.post(
        &hooks(),
        json!({"specification": {"options": {
            "filters": filters,
            "includes": {"includePreviousCellValues": previous}
        }}}),
    )
    .await
}

async fn payloads(sb: &Sb, id: &str, q: &str) -> Value {
    let (s, v) = sb.get(&format!("{}/{id}/payloads{q}", hooks())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn writes_produce_v0_payloads_with_cursors() {
    let sb = Sb::demo().await;
    let (table, f) = tasks(&sb).await;
    let (s, created) = create(
        &sb,
        json!({"dataTypes": ["tableData"], "recordChangeScope": table}),
        true,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ach") && id.len() == 17, "{id}");
    assert!(created["macSecretBase64"].as_str().unwrap().len() >= 40);
    assert!(created["expirationTime"].as_str().unwrap().ends_with('Z'));

    let (_, l) = sb.get(&hooks()).await;
    assert_eq!(l["webhooks"][0]["id"], id.as_str());
    assert_eq!(l["webhooks"][0]["cursorForNextPayload"], 1);
    assert_eq!(l["webhooks"][0]["isHookEnabled"], true);
    assert_eq!(l["webhooks"][0]["areNotificationsEnabled"], false);

    // Create, update, delete: one payload each.
    let (_, r) = sb
        .post(
            &format!("/v0/{DEMO}/Tasks"),
            json!({"fields": {"Name": "Watch me", "Status": "Todo"}}),
        )
        .await;
    let rec = r["id"].as_str().unwrap().to_owned();
    sb.patch(
        &format!("/v0/{DEMO}/Tasks/{rec}"),
        json!({"fields": {"Status": "Done"}}),
    )
    .await;
    sb.delete(&format!("/v0/{DEMO}/Tasks/{rec}")).await;
    // A write to another table is out of scope.
    sb.post(
        &format!("/v0/{DEMO}/People"),
        json!({"fields": {"Name": "Zed"}}),
    )
    .await;

    let v = payloads(&sb, &id, "").await;
    assert_eq!(v["cursor"], 4);
    assert_eq!(v["mightHaveMore"], false);
    let p = v["payloads"].as_array().unwrap();
    assert_eq!(p.len(), 3);
    let first = &p[0];
    assert_eq!(first["payloadFormat"], "v0");
    assert_eq!(first["actionMetadata"]["source"], "publicApi");
    assert_eq!(
        first["actionMetadata"]["sourceMetadata"]["user"]["email"],
        "sandbox@example.com"
    );
    assert!(first["baseTransactionNumber"].as_u64().unwrap() >= 1);
    let c = &first["changedTablesById"][&table]["createdRecordsById"][&rec];
    assert_eq!(c["cellValuesByFieldId"][&f["Name"]], "Watch me");
    assert_eq!(c["cellValuesByFieldId"][&f["Status"]]["name"], "Todo");
    let ch = &p[1]["changedTablesById"][&table]["changedRecordsById"][&rec];
    let cur = ch["current"]["cellValuesByFieldId"].as_object().unwrap();
    assert_eq!(cur.keys().collect::<Vec<_>>(), vec![&f["Status"]]);
    assert_eq!(cur[&f["Status"]]["name"], "Done");
    assert_eq!(cur[&f["Status"]]["color"], "greenLight2");
    assert!(cur[&f["Status"]]["id"].as_str().unwrap().starts_with("sel"));
    assert_eq!(
        ch["previous"]["cellValuesByFieldId"][&f["Status"]]["name"],
        "Todo"
    );
    assert_eq!(
        p[2]["changedTablesById"][&table]["destroyedRecordIds"],
        json!([rec])
    );
    // Cursors: resume after the first, pages of one, an empty page keeps the cursor.
    let v = payloads(&sb, &id, "?cursor=2&limit=1").await;
    assert_eq!(v["payloads"].as_array().unwrap().len(), 1);
    assert_eq!(
        (v["cursor"].clone(), v["mightHaveMore"].clone()),
        (json!(3), json!(true))
    );
    let v = payloads(&sb, &id, "?cursor=4").await;
    assert_eq!(
        (v["payloads"].clone(), v["cursor"].clone()),
        (json!([]), json!(4))
    );
    let (s, e) = sb.get(&format!("{}/{id}/payloads?limit=51", hooks())).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

    // Delete; then it is gone.
    let (s, _) = sb.delete(&format!("{}/{id}", hooks())).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = sb.get(&format!("{}/{id}/payloads", hooks())).await;
    assert_eq!(
        (s, e),
        (StatusCode::NOT_FOUND, json!({"error": "NOT_FOUND"}))
    );
}

#[tokio::test]
async fn field_filters_specs_and_limits() {
    let sb = Sb::demo().await;
    let (table, f) = tasks(&sb).await;
    let (_, h) = create(
        &sb,
        json!({"dataTypes": ["tableData"], "recordChangeScope": table, "watchDataInFieldIds": [f["Status"]]}),
        false,
    )
    .await;
    let id = h["id"].as_str().unwrap().to_owned();
    let (_, all) = sb.get(&format!("/v0/{DEMO}/Tasks?maxRecords=1")).await;
    let rec = all["records"][0]["id"].as_str().unwrap().to_owned();
    // A change of an unwatched field makes no payload; a watched one does, without previous.
    sb.patch(
        &format!("/v0/{DEMO}/Tasks/{rec}"),
        json!({"fields": {"Notes": "not watched"}}),
    )
    .await;
    sb.patch(
        &format!("/v0/{DEMO}/Tasks/{rec}"),
        json!({"fields": {"Status": "Blocked", "Notes": "both"}}),
    )
    .await;
    let v = payloads(&sb, &id, "").await;
    let p = v["payloads"].as_array().unwrap();
    assert_eq!(p.len(), 1, "{v}");
    let ch = &p[0]["changedTablesById"][&table]["changedRecordsById"][&rec];
    let cur = ch["current"]["cellValuesByFieldId"].as_object().unwrap();
    assert_eq!(cur.keys().collect::<Vec<_>>(), vec![&f["Status"]]);
    assert!(ch.get("previous").is_none());

    // Bad specifications, in Airtable's error shape.
    let (s, e) = sb.post(&hooks(), json!({"notificationUrl": null})).await;
    assert_eq!(
        (s, err_type(&e).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_REQUEST_UNKNOWN")
    );
    let (s, e) = create(&sb, json!({"dataTypes": []}), false).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, e) = create(
        &sb,
        json!({"dataTypes": ["tableData"], "recordChangeScope": "tblNope0000000000"}),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, e) = create(
        &sb,
        json!({"dataTypes": ["tableData"], "watchDataInFieldIds": ["fldNope0000000000"]}),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // Ten webhooks a base.
    for _ in 0..9 {
        let (s, _) = create(&sb, json!({"dataTypes": ["tableData"]}), false).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, e) = create(&sb, json!({"dataTypes": ["tableData"]}), false).await;
    assert_eq!(
        (s, err_type(&e).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "TOO_MANY_WEBHOOKS")
    );
    // Unknown webhooks.
    let (s, _) = sb
        .post(&format!("{}/achNope0000000000/refresh", hooks()), json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = sb.delete(&format!("{}/achNope0000000000", hooks())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn webhooks_expire_unless_refreshed() {
    let sb = Sb::demo().await;
    let (table, _) = tasks(&sb).await;
    let spec = json!({"dataTypes": ["tableData"], "recordChangeScope": table});
    let (_, a) = create(&sb, spec.clone(), false).await;
    let (_, b) = create(&sb, spec, false).await;
    let (a, b) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    );
    let exp_before = {
        let (_, l) = sb.get(&hooks()).await;
        l["webhooks"][0]["expirationTime"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    sb.handle.state().advance_clock(6 * DAY);
    let (s, r) = sb
        .post(&format!("{}/{a}/refresh", hooks()), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(r["expirationTime"].as_str().unwrap() > exp_before.as_str());
    sb.handle.state().advance_clock(2 * DAY);
    // b expired (8 days), a lives (2 of 7 days since its refresh).
    let (_, l) = sb.get(&hooks()).await;
    let enabled = |id: &str| {
        l["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == id)
            .unwrap()["isHookEnabled"]
            .clone()
    };
    assert_eq!((enabled(&a), enabled(&b)), (json!(true), json!(false)));
    sb.post(
        &format!("/v0/{DEMO}/Tasks"),
        json!({"fields": {"Name": "late"}}),
    )
    .await;
    assert_eq!(
        payloads(&sb, &a, "").await["payloads"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(payloads(&sb, &b, "").await["payloads"], json!([]));
    let (s, e) = sb
        .post(&format!("{}/{b}/refresh", hooks()), json!({}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // A week after expiry the webhook is gone.
    sb.handle.state().advance_clock(7 * DAY);
    let (s, _) = sb.get(&format!("{}/{b}/payloads", hooks())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
