//! The attachments toolset (upload_attachment, get_attachments) and the sandbox's upload
//! endpoint and signed file URLs, against an in-process sandbox over loopback HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::str::FromStr;
use std::time::Duration;

use airtable_mcp::airtable::{BaseId, Client, ClientConfig, Error, RecordId};
use airtable_mcp::tools::ServerOptions;
use base64::Engine as _;
use mcp_support::*;
use secrecy::SecretString;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every byte value, several times: a few KB of binary.
fn binary() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7 % 256) as u8).collect()
}

fn base() -> BaseId {
    BaseId::from_str(DEMO).unwrap()
}

/// A Tasks record without attachments.
async fn bare_task(client: &Client) -> String {
    let recs = client
        .list_all_records(
            &base(),
            "Tasks",
            airtable_mcp::airtable::ListQuery {
                filter_by_formula: Some("{Attachments} = ''".into()),
                max_records: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    recs[0].id.to_string()
}

fn export_options(dir: &std::path::Path) -> ServerOptions {
    ServerOptions {
        export_dir: Some(dir.canonicalize().unwrap()),
        ..ServerOptions::default()
    }
}

#[tokio::test]
async fn a_binary_file_goes_up_and_comes_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness_with(export_options(dir.path())).await;
    let rec = bare_task(&client_for(&h.sandbox)).await;
    let data = binary();
    let up = ok(
        &h.client,
        "upload_attachment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments",
               "source": {"content_base64": b64(&data), "filename": "blob.bin"}}),
    )
    .await;
    assert_eq!(up["method"], "upload", "{up}");
    assert_eq!(up["attachment_count"], 1, "{up}");
    let att = &up["attachment"];
    assert_eq!(att["filename"], "blob.bin");
    assert_eq!(att["size"], data.len());
    assert_eq!(att["content_type"], "application/octet-stream");
    assert!(att["id"].as_str().unwrap().starts_with("att"), "{att}");
    assert!(up["write_id"].is_string(), "{up}");

    // A second upload appends; a name already taken on disk gets a new one.
    std::fs::write(dir.path().join("a-blob.bin"), b"precious").unwrap();
    ok(
        &h.client,
        "upload_attachment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments",
               "source": {"content_base64": b64(b"hello"), "filename": "hello.txt"}}),
    )
    .await;
    let got = ok(
        &h.client,
        "get_attachments",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "save_prefix": "a-"}),
    )
    .await;
    let atts = got["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2, "{got}");
    assert_eq!(got["saved"], 2, "{got}");
    assert_eq!(atts[0]["filename"], "blob.bin");
    assert_eq!(atts[1]["content_type"], "text/plain");
    let url = atts[0]["url"].as_str().unwrap();
    assert!(
        url.starts_with(h.sandbox.addr().as_str()) && url.contains("sig="),
        "{url}"
    );
    let saved = atts[0]["saved_path"].as_str().unwrap();
    assert!(saved.ends_with("a-blob (1).bin"), "{saved}");
    assert_eq!(std::fs::read(saved).unwrap(), data, "byte for byte");
    assert_eq!(
        std::fs::read(dir.path().join("a-blob.bin")).unwrap(),
        b"precious"
    );
    assert_eq!(
        std::fs::read(atts[1]["saved_path"].as_str().unwrap()).unwrap(),
        b"hello"
    );
}

#[tokio::test]
async fn uploads_from_the_export_dir_and_by_url() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pic.png"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x07\0\0\0\x03",
    )
    .unwrap();
    let h = harness_with(export_options(dir.path())).await;
    let rec = bare_task(&client_for(&h.sandbox)).await;
    let up = ok(
        &h.client,
        "upload_attachment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments",
               "source": {"path": "pic.png"}}),
    )
    .await;
    assert_eq!(up["attachment"]["content_type"], "image/png", "{up}");
    assert_eq!(up["attachment"]["width"], 7, "{up}");
    assert_eq!(up["attachment"]["height"], 3, "{up}");
    let up = ok(
        &h.client,
        "upload_attachment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments",
               "source": {"url": "https://example.com/big/video.mp4"}}),
    )
    .await;
    assert_eq!(up["method"], "url", "{up}");
    assert_eq!(up["attachment_count"], 2, "{up}");
    assert_eq!(up["attachment"]["filename"], "video.mp4", "{up}");
    let got = ok(
        &h.client,
        "get_attachments",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments"}),
    )
    .await;
    let names: Vec<&str> = got["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pic.png", "video.mp4"], "the first one kept: {got}");
    assert!(got.get("saved").is_none(), "{got}");
}

