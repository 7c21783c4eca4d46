//! Endpoints, one file per resource; each adds methods to [`Client`](super::Client).

mod bases;
mod comments;
mod records;
mod tables;
