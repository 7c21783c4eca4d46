//! Attachments: Airtable's upload endpoint
//! (`POST /v0/{baseId}/{recordId}/{fieldIdOrName}/uploadAttachment`, served on the same address
//! as the API) and the files behind attachment URLs.
//!
//! Uploaded bytes are kept in process memory (a file-backed sandbox keeps the attachment objects
//! across restarts, not the bytes). A stored attachment's `url` is the sandbox-relative path
//! `/files/{attId}/{filename}`; every answer that carries one is rewritten on the way out into an
//! absolute URL on the request's host that expires 2 hours later and is signed (HMAC-SHA256 with
//! a per-process key): `/files/{att}/{filename}?expires={unix ms}&sig={hex}`. So every read hands
//! out fresh URLs, like Airtable's. A tampered URL answers 403, an expired one 410. The file
//! route needs no token (Airtable's attachment URLs need none either).
//!
//! Attachments written by `{url}` (create/update) are stored with the URL as given: the sandbox
//! has no network and never downloads them, so their size is what the write said (else 0).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::errors::{ApiError, ApiResult};
use super::records::record_json;
use super::store::Db;
use super::util::new_id;
use super::{SandboxState, lock};

/// Airtable's limit for one uploadAttachment call (decoded bytes; peers check 5 MiB).
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// How long a URL handed out stays valid (Airtable's: about 2 hours).
pub const URL_LIFETIME: Duration = Duration::from_secs(2 * 3600);
/// Where stored attachment URLs point, relative to the sandbox.
const FILES_PREFIX: &str = "/files/";

/// An uploaded file.
#[derive(Clone)]
pub(super) struct StoredFile {
    bytes: Bytes,
    content_type: String,
}

/// The files and the signing key of one sandbox, plus its clock (tests move it).
pub(super) struct Files {
    key: [u8; 64],
    files: std::sync::Mutex<HashMap<String, StoredFile>>,
    /// Added to the system clock, in ms ([`SandboxState::advance_clock`]).
    offset_ms: AtomicI64,
}

impl Files {
    pub(super) fn new() -> Files {
        Files {
            key: rand::random(),
            files: std::sync::Mutex::new(HashMap::new()),
            offset_ms: AtomicI64::new(0),
        }
    }

    fn now_ms(&self) -> i64 {
        let sys = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        sys.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    fn mac(&self, att: &str, filename: &str, expires: i64) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).ok()?;
        mac.update(att.as_bytes());
        mac.update(b"\n");
        mac.update(filename.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        Some(mac)
    }

    fn sign(&self, att: &str, filename: &str, expires: i64) -> String {
        self.mac(att, filename, expires)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    fn verify(&self, att: &str, filename: &str, expires: i64, sig: &str) -> bool {
        let (Some(mac), Ok(given)) = (self.mac(att, filename, expires), hex::decode(sig)) else {
            return false;
        };
        mac.verify_slice(&given).is_ok()
    }

    /// `/files/{att}/{name}` as an absolute, signed URL on `origin` valid for [`URL_LIFETIME`].
    fn signed(&self, origin: &str, rel: &str) -> Option<String> {
        let rest = rel.strip_prefix(FILES_PREFIX)?;
        let (att, enc_name) = rest.split_once('/')?;
        if !super::util::is_id("att", att) {
            return None;
        }
        let name = percent_encoding::percent_decode_str(enc_name)
            .decode_utf8()
            .ok()?;
        let expires = self
            .now_ms()
            .saturating_add(i64::try_from(URL_LIFETIME.as_millis()).unwrap_or(i64::MAX));
        let sig = self.sign(att, &name, expires);
        Some(format!(
            "{origin}{FILES_PREFIX}{att}/{enc_name}?expires={expires}&sig={sig}"
        ))
    }

    fn put(&self, att: String, file: StoredFile) {
        lock(&self.files).insert(att, file);
    }

    fn get(&self, att: &str) -> Option<StoredFile> {
        lock(&self.files).get(att).cloned()
    }
}

impl SandboxState {
    /// Move the sandbox's clock forward (signed URLs and webhooks expire against it). For
    /// tests: no wall-clock waits.
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.inner.files.offset_ms.fetch_add(ms, Ordering::Relaxed);
        super::lock(&self.inner.db).hooks.advance(by);
    }
}

/// The relative URL of an uploaded file.
fn file_path(att: &str, filename: &str) -> String {
    format!(
        "{FILES_PREFIX}{att}/{}",
        crate::airtable::encode_segment(filename)
    )
}

