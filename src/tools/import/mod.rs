//! Importing CSV, Excel and JSON into a table (issue #14): [`source`] reads the bytes into a
//! sheet, [`mapping`] maps columns to fields and converts rows with [`convert`]. Pure: no MCP,
//! no HTTP.

pub(crate) mod convert;
pub(crate) mod mapping;
pub(crate) mod source;

/// Why a source could not be imported at all (a bad value is a [`mapping::Rejection`] instead).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    /// Over a stated limit.
    #[error("{0}")]
    TooLarge(String),
    /// Unknown or unsuitable format, missing sheet, wrong JSON shape.
    #[error("{0}")]
    Format(String),
    /// Columns and fields do not fit.
    #[error("{0}")]
    Mapping(String),
    /// Malformed CSV.
    #[error("the CSV could not be read: {0}")]
    Csv(#[source] csv::Error),
    /// An unreadable workbook.
    #[error("the Excel workbook could not be read: {0}")]
    Excel(#[source] calamine::XlsxError),
    /// Malformed JSON (row 0: the whole document).
    #[error("the JSON (row {row}) could not be read: {source}")]
    Json {
        row: usize,
        #[source]
        source: serde_json::Error,
    },
}