#[tokio::test]
async fn bad_sources_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"x").unwrap();
    let h = harness_with(export_options(dir.path())).await;
    let rec = bare_task(&client_for(&h.sandbox)).await;
    let writes = h.sandbox.stats().writes;
    let call = |source: Value| json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments", "source": source});
    let big = vec![0u8; 5 * 1024 * 1024 + 1];
    let e = err(
        &h.client,
        "upload_attachment",
        call(json!({"content_base64": b64(&big), "filename": "big.bin"})),
    )
    .await;
    assert!(e.contains("5 MB") && e.contains("source.url"), "{e}");
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    let e = err(
        &h.client,
        "upload_attachment",
        call(json!({"path": "big.bin"})),
    )
    .await;
    assert!(e.contains("source.url"), "{e}");
    let e = err(
        &h.client,
        "upload_attachment",
        call(json!({"content_base64": "not base64 at all!", "filename": "x.txt"})),
    )
    .await;
    assert!(e.contains("not valid base64"), "{e}");
    let outside_path = outside.path().join("secret.txt");
    for p in [outside_path.to_str().unwrap(), "../secret.txt"] {
        let e = err(&h.client, "upload_attachment", call(json!({ "path": p }))).await;
        assert!(
            e.contains("outside the export directory") || e.contains("goes up"),
            "{p}: {e}"
        );
    }
    let e = err(
        &h.client,
        "upload_attachment",
        call(json!({"url": "https://x.test/a.pdf", "content_base64": "AA==", "filename": "a"})),
    )
    .await;
    assert!(e.contains("exactly one"), "{e}");
    let e = err(
        &h.client,
        "upload_attachment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Notes",
               "source": {"content_base64": "AA==", "filename": "a"}}),
    )
    .await;
    assert!(
        e.contains("not an attachment field") && e.contains("Attachments"),
        "{e}"
    );
    let e = err(
        &h.client,
        "upload_attachment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Atachments",
               "source": {"content_base64": "AA==", "filename": "a"}}),
    )
    .await;
    assert!(e.contains("Did you mean \"Attachments\""), "{e}");
    assert_eq!(h.sandbox.stats().writes, writes, "nothing was sent");

    // Without --export-dir, path is refused with the fix.
    let h2 = harness().await;
    let e = err(
        &h2.client,
        "upload_attachment",
        call(json!({"path": "a.txt"})),
    )
    .await;
    assert!(e.contains("--export-dir"), "{e}");
}

#[tokio::test]
async fn dry_run_sends_nothing_and_undo_removes_the_upload() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let rec = bare_task(&client).await;
    let args = json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments",
                      "source": {"content_base64": b64(b"abc"), "filename": "a.txt"}});
    let writes = h.sandbox.stats().writes;
    let mut dry = args.clone();
    dry["dry_run"] = json!(true);
    let p = ok(&h.client, "upload_attachment", dry).await;
    let change = &p["preview"]["records"][0]["changes"][0];
    assert_eq!(change["field"], "Attachments", "{p}");
    assert_eq!(change["before"], json!([]), "{p}");
    assert_eq!(
        change["after"],
        json!([{"filename": "a.txt", "size": 3, "type": "text/plain"}]),
        "{p}"
    );
    assert_eq!(h.sandbox.stats().writes, writes, "dry run sent a write");

    let up = ok(&h.client, "upload_attachment", args).await;
    let id = RecordId::from_str(&rec).unwrap();
    let now = client
        .get_record(&base(), "Tasks", &id, &Default::default())
        .await
        .unwrap();
    assert_eq!(now.fields["Attachments"].as_array().unwrap().len(), 1);
    let u = ok(&h.client, "undo_write", json!({"write_id": up["write_id"]})).await;
    assert_eq!(u["applied"], true, "{u}");
    let now = client
        .get_record(&base(), "Tasks", &id, &Default::default())
        .await
        .unwrap();
    assert!(!now.fields.contains_key("Attachments"), "{:?}", now.fields);
}