/// Whether `s` looks like a MIME type (`type/subtype`, token characters, optional parameters).
fn valid_content_type(s: &str) -> bool {
    let essence = s.split(';').next().unwrap_or("").trim();
    let Some((t, sub)) = essence.split_once('/') else {
        return false;
    };
    let token = |x: &str| {
        !x.is_empty()
            && x.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    token(t) && token(sub) && s.len() <= 255
}

/// Width and height of a PNG, GIF or JPEG-free guess: only the formats whose header says so.
fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() >= 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
        return Some((w, h));
    }
    if bytes.len() >= 10 && (bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) {
        let w = u16::from_le_bytes(bytes[6..8].try_into().ok()?);
        let h = u16::from_le_bytes(bytes[8..10].try_into().ok()?);
        return Some((u32::from(w), u32::from(h)));
    }
    None
}

/// The checked body of an upload.
struct Upload {
    content_type: String,
    filename: String,
    bytes: Vec<u8>,
}

fn parse_upload(body: &Value) -> ApiResult<Upload> {
    let text = |k: &str| {
        body.get(k).and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "Invalid request: uploadAttachment needs the strings contentType, file (base64) and filename; {k} is missing or not a string"
            ))
        })
    };
    let content_type = text("contentType")?.trim().to_owned();
    let file = text("file")?;
    let filename = text("filename")?.trim().to_owned();
    if !valid_content_type(&content_type) {
        return Err(ApiError::invalid_request(format!(
            "Invalid request: contentType {content_type:?} is not a MIME type such as text/plain"
        )));
    }
    if filename.is_empty() || filename.contains(['/', '\\']) || filename.len() > 255 {
        return Err(ApiError::invalid_request(
            "Invalid request: filename must be a non-empty file name without slashes",
        ));
    }
    // pyairtable sends base64 with line breaks: whitespace is ignored.
    let compact: Vec<u8> = file.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.len() / 4 * 3 > MAX_UPLOAD_BYTES + 3 {
        return Err(too_large());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| {
            ApiError::invalid_request(format!("Invalid request: file is not valid base64 ({e})"))
        })?;
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(too_large());
    }
    Ok(Upload {
        content_type,
        filename,
        bytes,
    })
}

fn too_large() -> ApiError {
    ApiError::typed(
        StatusCode::PAYLOAD_TOO_LARGE,
        "REQUEST_TOO_LARGE",
        format!(
            "The file is larger than {MAX_UPLOAD_BYTES} bytes: uploadAttachment takes files up to 5 MB; attach larger files by URL"
        ),
    )
}

/// Append an uploaded file to the record's attachment field; returns Airtable's answer
/// (`{id, createdTime, fields: {fieldId: [every attachment]}}`) and the new attachment's ID.
fn append(
    db: &mut Db,
    base_id: &str,
    rec_id: &str,
    field_key: &str,
    up: &Upload,
) -> ApiResult<(Value, String)> {
    let mut data = db.data(base_id)?;
    let table_id = data
        .rec(rec_id)
        .map(|r| r.table_id.clone())
        .ok_or_else(ApiError::not_found)?;
    let table = data
        .table(&table_id)
        .cloned()
        .ok_or_else(ApiError::model_not_found)?;
    let field = table
        .field(field_key)
        .cloned()
        .ok_or_else(|| ApiError::unknown_field(field_key))?;
    if field.ftype != "multipleAttachments" {
        return Err(ApiError::invalid_value_msg(format!(
            "Field \"{}\" is not an attachment field (its type is {}): uploadAttachment needs a multipleAttachments field",
            field.name, field.ftype
        )));
    }
    let att = new_id("att");
    let mut obj = Map::new();
    obj.insert("id".into(), json!(att));
    obj.insert("url".into(), json!(file_path(&att, &up.filename)));
    obj.insert("filename".into(), json!(up.filename));
    obj.insert("size".into(), json!(up.bytes.len()));
    obj.insert("type".into(), json!(up.content_type));
    if let Some((w, h)) = dimensions(&up.bytes) {
        obj.insert("width".into(), json!(w));
        obj.insert("height".into(), json!(h));
    }
    let mut list = data
        .rec(rec_id)
        .and_then(|r| r.cells.get(&field.id))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.push(Value::Object(obj));
    data.set_cell(rec_id, &field.id, Some(Value::Array(list)));
    db.commit(&mut data)?;
    let out = data
        .rec(rec_id)
        .map(|r| {
            record_json(
                &data,
                &table,
                r,
                Some(std::slice::from_ref(&field)),
                true,
                None,
                None,
            )
        })
        .unwrap_or(Value::Null);
    db.keep(data);
    Ok((out, att))
}

