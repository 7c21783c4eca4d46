//! The MCP tools, one file per tool group. Knows nothing of HTTP.

pub mod analysis;
pub mod cells;
pub mod transfer;
