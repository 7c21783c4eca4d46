//! Airtable's formula language: parser, checker and evaluator.
//!
//! See docs/ARCHITECTURE.md for the public contract.