#[tokio::test]
async fn undo_after_a_second_upload_restores_the_first() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let rec = bare_task(&client).await;
    let up = |name: &str| {
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments",
               "source": {"content_base64": b64(name.as_bytes()), "filename": name}})
    };
    ok(&h.client, "upload_attachment", up("one.txt")).await;
    let second = ok(&h.client, "upload_attachment", up("two.txt")).await;
    // Reading the record again hands out new URLs: that is no conflict.
    ok(
        &h.client,
        "get_attachments",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec}),
    )
    .await;
    let u = ok(
        &h.client,
        "undo_write",
        json!({"write_id": second["write_id"]}),
    )
    .await;
    assert_eq!(u["applied"], true, "{u}");
    let got = ok(
        &h.client,
        "get_attachments",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec}),
    )
    .await;
    let names: Vec<&str> = got["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one.txt"], "{got}");
    // The file put back serves the same bytes, also after the old URLs expired.
    h.sandbox
        .state()
        .advance_clock(Duration::from_secs(3 * 3600));
    let url = ok(
        &h.client,
        "get_attachments",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec}),
    )
    .await["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = client.download(&url, 100).await.unwrap().bytes;
    assert_eq!(bytes, b"one.txt");
}

#[tokio::test]
async fn signed_urls_expire_and_refuse_tampering() {
    let sb = demo_sandbox().await;
    let client = client_for(&sb);
    let rec = RecordId::from_str(&bare_task(&client).await).unwrap();
    let r = client
        .upload_attachment(&base(), &rec, "Attachments", "text/plain", "n.txt", b"data")
        .await
        .unwrap();
    // Keyed by field ID, the new file last.
    let (key, cell) = r.fields.iter().next().unwrap();
    assert!(key.starts_with("fld"), "{key}");
    let url = cell[0]["url"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let get = |u: String| {
        let http = http.clone();
        async move { http.get(u).send().await.unwrap() }
    };
    let ok_resp = get(url.clone()).await;
    assert_eq!(ok_resp.status(), 200);
    assert_eq!(ok_resp.bytes().await.unwrap().as_ref(), b"data");
    // Tampered: another signature, another expiry, another name.
    let tampered_sig = format!("{}0", url.trim_end_matches(|c: char| c != '='));
    assert_eq!(get(tampered_sig).await.status(), 403);
    let u = url::Url::parse(&url).unwrap();
    let exp: i64 = u
        .query_pairs()
        .find(|(k, _)| k == "expires")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let later = url.replace(
        &format!("expires={exp}"),
        &format!("expires={}", exp + 3_600_000),
    );
    assert_eq!(get(later).await.status(), 403);
    assert_eq!(get(url.replace("/n.txt", "/m.txt")).await.status(), 403);
    assert_eq!(
        get(url.split('?').next().unwrap().to_owned())
            .await
            .status(),
        403
    );
    // Expired: move the sandbox clock past the 2 hours (no waiting).
    sb.state().advance_clock(Duration::from_secs(2 * 3600 + 1));
    assert_eq!(get(url.clone()).await.status(), 410);
    // A fresh read gives a fresh URL that works.
    let again = client
        .get_record(&base(), "Tasks", &rec, &Default::default())
        .await
        .unwrap();
    let fresh = again.fields["Attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, url);
    assert_eq!(get(fresh).await.status(), 200);
    // And the client's download says why a URL failed.
    let e = client.download(&url, 1000).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Download {
                status: Some(410),
                ..
            }
        ),
        "{e}"
    );
    let e = client
        .download(again.fields["Attachments"][0]["url"].as_str().unwrap(), 2)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("over the limit"), "{e}");
}

#[tokio::test]
async fn the_sandbox_checks_uploads() {
    let sb = demo_sandbox().await;
    let client = client_for(&sb);
    let rec = RecordId::from_str(&bare_task(&client).await).unwrap();
    let http = reqwest::Client::new();
    let post = |field: &str, body: Value| {
        let url = format!("{}/v0/{DEMO}/{rec}/{field}/uploadAttachment", sb.addr());
        let req = http.post(url).bearer_auth(sb.token()).json(&body);
        async move { req.send().await.unwrap() }
    };
    let good = json!({"contentType": "text/plain", "file": "SGVsbG8=\n", "filename": "h.txt"});
    assert_eq!(post("Attachments", good.clone()).await.status(), 200);
    assert_eq!(post("Notes", good.clone()).await.status(), 422);
    assert_eq!(post("Nope", good.clone()).await.status(), 422);
    let mut bad = good.clone();
    bad["file"] = json!("%%%");
    assert_eq!(post("Attachments", bad).await.status(), 422);
    let mut bad = good.clone();
    bad["contentType"] = json!("plain");
    assert_eq!(post("Attachments", bad).await.status(), 422);
    let mut big = good.clone();
    big["file"] = json!(b64(&vec![1u8; 5 * 1024 * 1024 + 1]));
    assert_eq!(post("Attachments", big).await.status(), 413);
    let other = format!(
        "{}/v0/{DEMO}/recAAAAAAAAAAAAAA/Attachments/uploadAttachment",
        sb.addr()
    );
    let r = http
        .post(other)
        .bearer_auth(sb.token())
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .post(format!(
            "{}/v0/{DEMO}/{rec}/Attachments/uploadAttachment",
            sb.addr()
        ))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the token is required");
}

