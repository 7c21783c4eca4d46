//! SQLite storage: versioned migrations, the schema (bases, tables, fields, views),
//! records (cells as JSON text keyed by field ID) and comments.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use std::collections::HashMap;

use super::SandboxError;
use super::cells::Data;
use super::errors::{ApiError, ApiResult};
use super::schema::{Base, FieldMeta, TableMeta, ViewMeta};

/// Every migration, in order. The version of a migration is its index + 1.
/// Never edit a migration that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the model.
    "CREATE TABLE bases (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        position INTEGER NOT NULL
     );
     CREATE TABLE tables (
        id TEXT PRIMARY KEY,
        base_id TEXT NOT NULL REFERENCES bases(id),
        name TEXT NOT NULL,
        description TEXT,
        primary_field_id TEXT NOT NULL,
        position INTEGER NOT NULL
     );
     CREATE TABLE fields (
        id TEXT PRIMARY KEY,
        table_id TEXT NOT NULL REFERENCES tables(id),
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        description TEXT,
        options TEXT,
        position INTEGER NOT NULL
     );
     CREATE TABLE views (
        id TEXT PRIMARY KEY,
        table_id TEXT NOT NULL REFERENCES tables(id),
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        config TEXT NOT NULL,
        position INTEGER NOT NULL
     );
     CREATE TABLE records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        table_id TEXT NOT NULL REFERENCES tables(id),
        created_time TEXT NOT NULL,
        modified_time TEXT NOT NULL,
        auto_number INTEGER NOT NULL,
        cells TEXT NOT NULL
     );
     CREATE INDEX records_by_table ON records(table_id, seq);",
    // 2: comments.
    "CREATE TABLE comments (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        record_id TEXT NOT NULL,
        text TEXT NOT NULL,
        parent_id TEXT,
        created_time TEXT NOT NULL,
        last_updated_time TEXT
     );
     CREATE INDEX comments_by_record ON comments(record_id, seq);",
    // 3: the user who owns each base (OAuth users see only their own bases).
    "ALTER TABLE bases ADD COLUMN owner TEXT NOT NULL DEFAULT 'usrSandboxUser001';",
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn open(path: Option<&Path>) -> Result<Connection, SandboxError> {
    let mut conn = match path {
        Some(p) => Connection::open(p)?,
        None => Connection::open_in_memory()?,
    };
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Apply every migration newer than the database's version, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), SandboxError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL
         );",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if current > SCHEMA_VERSION {
        return Err(SandboxError::Migration(format!(
            "the database is at schema version {current}, newer than this build's {SCHEMA_VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, super::util::now_iso()],
        )?;
        tx.commit()?;
        tracing::debug!(version, "sandbox migration applied");
    }
    Ok(())
}

/// The connection and a cache of loaded bases (schema and records, parsed).
///
/// A request takes a base's [`Data`] out of the cache (or loads it), and gives it back with
/// [`Db::keep`] only when it succeeded, so a failed write never leaves a half-changed copy;
/// schema writes [`Db::forget`] the base.
pub struct Db {
    pub conn: Connection,
    cache: HashMap<String, Data>,
}

impl Db {
    pub fn new(conn: Connection) -> Db {
        Db {
            conn,
            cache: HashMap::new(),
        }
    }

    pub fn data(&mut self, base_id: &str) -> ApiResult<Data> {
        if let Some(mut d) = self.cache.remove(base_id) {
            d.refresh();
            return Ok(d);
        }
        let base = load_base(&self.conn, base_id)?.ok_or_else(ApiError::not_found)?;
        Ok(Data::load(&self.conn, base_id, base)?)
    }

    pub fn keep(&mut self, data: Data) {
        self.cache.insert(data.base_id.clone(), data);
    }

    pub fn forget(&mut self, base_id: &str) {
        self.cache.remove(base_id);
    }
}

// ---------------------------------------------------------------- schema

