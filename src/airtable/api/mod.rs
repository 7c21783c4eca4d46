//! Endpoints, one file per resource; each adds methods to [`Client`](super::Client).

mod attachments;
pub use attachments::{Downloaded, MAX_UPLOAD_BYTES};
mod bases;
mod comments;
mod records;
mod tables;
mod webhooks;
pub use webhooks::MAX_PAYLOAD_PAGE;