#[tokio::test]
async fn a_read_only_client_refuses_the_upload() {
    let sb = demo_sandbox().await;
    let rec = RecordId::from_str(&bare_task(&client_for(&sb)).await).unwrap();
    let mut cfg = ClientConfig::new(sb.url(), SecretString::from(sb.token().to_owned()));
    cfg.read_only = true;
    let ro = Client::new(cfg).unwrap();
    let before = sb.stats().requests;
    let e = ro
        .upload_attachment(&base(), &rec, "Attachments", "text/plain", "a.txt", b"x")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ReadOnly { .. }), "{e}");
    assert_eq!(sb.stats().requests, before, "nothing was sent");
}

#[test]
fn the_content_host_follows_the_api_url() {
    let token = SecretString::from("t".to_owned());
    let real = ClientConfig::new(ClientConfig::default_api_url(), token.clone());
    assert_eq!(
        real.resolved_content_url().as_str(),
        "https://content.airtable.com/"
    );
    let local = ClientConfig::new(
        url::Url::parse("http://127.0.0.1:9/").unwrap(),
        token.clone(),
    );
    assert_eq!(local.resolved_content_url().as_str(), "http://127.0.0.1:9/");
    let mut own = local.clone();
    own.content_url = Some(url::Url::parse("http://127.0.0.1:10/").unwrap());
    assert_eq!(own.resolved_content_url().as_str(), "http://127.0.0.1:10/");
}

#[tokio::test]
async fn saving_needs_a_writable_export_dir() {
    let dir = tempfile::tempdir().unwrap();
    let args =
        |rec: &str| json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "save": true});
    let h = harness().await;
    let rec = bare_task(&client_for(&h.sandbox)).await;
    let e = err(&h.client, "get_attachments", args(&rec)).await;
    assert!(e.contains("--export-dir"), "{e}");
    let ro = harness_with(ServerOptions {
        read_only: true,
        ..export_options(dir.path())
    })
    .await;
    let rec = bare_task(&client_for(&ro.sandbox)).await;
    let e = err(&ro.client, "get_attachments", args(&rec)).await;
    assert!(e.contains("read-only"), "{e}");
    // Reading without save works read-only; a field that is not an attachment field is named.
    ok(
        &ro.client,
        "get_attachments",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec}),
    )
    .await;
    let e = err(
        &ro.client,
        "get_attachments",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Name"}),
    )
    .await;
    assert!(e.contains("not an attachment field"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_given_content_type_is_sent_and_a_bad_one_refused() {
    let h = harness().await;
    let rec = bare_task(&client_for(&h.sandbox)).await;
    let up = ok(
        &h.client,
        "upload_attachment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments",
               "source": {"content_base64": b64(b"%PDF-1.4"), "filename": "scan.bin",
                          "content_type": "application/pdf"}}),
    )
    .await;
    assert_eq!(up["attachment"]["content_type"], "application/pdf", "{up}");
    let got = ok(
        &h.client,
        "get_attachments",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec}),
    )
    .await;
    assert_eq!(
        got["attachments"][0]["content_type"], "application/pdf",
        "{got}"
    );
    let before = h.sandbox.stats().requests;
    let bad = err(
        &h.client,
        "upload_attachment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments",
               "source": {"content_base64": b64(b"x"), "filename": "x.txt", "content_type": "not a type"}}),
    )
    .await;
    assert!(bad.contains("not a MIME type"), "{bad}");
    let by_url = err(
        &h.client,
        "upload_attachment",
        json!({"base_id": DEMO, "table_id": "Tasks", "record_id": rec, "field": "Attachments",
               "source": {"url": "https://example.com/a.pdf", "content_type": "application/pdf"}}),
    )
    .await;
    assert!(
        by_url.contains("applies to content_base64 and path"),
        "{by_url}"
    );
    assert_eq!(
        h.sandbox.stats().requests,
        before,
        "refused before any request"
    );
}
