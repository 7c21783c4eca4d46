//! The Airtable Web API client. Knows nothing of MCP.
//!
//! See docs/ARCHITECTURE.md for the public contract.
