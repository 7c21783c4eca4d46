//! The binary from the outside: `auth`, `doctor`, the keyring backends, `--help` snapshots and
//! env vars, and `serve` keeping secrets out of its output. One test binary (each integration
//! test file is its own binary to link, with every dependency): run a part with a filter, e.g.
//! `cargo test --test cli auth_keyring::` or `UPDATE_SNAPSHOTS=1 cargo test --test cli help::`.

mod auth_cli;
mod auth_keyring;
mod help;
mod serve_secrets;