/// `POST /v0/{base}/{record}/{field}/uploadAttachment`.
pub(super) async fn upload(
    s: &SandboxState,
    base: String,
    rec: String,
    field: String,
    body: &Bytes,
) -> ApiResult<Value> {
    let b = super::json_body(body)?;
    let up = parse_upload(&b)?;
    let (bytes, content_type) = (up.bytes.clone(), up.content_type.clone());
    let (out, att) = s
        .run(move |db| append(db, &base, &rec, &field, &up))
        .await?;
    s.inner.files.put(
        att,
        StoredFile {
            bytes: Bytes::from(bytes),
            content_type,
        },
    );
    Ok(out)
}

/// The query of a file URL.
#[derive(Deserialize)]
pub(super) struct Signature {
    expires: Option<i64>,
    sig: Option<String>,
}

/// `GET /files/{att}/{filename}?expires=..&sig=..`: the bytes, while the URL is valid.
pub(super) async fn serve_file(
    State(s): State<SandboxState>,
    Path((att, filename)): Path<(String, String)>,
    Query(q): Query<Signature>,
) -> Response {
    let files = &s.inner.files;
    let (Some(expires), Some(sig)) = (q.expires, q.sig) else {
        return refuse(StatusCode::FORBIDDEN, "this URL is not signed");
    };
    if !files.verify(&att, &filename, expires, &sig) {
        return refuse(
            StatusCode::FORBIDDEN,
            "the signature does not match this URL",
        );
    }
    if files.now_ms() > expires {
        return refuse(
            StatusCode::GONE,
            "this attachment URL has expired: read the record again for a fresh URL",
        );
    }
    let Some(file) = files.get(&att) else {
        return refuse(StatusCode::NOT_FOUND, "no such file");
    };
    let mut resp = Response::new(Body::from(file.bytes));
    if let Ok(v) = HeaderValue::from_str(&file.content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, message.to_owned()).into_response()
}

/// Largest write body searched for the sandbox's own file URLs (axum's default body limit,
/// which the API routes apply anyway).
const MAX_WRITE_BODY: usize = 2 * 1024 * 1024;

/// Largest answer whose attachment URLs are rewritten (larger ones pass unchanged).
const MAX_REWRITE: usize = 64 * 1024 * 1024;

/// Rewrite the stored relative attachment URLs of a JSON answer into fresh signed ones on the
/// request's host.
/// Also, on the way in, turn this sandbox's own signed URLs written back as `{url}` (an undo
/// restoring a removed attachment, a copy to another record) into the file's relative path, so
/// the new attachment serves the same bytes instead of a URL that expires.
pub(super) async fn sign_urls(State(s): State<SandboxState>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("http://{h}"));
    let req = match own_urls_in(&s.inner.files, req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let resp = next.run(req).await;
    let Some(origin) = origin else {
        return resp;
    };
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let too_big = axum::body::HttpBody::size_hint(&body)
        .upper()
        .is_none_or(|n| n > MAX_REWRITE as u64);
    if too_big {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REWRITE).await else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "answer too large");
    };
    let needle = b"/files/att";
    if !bytes.windows(needle.len()).any(|w| w == needle) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    rewrite(&s.inner.files, &origin, &mut v);
    let out = serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

async fn own_urls_in(files: &Files, req: Request) -> Result<Request, Response> {
    let writes = matches!(
        *req.method(),
        axum::http::Method::POST | axum::http::Method::PATCH | axum::http::Method::PUT
    );
    if !writes || req.uri().path().ends_with("/uploadAttachment") {
        return Ok(req);
    }
    // Bodies over the API's limit pass untouched: the route refuses them as before.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_WRITE_BODY) {
        return Ok(req);
    }
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_WRITE_BODY)
        .await
        .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "request too large"))?;
    let needle = b"/files/att";
    if !bytes.windows(needle.len()).any(|w| w == needle) {
        return Ok(Request::from_parts(parts, Body::from(bytes)));
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(Request::from_parts(parts, Body::from(bytes)));
    };
    unsign(files, &mut v);
    let out = serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Request::from_parts(parts, Body::from(out)))
}

