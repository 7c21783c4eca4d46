//! Seeds: the demo project tracker and JSON seed files (format in docs/sandbox.md).

use std::path::Path;

use chrono::{Duration as ChronoDuration, NaiveDate, TimeZone, Utc};
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::SandboxError;
use super::cells::Data;
use super::errors::ApiError;
use super::schema;
use super::store;
use super::util::{DetIds, iso, new_id, with_det_ids};

/// The demo base's fixed ID.
pub const DEMO_BASE_ID: &str = "appDemoTracker001";

fn api(e: ApiError) -> SandboxError {
    let msg = e
        .body
        .get("error")
        .and_then(|x| x.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| e.body.to_string());
    SandboxError::Seed(msg)
}

/// Seed the demo base unless it exists already.
pub fn demo(conn: &mut Connection) -> Result<(), SandboxError> {
    load(conn, &demo_value())
}

pub fn from_file(conn: &mut Connection, path: &Path) -> Result<(), SandboxError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SandboxError::Seed(format!("cannot read {}: {e}", path.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| SandboxError::Seed(format!("{} is not valid JSON: {e}", path.display())))?;
    load(conn, &v)
}

fn is_deferred(t: &str) -> bool {
    matches!(
        t,
        "multipleRecordLinks" | "multipleLookupValues" | "rollup" | "count" | "formula"
    )
}

/// Load a seed document: `{"bases": [{id?, name, tables: [{name, description?, fields, views?, records?}]}]}`.
/// Bases that exist already are left alone, so a persistent database is seeded once.
pub fn load(conn: &mut Connection, doc: &Value) -> Result<(), SandboxError> {
    let bases = doc
        .get("bases")
        .and_then(Value::as_array)
        .ok_or_else(|| SandboxError::Seed("the seed needs a \"bases\" array".into()))?;
    for (bi, b) in bases.iter().enumerate() {
        let id = b.get("id").and_then(Value::as_str).map(str::to_string);
        if let Some(id) = &id {
            if !schema::is_base_id(id) {
                return Err(SandboxError::Seed(format!(
                    "base id {id} is not \"app\" + 14 letters or digits"
                )));
            }
            if store::base_exists(conn, id)? {
                continue;
            }
        }
        let seed_no = id
            .as_deref()
            .map(|s| {
                s.bytes()
                    .fold(7u64, |a, c| a.wrapping_mul(31).wrapping_add(c as u64))
            })
            .unwrap_or(bi as u64 + 1);
        with_det_ids(seed_no, || load_base(conn, id, b))?;
    }
    Ok(())
}

