//! export_table_csv's pure core: records to RFC 4180 CSV, bounded text, and the file write.

use std::path::Path;

use crate::tools::cells::{Field, RecordLike, render};

/// Header of the optional record ID column.
pub(crate) const RECORD_ID_COLUMN: &str = "Record ID";

/// The columns to export: every field in schema order when `requested` is empty, else
/// the requested fields (names or IDs) in the given order, as field names.
///
/// Errors with the list of names that match no field.
pub(crate) fn resolve_columns(
    fields: &[Field],
    requested: &[String],
) -> Result<Vec<String>, Vec<String>> {
    if requested.is_empty() {
        return Ok(fields.iter().map(|f| f.name.clone()).collect());
    }
    let mut out = Vec::with_capacity(requested.len());
    let mut unknown = Vec::new();
    for r in requested {
        match fields
            .iter()
            .find(|f| &f.name == r)
            .or_else(|| fields.iter().find(|f| f.id == r.as_str()))
        {
            Some(f) if !out.contains(&f.name) => out.push(f.name.clone()),
            Some(_) => {}
            None => unknown.push(r.clone()),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

/// CSV bytes plus where each data row ends, so the text can be cut at a row boundary.
#[derive(Debug, Clone)]
pub(crate) struct CsvDoc {
    pub(crate) bytes: Vec<u8>,
    /// Byte offset of the end of the header row.
    pub(crate) header_end: usize,
    /// Byte offset of the end of each data row.
    pub(crate) row_ends: Vec<usize>,
}

impl CsvDoc {
    /// Number of data rows.
    pub(crate) fn rows(&self) -> usize {
        self.row_ends.len()
    }

    /// The CSV as text, cut after the last whole row that fits in `max_bytes` (the header
    /// is always kept). Returns the text and the number of data rows it holds.
    pub(crate) fn bounded_text(&self, max_bytes: usize) -> (String, usize) {
        let keep = self
            .row_ends
            .iter()
            .take_while(|&&end| end <= max_bytes)
            .count();
        let end = if keep == 0 {
            self.header_end
        } else {
            self.row_ends[keep - 1]
        };
        (
            String::from_utf8_lossy(&self.bytes[..end]).into_owned(),
            keep,
        )
    }
}

/// Write `records` as RFC 4180 CSV (CRLF line ends, quotes where needed) with the given
/// columns, cells rendered readably (arrays joined with ", ", attachments as
/// `filename (url)`, collaborators by name).
pub(crate) fn to_csv<R: RecordLike>(
    columns: &[String],
    records: &[R],
    include_record_id: bool,
) -> Result<CsvDoc, String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let err = |e: csv::Error| format!("could not write the CSV: {e}");
    let mut header: Vec<&str> = Vec::with_capacity(columns.len() + 1);
    if include_record_id {
        header.push(RECORD_ID_COLUMN);
    }
    header.extend(columns.iter().map(String::as_str));
    w.write_record(&header).map_err(err)?;
    w.flush()
        .map_err(|e| format!("could not write the CSV: {e}"))?;
    let header_end = w.get_ref().len();
    let mut row_ends = Vec::with_capacity(records.len());
    let mut row: Vec<String> = Vec::with_capacity(header.len());
    for r in records {
        row.clear();
        if include_record_id {
            row.push(r.record_id().to_string());
        }
        let cells = r.cells();
        row.extend(
            columns
                .iter()
                .map(|c| cells.get(c).map(render).unwrap_or_default()),
        );
        w.write_record(&row).map_err(err)?;
        w.flush()
            .map_err(|e| format!("could not write the CSV: {e}"))?;
        row_ends.push(w.get_ref().len());
    }
    let bytes = w
        .into_inner()
        .map_err(|e| format!("could not write the CSV: {}", e.error()))?;
    Ok(CsvDoc {
        bytes,
        header_end,
        row_ends,
    })
}

/// A destination must be a `.csv` file name (so that no other kind of file can be replaced).
pub(crate) fn check_csv_name(path: &str) -> Result<(), String> {
    let is_csv = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        Ok(())
    } else {
        Err(format!(
            "{path} does not end in .csv: give a .csv file name, e.g. export.csv"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::cells::PlainRecord;
    use serde_json::{Value, json};

    fn field(name: &str) -> Field {
        crate::tools::cells::test_field(name, "singleLineText")
    }

    fn rec(id: &str, fields: Value) -> PlainRecord {
        PlainRecord {
            id: id.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    fn records() -> Vec<PlainRecord> {
        vec![
            rec(
                "rec1",
                json!({"Name": "Plain", "Tags": ["a", "b"], "Files": [{"id": "att1", "url": "https://f/x.pdf", "filename": "x.pdf"}]}),
            ),
            rec(
                "rec2",
                json!({"Name": "Quote \"q\", comma\nnewline", "Owner": {"id": "usr1", "email": "o@x.org", "name": "Olga"}}),
            ),
        ]
    }

    #[test]
    fn columns_follow_schema_or_request() {
        let fields = vec![field("Name"), field("Tags"), field("Files")];
        assert_eq!(
            resolve_columns(&fields, &[]).unwrap(),
            vec!["Name", "Tags", "Files"]
        );
        assert_eq!(
            resolve_columns(&fields, &["Files".into(), fields[0].id.to_string()]).unwrap(),
            vec!["Files", "Name"]
        );
        assert_eq!(
            resolve_columns(&fields, &["Nmae".into()]).unwrap_err(),
            vec!["Nmae"]
        );
    }

    #[test]
    fn rfc4180_quoting_and_readable_cells() {
        let cols: Vec<String> = ["Name", "Tags", "Files", "Owner"]
            .map(String::from)
            .to_vec();
        let doc = to_csv(&cols, &records(), true).unwrap();
        let text = String::from_utf8(doc.bytes.clone()).unwrap();
        assert_eq!(
            text,
            "Record ID,Name,Tags,Files,Owner\r\n\
             rec1,Plain,\"a, b\",x.pdf (https://f/x.pdf),\r\n\
             rec2,\"Quote \"\"q\"\", comma\nnewline\",,,Olga\r\n"
        );
        // A real CSV reader gets the cells back.
        let mut rd = csv::Reader::from_reader(doc.bytes.as_slice());
        let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[1][1], "Quote \"q\", comma\nnewline");
    }

    #[test]
    fn bounded_text_cuts_at_row_boundaries() {
        let cols: Vec<String> = vec!["Name".into()];
        let doc = to_csv(&cols, &records(), false).unwrap();
        assert_eq!(doc.rows(), 2);
        let (all, n) = doc.bounded_text(usize::MAX);
        assert_eq!(n, 2);
        assert_eq!(all.as_bytes(), doc.bytes.as_slice());
        let (one, n) = doc.bounded_text(doc.row_ends[0] + 3);
        assert_eq!(n, 1);
        assert_eq!(one, "Name\r\nPlain\r\n");
        let (none, n) = doc.bounded_text(2);
        assert_eq!((none.as_str(), n), ("Name\r\n", 0));
    }

    #[test]
    fn only_csv_names() {
        assert!(check_csv_name("out.csv").is_ok());
        assert!(check_csv_name("reports/NEW.CSV").is_ok());
        let e = check_csv_name(".bashrc").unwrap_err();
        assert!(e.contains(".csv"), "{e}");
        assert!(check_csv_name("out.csv.sh").is_err());
    }
}
