//! The MCP tools, one file per tool group. Knows nothing of HTTP.