fn load_base(conn: &mut Connection, id: Option<String>, b: &Value) -> Result<(), SandboxError> {
    let name = b
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| SandboxError::Seed("each base needs a name".into()))?;
    let tables = b
        .get("tables")
        .and_then(Value::as_array)
        .ok_or_else(|| SandboxError::Seed(format!("base {name} needs a \"tables\" array")))?;
    let base_id = id.unwrap_or_else(|| new_id("app"));
    let tx = conn.transaction()?;
    store::insert_base(&tx, &base_id, name)?;
    let reload = |tx: &Connection| -> Result<schema::Base, SandboxError> {
        store::load_base(tx, &base_id)?
            .ok_or_else(|| SandboxError::Seed("the base vanished while seeding".into()))
    };
    // 1: tables with their plain fields.
    for t in tables {
        let fields: Vec<Value> = t
            .get("fields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| !is_deferred(f.get("type").and_then(Value::as_str).unwrap_or("")))
            .collect();
        let mut spec = t.clone();
        spec["fields"] = Value::Array(fields);
        let base = reload(&tx)?;
        let (table, inverses) = schema::new_table(&base, &spec).map_err(api)?;
        store::insert_table(&tx, &base_id, &table)?;
        for (tid, f) in inverses {
            store::insert_field(&tx, &tid, &f)?;
        }
    }
    // 2: links (table names allowed for linkedTableId), then computed fields.
    for links in [true, false] {
        for t in tables {
            let tname = t.get("name").and_then(Value::as_str).unwrap_or("");
            for f in t
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ft = f.get("type").and_then(Value::as_str).unwrap_or("");
                if !is_deferred(ft) || (ft == "multipleRecordLinks") != links {
                    continue;
                }
                let base = reload(&tx)?;
                let table = base
                    .table(tname)
                    .cloned()
                    .ok_or_else(|| SandboxError::Seed(format!("table {tname} missing")))?;
                let mut spec = f.clone();
                if let Some(lt) = f
                    .get("options")
                    .and_then(|o| o.get("linkedTableId"))
                    .and_then(Value::as_str)
                    && let Some(other) = base.table(lt)
                {
                    spec["options"]["linkedTableId"] = json!(other.id);
                }
                let nf = schema::new_field(&base, &table.id, &table.name, &table.fields, &spec)
                    .map_err(api)?;
                store::insert_field(&tx, &table.id, &nf.field)?;
                if let Some((tid, inv)) = nf.inverse {
                    store::insert_field(&tx, &tid, &inv)?;
                }
            }
        }
    }
    // 3: views.
    let base = reload(&tx)?;
    for t in tables {
        let tname = t.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(table) = base.table(tname) else {
            continue;
        };
        for v in t
            .get("views")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let vname = v
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| SandboxError::Seed(format!("a view of {tname} has no name")))?;
            if table.view(vname).is_some() {
                continue;
            }
            let mut config = Map::new();
            if let Some(sorts) = v.get("sort").and_then(Value::as_array) {
                let mut out = Vec::new();
                for s in sorts {
                    let key = s.get("field").and_then(Value::as_str).unwrap_or("");
                    let f = table.field(key).ok_or_else(|| {
                        SandboxError::Seed(format!("view {vname} sorts on unknown field {key}"))
                    })?;
                    let dir = s.get("direction").and_then(Value::as_str).unwrap_or("asc");
                    out.push(json!({"field": f.id, "direction": dir}));
                }
                config.insert("sort".into(), Value::Array(out));
            }
            if let Some(f) = v.get("filterByFormula").and_then(Value::as_str) {
                config.insert("filterByFormula".into(), json!(f));
            }
            if let Some(hidden) = v.get("hiddenFields").and_then(Value::as_array) {
                let ids: Vec<String> = hidden
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|k| table.field(k).map(|f| f.id.clone()))
                    .collect();
                config.insert("hiddenFieldIds".into(), json!(ids));
            }
            let view = schema::ViewMeta {
                id: new_id("viw"),
                name: vname.to_string(),
                vtype: v
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("grid")
                    .to_string(),
                config: Value::Object(config),
            };
            store::insert_view(&tx, &table.id, &view)?;
        }
    }
    // 4: records, with typecast (links by primary value, new select options).
    let mut data = Data::load(&tx, &base_id, base.clone())?;
    for t in tables {
        let tname = t.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(table_id) = base.table(tname).map(|t| t.id.clone()) else {
            continue;
        };
        for r in t
            .get("records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let fields = r.get("fields").unwrap_or(r);
            if let Some(ct) = r.get("createdTime").and_then(Value::as_str) {
                data.now = ct.to_string();
            }
            let cells = super::records::build_cells(&mut data, &table_id, fields, true, None)
                .map_err(api)?;
            let map: Map<String, Value> = cells
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
            data.insert(&table_id, map);
        }
    }
    data.persist(&tx)?;
    tx.commit()?;
    tracing::info!(base = %base_id, "sandbox seeded");
    Ok(())
}

const PEOPLE: &[&str] = &[
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Linus Torvalds",
    "Margaret Hamilton",
    "Dennis Ritchie",
    "Barbara Liskov",
    "Ken Thompson",
    "Frances Allen",
    "Donald Knuth",
    "Radia Perlman",
    "Tim Berners-Lee",
    "Katherine Johnson",
    "John McCarthy",
    "Hedy Lamarr",
    "Edsger Dijkstra",
    "Shafi Goldwasser",
    "Leslie Lamport",
    "Adele Goldberg",
    "Bjarne Stroustrup",
];

const PROJECTS: &[&str] = &[
    "Website redesign",
    "Mobile app v2",
    "Billing migration",
    "Customer portal",
    "Data warehouse",
    "Search relaunch",
    "Onboarding revamp",
    "Security audit",
    "API v3",
    "Internal tools",
    "Marketing site",
    "Support chatbot",
];

const VERBS: &[&str] = &[
    "Design",
    "Implement",
    "Review",
    "Test",
    "Document",
    "Deploy",
    "Plan",
];
const OBJECTS: &[&str] = &[
    "login page",
    "REST endpoints",
    "database schema",
    "onboarding flow",
    "invoice emails",
    "search index",
    "notifications",
    "dashboard",
    "reports",
    "settings screen",
    "analytics events",
    "permissions",
    "error pages",
    "release notes",
];

