//! airtable-mcp: complete, fast and safe access to Airtable over the Model Context Protocol.
//!
//! Layers, each knowing nothing of the one above it:
//! - [`airtable`]: the Airtable Web API client (rate limits, retries, pagination, batching).
//! - [`tools`]: the MCP tools, one file per tool group (no HTTP here).
//! - [`server`]: the rmcp handler and the stdio / HTTP transports.
//!
//! Beside them: [`sandbox`] (an Airtable-compatible server backed by SQLite),
//! [`formula`] (Airtable's formula language), [`auth`] (keyring, token resolution,
//! doctor, client setup), [`cli`], [`config`], [`profile`] and [`env`].

pub mod airtable;
pub mod auth;
pub mod cli;
pub mod config;
pub mod env;
pub mod formula;
pub(crate) mod fsutil;
pub mod profile;
pub mod sandbox;
pub mod server;
pub mod telemetry;
pub mod tools;