/// Every string that is one of this sandbox's signed file URLs (expired ones too: the
/// signature proves the sandbox made them) becomes the file's relative path.
fn unsign(files: &Files, v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(rel) = own_file(files, s) {
                *s = rel;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| unsign(files, x)),
        Value::Object(o) => o.values_mut().for_each(|x| unsign(files, x)),
        _ => {}
    }
}

fn own_file(files: &Files, url: &str) -> Option<String> {
    if !url.contains(FILES_PREFIX) {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    let rest = parsed.path().strip_prefix(FILES_PREFIX)?;
    let (att, enc_name) = rest.split_once('/')?;
    let name = percent_encoding::percent_decode_str(enc_name)
        .decode_utf8()
        .ok()?;
    let mut expires = None;
    let mut sig = None;
    for (k, v) in parsed.query_pairs() {
        match &*k {
            "expires" => expires = v.parse::<i64>().ok(),
            "sig" => sig = Some(v.into_owned()),
            _ => {}
        }
    }
    (files.verify(att, &name, expires?, &sig?) && files.get(att).is_some())
        .then(|| file_path(att, &name))
}

fn rewrite(files: &Files, origin: &str, v: &mut Value) {
    match v {
        Value::String(s) => {
            if s.starts_with(FILES_PREFIX) {
                if let Some(url) = files.signed(origin, s) {
                    *s = url;
                }
            } else if s.contains("(/files/att") {
                // cellFormat=string: "name (url), name (url)".
                let mut out = String::with_capacity(s.len() + 64);
                let mut rest = s.as_str();
                while let Some(i) = rest.find("(/files/att") {
                    out.push_str(&rest[..=i]);
                    let after = &rest[i + 1..];
                    let end = after.find(')').unwrap_or(after.len());
                    let rel = &after[..end];
                    out.push_str(&files.signed(origin, rel).unwrap_or_else(|| rel.to_owned()));
                    rest = &after[end..];
                }
                out.push_str(rest);
                *s = out;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(files, origin, x)),
        Value::Object(o) => o.values_mut().for_each(|x| rewrite(files, origin, x)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_every_part() {
        let f = Files::new();
        let url = f
            .signed("http://h", "/files/attAAAAAAAAAAAAAA/a%20b.txt")
            .unwrap();
        let u = url::Url::parse(&url).unwrap();
        let q: HashMap<_, _> = u.query_pairs().into_owned().collect();
        let exp: i64 = q["expires"].parse().unwrap();
        assert!(f.verify("attAAAAAAAAAAAAAA", "a b.txt", exp, &q["sig"]));
        assert!(!f.verify("attAAAAAAAAAAAAAB", "a b.txt", exp, &q["sig"]));
        assert!(!f.verify("attAAAAAAAAAAAAAA", "a c.txt", exp, &q["sig"]));
        assert!(!f.verify("attAAAAAAAAAAAAAA", "a b.txt", exp + 1, &q["sig"]));
        assert!(!f.verify("attAAAAAAAAAAAAAA", "a b.txt", exp, "00"));
        assert!(!Files::new().verify("attAAAAAAAAAAAAAA", "a b.txt", exp, &q["sig"]));
    }

    #[test]
    fn uploads_are_checked() {
        let ok = json!({"contentType": "text/plain", "file": "SGVs\nbG8=\n", "filename": "a.txt"});
        assert_eq!(parse_upload(&ok).unwrap().bytes, b"Hello");
        for bad in [
            json!({"contentType": "text/plain", "file": "!!!!", "filename": "a.txt"}),
            json!({"contentType": "text", "file": "SGVsbG8=", "filename": "a.txt"}),
            json!({"contentType": "text/plain", "file": "SGVsbG8=", "filename": "../a"}),
            json!({"file": "SGVsbG8=", "filename": "a.txt"}),
        ] {
            assert_eq!(
                parse_upload(&bad).err().unwrap().status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}"
            );
        }
        let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_UPLOAD_BYTES + 1]);
        let e = parse_upload(&json!({"contentType": "a/b", "file": big, "filename": "x"}));
        assert_eq!(e.err().unwrap().status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn png_dimensions() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(7u32.to_be_bytes());
        png.extend(3u32.to_be_bytes());
        assert_eq!(dimensions(&png), Some((7, 3)));
        assert_eq!(dimensions(b"plain"), None);
    }
}