/// The bases `owner` owns: (id, name), in order.
pub fn list_bases(conn: &Connection, owner: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st =
        conn.prepare("SELECT id, name FROM bases WHERE owner = ?1 ORDER BY position, id")?;
    let rows = st.query_map([owner], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Every base with its owner (the sandbox keeps this map in memory for access checks).
pub fn base_owners(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = conn.prepare("SELECT id, owner FROM bases")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Give a base to another user.
pub fn set_base_owner(conn: &Connection, id: &str, owner: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE bases SET owner = ?2 WHERE id = ?1",
        params![id, owner],
    )?;
    Ok(())
}

pub fn base_exists(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM bases WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
}

fn parse_json_opt(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

/// Load a base's whole schema, or None when the base does not exist.
pub fn load_base(conn: &Connection, id: &str) -> rusqlite::Result<Option<Base>> {
    let name: Option<String> = conn
        .query_row("SELECT name FROM bases WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let Some(name) = name else { return Ok(None) };
    let mut st = conn.prepare(
        "SELECT id, name, description, primary_field_id FROM tables WHERE base_id = ?1 ORDER BY position, id",
    )?;
    let mut tables: Vec<TableMeta> = st
        .query_map([id], |r| {
            Ok(TableMeta {
                id: r.get(0)?,
                name: r.get(1)?,
                description: r.get(2)?,
                primary_field_id: r.get(3)?,
                fields: Vec::new(),
                views: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut fst = conn.prepare(
        "SELECT id, name, type, description, options FROM fields WHERE table_id = ?1 ORDER BY position, id",
    )?;
    let mut vst = conn.prepare(
        "SELECT id, name, type, config FROM views WHERE table_id = ?1 ORDER BY position, id",
    )?;
    for t in &mut tables {
        t.fields = fst
            .query_map([&t.id], |r| {
                Ok(FieldMeta {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    ftype: r.get(2)?,
                    description: r.get(3)?,
                    options: parse_json_opt(r.get(4)?),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        t.views = vst
            .query_map([&t.id], |r| {
                Ok(ViewMeta {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    vtype: r.get(2)?,
                    config: parse_json_opt(r.get(3)?).unwrap_or(Value::Null),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    let _ = name;
    Ok(Some(Base { tables }))
}

pub fn insert_base(conn: &Connection, id: &str, name: &str) -> rusqlite::Result<()> {
    let pos: i64 = conn.query_row("SELECT COUNT(*) FROM bases", [], |r| r.get(0))?;
    conn.execute(
        "INSERT INTO bases (id, name, position) VALUES (?1, ?2, ?3)",
        params![id, name, pos],
    )?;
    Ok(())
}

pub fn insert_table(conn: &Connection, base_id: &str, t: &TableMeta) -> rusqlite::Result<()> {
    let pos: i64 = conn.query_row(
        "SELECT COUNT(*) FROM tables WHERE base_id = ?1",
        [base_id],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO tables (id, base_id, name, description, primary_field_id, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![t.id, base_id, t.name, t.description, t.primary_field_id, pos],
    )?;
    for f in &t.fields {
        insert_field(conn, &t.id, f)?;
    }
    for v in &t.views {
        insert_view(conn, &t.id, v)?;
    }
    Ok(())
}

pub fn update_table(conn: &Connection, t: &TableMeta) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE tables SET name = ?2, description = ?3 WHERE id = ?1",
        params![t.id, t.name, t.description],
    )?;
    Ok(())
}

pub fn insert_field(conn: &Connection, table_id: &str, f: &FieldMeta) -> rusqlite::Result<()> {
    let pos: i64 = conn.query_row(
        "SELECT COUNT(*) FROM fields WHERE table_id = ?1",
        [table_id],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO fields (id, table_id, name, type, description, options, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            f.id,
            table_id,
            f.name,
            f.ftype,
            f.description,
            f.options.as_ref().map(|o| o.to_string()),
            pos
        ],
    )?;
    Ok(())
}

pub fn update_field(conn: &Connection, f: &FieldMeta) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE fields SET name = ?2, description = ?3, options = ?4 WHERE id = ?1",
        params![
            f.id,
            f.name,
            f.description,
            f.options.as_ref().map(|o| o.to_string())
        ],
    )?;
    Ok(())
}

pub fn insert_view(conn: &Connection, table_id: &str, v: &ViewMeta) -> rusqlite::Result<()> {
    let pos: i64 = conn.query_row(
        "SELECT COUNT(*) FROM views WHERE table_id = ?1",
        [table_id],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO views (id, table_id, name, type, config, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![v.id, table_id, v.name, v.vtype, v.config.to_string(), pos],
    )?;
    Ok(())
}

// ---------------------------------------------------------------- records

/// One stored record. `cells` holds the stored (non-computed) values, keyed by field ID.
#[derive(Debug, Clone)]
pub struct Rec {
    pub id: String,
    pub table_id: String,
    pub created_time: String,
    pub modified_time: String,
    pub auto_number: i64,
    pub cells: Map<String, Value>,
}

pub fn load_records(conn: &Connection, table_id: &str) -> rusqlite::Result<Vec<Rec>> {
    let mut st = conn.prepare_cached(
        "SELECT id, created_time, modified_time, auto_number, cells FROM records WHERE table_id = ?1 ORDER BY seq",
    )?;
    let rows = st.query_map([table_id], |r| {
        let cells: String = r.get(4)?;
        Ok(Rec {
            id: r.get(0)?,
            table_id: table_id.to_string(),
            created_time: r.get(1)?,
            modified_time: r.get(2)?,
            auto_number: r.get(3)?,
            cells: serde_json::from_str(&cells).unwrap_or_default(),
        })
    })?;
    rows.collect()
}

pub fn insert_record(conn: &Connection, r: &Rec) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO records (id, table_id, created_time, modified_time, auto_number, cells) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        r.id,
        r.table_id,
        r.created_time,
        r.modified_time,
        r.auto_number,
        Value::Object(r.cells.clone()).to_string()
    ])?;
    Ok(())
}

pub fn save_record(conn: &Connection, r: &Rec) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE records SET modified_time = ?2, cells = ?3 WHERE id = ?1")?
        .execute(params![
            r.id,
            r.modified_time,
            Value::Object(r.cells.clone()).to_string()
        ])?;
    Ok(())
}

pub fn delete_record(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM records WHERE id = ?1", [id])?;
    conn.execute("DELETE FROM comments WHERE record_id = ?1", [id])?;
    Ok(())
}

// ---------------------------------------------------------------- comments

#[derive(Debug, Clone)]
pub struct CommentRow {
    pub id: String,
    pub record_id: String,
    pub text: String,
    pub parent_id: Option<String>,
    pub created_time: String,
    pub last_updated_time: Option<String>,
}

fn comment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CommentRow> {
    Ok(CommentRow {
        id: r.get(1)?,
        record_id: r.get(2)?,
        text: r.get(3)?,
        parent_id: r.get(4)?,
        created_time: r.get(5)?,
        last_updated_time: r.get(6)?,
    })
}

/// Newest first.
pub fn list_comments(conn: &Connection, record_id: &str) -> rusqlite::Result<Vec<CommentRow>> {
    let mut st = conn.prepare(
        "SELECT seq, id, record_id, text, parent_id, created_time, last_updated_time FROM comments WHERE record_id = ?1 ORDER BY seq DESC",
    )?;
    let rows = st.query_map([record_id], comment_row)?;
    rows.collect()
}

pub fn get_comment(conn: &Connection, id: &str) -> rusqlite::Result<Option<CommentRow>> {
    conn.query_row(
        "SELECT seq, id, record_id, text, parent_id, created_time, last_updated_time FROM comments WHERE id = ?1",
        [id],
        comment_row,
    )
    .optional()
}

pub fn comment_counts(
    conn: &Connection,
    table_id: &str,
) -> rusqlite::Result<std::collections::HashMap<String, u64>> {
    let mut st = conn.prepare(
        "SELECT c.record_id, COUNT(*) FROM comments c JOIN records r ON r.id = c.record_id WHERE r.table_id = ?1 GROUP BY c.record_id",
    )?;
    let rows = st.query_map([table_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    rows.collect()
}

pub fn insert_comment(conn: &Connection, c: &CommentRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO comments (id, record_id, text, parent_id, created_time, last_updated_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            c.id,
            c.record_id,
            c.text,
            c.parent_id,
            c.created_time,
            c.last_updated_time
        ],
    )?;
    Ok(())
}

pub fn update_comment(conn: &Connection, c: &CommentRow) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE comments SET text = ?2, last_updated_time = ?3 WHERE id = ?1",
        params![c.id, c.text, c.last_updated_time],
    )?;
    Ok(())
}

pub fn delete_comment(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM comments WHERE id = ?1", [id])?;
    Ok(())
}
