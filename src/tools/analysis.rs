//! The analysis toolset: analyze_table_data and find_duplicates.
//!
//! The pure cores (no MCP, no HTTP) live in [`stats`] and [`duplicates`].

pub mod duplicates;
pub mod stats;
