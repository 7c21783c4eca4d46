//! The transfer toolset: export_table_csv, sync_tables and create_metadata_table.
//!
//! The pure cores (no MCP, no HTTP) live in [`csv_export`], [`sync`] and [`metadata`].

pub mod csv_export;
pub mod metadata;
pub mod sync;