/// The demo base as a seed document: People (20), Projects (12) and Tasks (168).
pub fn demo_value() -> Value {
    let mut rng = DetIds::new(2026);
    let day0 = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default();
    let t0 = Utc
        .with_ymd_and_hms(2026, 1, 2, 9, 0, 0)
        .single()
        .unwrap_or_default();
    let mut minute = 0i64;
    let mut created = || {
        minute += 7;
        iso(t0 + ChronoDuration::minutes(minute))
    };
    let roles = ["Engineer", "Designer", "Product manager", "QA"];
    let people: Vec<Value> = PEOPLE
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let first = name.split(' ').next().unwrap_or(name).to_lowercase();
            let last = name.rsplit(' ').next().unwrap_or(name).to_lowercase();
            let mut f = json!({
                "Name": name,
                "Email": format!("{first}.{last}@example.com"),
                "Role": roles[i % roles.len()],
                "Active": i % 5 != 4,
            });
            if i < 8 {
                f["Photo"] = json!([{
                    "url": format!("https://example.com/avatars/{first}.png"),
                    "filename": format!("{first}.png"),
                    "size": 20480 + i * 512,
                    "type": "image/png"
                }]);
            }
            json!({"createdTime": created(), "fields": f})
        })
        .collect();
    let statuses = ["Planning", "Active", "Active", "On hold", "Done"];
    let tags = ["Frontend", "Backend", "Research", "Marketing", "Infra"];
    let projects: Vec<Value> = PROJECTS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let t1 = tags[i % tags.len()];
            let t2 = tags[(i * 3 + 1) % tags.len()];
            let mut tg = vec![t1];
            if t2 != t1 {
                tg.push(t2);
            }
            json!({"createdTime": created(), "fields": {
                "Name": name,
                "Status": statuses[i % statuses.len()],
                "Start date": (day0 + ChronoDuration::days(14 * i as i64)).format("%Y-%m-%d").to_string(),
                "Budget": 5000 + 2500 * i as i64,
                "Tags": tg,
                "Owner": [PEOPLE[(i * 3) % PEOPLE.len()]],
            }})
        })
        .collect();
    let task_status = ["Todo", "In progress", "Blocked", "Done"];
    let priorities = ["High", "Medium", "Low"];
    let mut tasks = Vec::new();
    for (pi, project) in PROJECTS.iter().enumerate() {
        for k in 0..14usize {
            let n = pi * 14 + k;
            let status = task_status[rng.below(4) as usize];
            let mut f = json!({
                "Name": format!("{} {}", VERBS[(n / 3 + k) % VERBS.len()], OBJECTS[k % OBJECTS.len()]),
                "Status": status,
                "Priority": priorities[rng.below(3) as usize],
                "Due date": (day0 + ChronoDuration::days(14 * pi as i64 + 3 * k as i64 + 7)).format("%Y-%m-%d").to_string(),
                "Done": status == "Done",
                "Estimate (hours)": 0.5 * (1 + rng.below(16)) as f64,
                "Project": [project],
                "Assignee": [PEOPLE[rng.below(PEOPLE.len() as u64) as usize]],
            });
            if n % 3 == 0 {
                f["Notes"] = json!(format!(
                    "Part of {project}.\nAcceptance: reviewed and merged, docs updated."
                ));
            }
            if n % 10 == 0 {
                f["Attachments"] = json!([{
                    "url": format!("https://example.com/specs/task-{n}.pdf"),
                    "filename": format!("spec-{n}.pdf"),
                    "size": 102400 + n * 100,
                    "type": "application/pdf"
                }]);
            }
            tasks.push(json!({"createdTime": created(), "fields": f}));
        }
    }
    json!({"bases": [{
        "id": DEMO_BASE_ID,
        "name": "Project Tracker (demo)",
        "tables": [
            {
                "name": "People",
                "description": "Everyone who works on projects.",
                "fields": [
                    {"name": "Name", "type": "singleLineText"},
                    {"name": "Email", "type": "email"},
                    {"name": "Role", "type": "singleSelect", "options": {"choices": [
                        {"name": "Engineer", "color": "blueLight2"}, {"name": "Designer", "color": "purpleLight2"},
                        {"name": "Product manager", "color": "greenLight2"}, {"name": "QA", "color": "orangeLight2"}]}},
                    {"name": "Photo", "type": "multipleAttachments"},
                    {"name": "Active", "type": "checkbox"},
                    {"name": "Task count", "type": "count", "options": {"recordLinkFieldId": "Tasks"}}
                ],
                "records": people
            },
            {
                "name": "Projects",
                "description": "Projects and their owners.",
                "fields": [
                    {"name": "Name", "type": "singleLineText"},
                    {"name": "Status", "type": "singleSelect", "options": {"choices": [
                        {"name": "Planning", "color": "grayLight2"}, {"name": "Active", "color": "blueLight2"},
                        {"name": "On hold", "color": "yellowLight2"}, {"name": "Done", "color": "greenLight2"}]}},
                    {"name": "Start date", "type": "date", "options": {"dateFormat": {"name": "iso"}}},
                    {"name": "Budget", "type": "currency", "options": {"precision": 0, "symbol": "$"}},
                    {"name": "Tags", "type": "multipleSelects", "options": {"choices": [
                        {"name": "Frontend"}, {"name": "Backend"}, {"name": "Research"}, {"name": "Marketing"}, {"name": "Infra"}]}},
                    {"name": "Owner", "type": "multipleRecordLinks", "options": {"linkedTableId": "People", "prefersSingleRecordLink": true}},
                    {"name": "Task count", "type": "count", "options": {"recordLinkFieldId": "Tasks"}},
                    {"name": "Total estimate (hours)", "type": "rollup", "options": {
                        "recordLinkFieldId": "Tasks", "fieldIdInLinkedTable": "Estimate (hours)", "formula": "SUM(values)"}},
                    {"name": "Owner email", "type": "multipleLookupValues", "options": {
                        "recordLinkFieldId": "Owner", "fieldIdInLinkedTable": "Email"}}
                ],
                "views": [
                    {"name": "By start date", "type": "grid", "sort": [{"field": "Start date", "direction": "asc"}]},
                    {"name": "Active projects", "type": "grid", "filterByFormula": "{Status} = 'Active'"}
                ],
                "records": projects
            },
            {
                "name": "Tasks",
                "description": "Work items, each in one project.",
                "fields": [
                    {"name": "Name", "type": "singleLineText"},
                    {"name": "Status", "type": "singleSelect", "options": {"choices": [
                        {"name": "Todo", "color": "grayLight2"}, {"name": "In progress", "color": "blueLight2"},
                        {"name": "Blocked", "color": "redLight2"}, {"name": "Done", "color": "greenLight2"}]}},
                    {"name": "Priority", "type": "singleSelect", "options": {"choices": [
                        {"name": "High", "color": "redBright"}, {"name": "Medium", "color": "yellowBright"}, {"name": "Low", "color": "grayBright"}]}},
                    {"name": "Due date", "type": "date", "options": {"dateFormat": {"name": "iso"}}},
                    {"name": "Done", "type": "checkbox"},
                    {"name": "Estimate (hours)", "type": "number", "options": {"precision": 1}},
                    {"name": "Notes", "type": "multilineText"},
                    {"name": "Attachments", "type": "multipleAttachments"},
                    {"name": "Task ID", "type": "autoNumber"},
                    {"name": "Created", "type": "createdTime"},
                    {"name": "Last modified", "type": "lastModifiedTime"},
                    {"name": "Project", "type": "multipleRecordLinks", "options": {"linkedTableId": "Projects", "prefersSingleRecordLink": true}},
                    {"name": "Assignee", "type": "multipleRecordLinks", "options": {"linkedTableId": "People", "prefersSingleRecordLink": true}},
                    {"name": "Project status", "type": "multipleLookupValues", "options": {
                        "recordLinkFieldId": "Project", "fieldIdInLinkedTable": "Status"}},
                    {"name": "Estimate (minutes)", "type": "formula", "options": {"formula": "{Estimate (hours)} * 60"}}
                ],
                "views": [
                    {"name": "By due date", "type": "grid", "sort": [{"field": "Due date", "direction": "asc"}]},
                    {"name": "Open tasks", "type": "grid", "filterByFormula": "NOT({Done})",
                     "sort": [{"field": "Due date", "direction": "asc"}], "hiddenFields": ["Notes", "Attachments"]}
                ],
                "records": tasks
            }
        ]
    }]})
}
