//! Reading an import source into a sheet: header + rows of cells, whatever the format.
//!
//! CSV: encoding (UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252, a superset of
//! Latin-1's printable range), delimiter sniffed among `,` `;` tab `|`, RFC 4180 quoting (the
//! `csv` crate). Excel .xlsx through `calamine`: a sheet by name or 1-based index, header cells
//! covered by a merged region take the region's value. JSON: an array of objects, or JSON Lines.
//! Limits: [`MAX_BYTES`] and [`MAX_ROWS`].

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use serde_json::Value;

use super::ImportError;

/// Largest source accepted, in bytes (50 MB).
pub(crate) const MAX_BYTES: usize = 50 * 1024 * 1024;
/// Most data rows accepted.
pub(crate) const MAX_ROWS: usize = 100_000;

/// A source's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Xlsx,
    Json,
    JsonLines,
}

impl Format {
    /// A format by name ("csv", "tsv", "xlsx", "json", "jsonl"), case-insensitive.
    pub(crate) fn parse(s: &str) -> Result<Format, ImportError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" => Ok(Format::Csv),
            "xlsx" | "excel" | "xlsm" => Ok(Format::Xlsx),
            "json" => Ok(Format::Json),
            "jsonl" | "ndjson" | "json_lines" => Ok(Format::JsonLines),
            other => Err(ImportError::Format(format!(
                "unknown format {other:?}: use csv, xlsx, json or jsonl"
            ))),
        }
    }

    /// The format a file name's extension names, if any.
    pub(crate) fn from_name(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1;
        Format::parse(ext).ok()
    }

    /// The format the bytes look like.
    pub(crate) fn sniff(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PK\x03\x04") {
            return Format::Xlsx;
        }
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
        let t = text.trim_start_matches('\u{feff}').trim_start();
        if t.starts_with('[') {
            Format::Json
        } else if t.starts_with('{') {
            Format::JsonLines
        } else {
            Format::Csv
        }
    }
}

/// One data row: where it is in the source and its cells (one per column; missing ones Null).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Position as a person sees it: the CSV line or sheet row (1-based, header included), the
    /// JSON array element or JSON Lines line (1-based).
    pub(crate) row: usize,
    pub(crate) cells: Vec<Value>,
}

/// A parsed source.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Sheet {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Row>,
    /// Rows skipped because every cell was empty.
    pub(crate) empty_rows: usize,
    /// CSV only: the delimiter and encoding found.
    pub(crate) detected: Option<String>,
}

/// Parse `bytes` as `format`; `sheet` picks an Excel sheet (name or 1-based index).
pub(crate) fn parse(
    bytes: &[u8],
    format: Format,
    sheet: Option<&str>,
) -> Result<Sheet, ImportError> {
    if bytes.len() > MAX_BYTES {
        return Err(ImportError::TooLarge(format!(
            "the source has {} bytes, over the {MAX_BYTES}-byte limit",
            bytes.len()
        )));
    }
    match format {
        Format::Csv => parse_csv(&decode(bytes)),
        Format::Xlsx => parse_xlsx(bytes, sheet),
        Format::Json => parse_json(bytes, false),
        Format::JsonLines => parse_json(bytes, true),
    }
}

/// Bytes to text: BOMs honoured, UTF-8 when valid, else Windows-1252. Returns the encoding name.
pub(crate) fn decode(bytes: &[u8]) -> (String, &'static str) {
    if let Some((enc, _)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _, _) = enc.decode(bytes);
        return (text.into_owned(), enc.name());
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), "UTF-8"),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            (text.into_owned(), "windows-1252")
        }
    }
}

fn too_many_rows() -> ImportError {
    ImportError::TooLarge(format!("the source has more than {MAX_ROWS} rows"))
}

/// The delimiter that splits the first lines into the same number (> 1) of fields most widely.
fn sniff_delimiter(text: &str) -> u8 {
    let head: String = text.chars().take(64 * 1024).collect();
    let mut best = (b',', 0usize);
    for d in [b',', b';', b'\t', b'|'] {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(d)
            .has_headers(false)
            .flexible(true)
            .from_reader(head.as_bytes());
        let mut counts = Vec::new();
        for rec in rdr.records().take(20) {
            match rec {
                Ok(r) => counts.push(r.len()),
                Err(_) => break,
            }
        }
        // The last line of the sample may be cut.
        if counts.len() > 2 {
            counts.pop();
        }
        let Some(&first) = counts.first() else {
            continue;
        };
        if first > 1 && counts.iter().all(|&c| c == first) && first > best.1 {
            best = (d, first);
        }
    }
    best.0
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn parse_csv((text, encoding): &(String, &'static str)) -> Result<Sheet, ImportError> {
    let delim = sniff_delimiter(text);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut sheet = Sheet {
        detected: Some(format!(
            "delimiter {:?}, encoding {encoding}",
            char::from(delim)
        )),
        ..Sheet::default()
    };
    let mut header = true;
    // Line numbers from byte offsets (a quoted newline spans lines).
    let (mut at, mut line) = (0usize, 1usize);
    for rec in rdr.records() {
        let rec = rec.map_err(ImportError::Csv)?;
        let mut start = rec
            .position()
            .map_or(at, |p| p.byte() as usize)
            .min(text.len());
        while matches!(text.as_bytes().get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start > at {
            line += text.as_bytes()[at..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            at = start;
        }
        let cells: Vec<Value> = rec.iter().map(|c| Value::String(c.to_owned())).collect();
        if header {
            if cells.iter().all(is_blank) {
                continue;
            }
            sheet.columns = header_names(cells.iter().map(|c| c.as_str().unwrap_or("").to_owned()));
            header = false;
            continue;
        }
        push_row(&mut sheet, line, cells)?;
    }
    Ok(sheet)
}

fn push_row(sheet: &mut Sheet, row: usize, mut cells: Vec<Value>) -> Result<(), ImportError> {
    if cells.iter().all(is_blank) {
        sheet.empty_rows += 1;
        return Ok(());
    }
    if sheet.rows.len() >= MAX_ROWS {
        return Err(too_many_rows());
    }
    cells.resize(sheet.columns.len().max(cells.len()), Value::Null);
    sheet.rows.push(Row { row, cells });
    Ok(())
}

/// Column names: trimmed, blanks named "Column N", repeats suffixed " 2", " 3".
fn header_names(raw: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, name) in raw.enumerate() {
        let base = match name.trim() {
            "" => format!("Column {}", i + 1),
            t => t.to_owned(),
        };
        let mut name = base.clone();
        let mut k = 2;
        while out.iter().any(|o| o == &name) {
            name = format!("{base} {k}");
            k += 1;
        }
        out.push(name);
    }
    out
}

fn xlsx_value(d: &Data) -> Value {
    match d {
        Data::Empty | Data::Error(_) => Value::Null,
        Data::Int(i) => Value::from(*i),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Value::from(*f as i64),
        Data::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Data::Bool(b) => Value::Bool(*b),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Value::String(s.clone()),
        Data::DateTime(dt) => {
            if dt.is_duration() {
                Value::from((dt.as_f64() * 86_400.0).round() as i64)
            } else {
                match dt.as_datetime() {
                    Some(t) if t.time() == chrono::NaiveTime::MIN => {
                        Value::String(t.date().format("%Y-%m-%d").to_string())
                    }
                    Some(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S").to_string()),
                    None => Value::Null,
                }
            }
        }
    }
}

fn parse_xlsx(bytes: &[u8], sheet: Option<&str>) -> Result<Sheet, ImportError> {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).map_err(ImportError::Excel)?;
    let names = wb.sheet_names();
    let name = match sheet.map(str::trim).filter(|s| !s.is_empty()) {
        None => names.first().cloned(),
        Some(s) => names
            .iter()
            .find(|n| n.as_str() == s)
            .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(s)))
            .or_else(|| {
                s.parse::<usize>()
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| names.get(i))
            })
            .cloned(),
    };
    let Some(name) = name else {
        return Err(ImportError::Format(format!(
            "no sheet {:?}; the workbook has {}",
            sheet.unwrap_or(""),
            names.join(", ")
        )));
    };
    let range = wb.worksheet_range(&name).map_err(ImportError::Excel)?;
    let merged = wb
        .worksheet_merge_cells(&name)
        .transpose()
        .map_err(ImportError::Excel)?
        .unwrap_or_default();
    let Some((r0, c0)) = range.start() else {
        return Ok(Sheet::default());
    };
    let mut out = Sheet::default();
    let mut header: Option<u32> = None;
    for (i, cells) in range.rows().enumerate() {
        let abs_row = r0 + i as u32;
        let mut values: Vec<Value> = cells.iter().map(xlsx_value).collect();
        // A cell covered by a merged region holds the region's top-left value.
        for (j, v) in values.iter_mut().enumerate() {
            if !v.is_null() {
                continue;
            }
            let abs_col = c0 + j as u32;
            if let Some(m) = merged.iter().find(|m| {
                (m.start.0..=m.end.0).contains(&abs_row) && (m.start.1..=m.end.1).contains(&abs_col)
            }) && let Some(d) = range.get_value(m.start)
            {
                *v = xlsx_value(d);
            }
        }
        match header {
            None => {
                if values.iter().all(is_blank) {
                    continue;
                }
                header = Some(abs_row);
                out.columns = header_names(values.iter().map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                }));
            }
            Some(_) => push_row(&mut out, abs_row as usize + 1, values)?,
        }
    }
    Ok(out)
}

fn parse_json(bytes: &[u8], lines: bool) -> Result<Sheet, ImportError> {
    let (text, _) = decode(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let objects: Vec<(usize, Value)> = if lines {
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let o: Value = serde_json::from_str(line).map_err(|e| ImportError::Json {
                row: i + 1,
                source: e,
            })?;
            v.push((i + 1, o));
        }
        v
    } else {
        match serde_json::from_str::<Value>(text)
            .map_err(|e| ImportError::Json { row: 0, source: e })?
        {
            Value::Array(a) => a.into_iter().enumerate().map(|(i, o)| (i + 1, o)).collect(),
            _ => {
                return Err(ImportError::Format(
                    "JSON source must be an array of objects (or use format jsonl)".into(),
                ));
            }
        }
    };
    let mut out = Sheet::default();
    for (_, o) in &objects {
        let Value::Object(m) = o else {
            continue;
        };
        for k in m.keys() {
            if !out.columns.iter().any(|c| c == k) {
                out.columns.push(k.clone());
            }
        }
    }
    for (row, o) in objects {
        let Value::Object(mut m) = o else {
            return Err(ImportError::Format(format!(
                "element {row} is not an object"
            )));
        };
        let cells = out
            .columns
            .iter()
            .map(|c| m.remove(c).unwrap_or(Value::Null))
            .collect();
        push_row(&mut out, row, cells)?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csv(bytes: &[u8]) -> Sheet {
        parse(bytes, Format::Csv, None).unwrap()
    }

    #[test]
    fn semicolons_quoted_newlines_and_empty_rows() {
        let s = csv(b"Name;Notes\r\n\"A\";\"two\nlines; here\"\r\n;\r\nB;x\r\n");
        assert_eq!(s.columns, ["Name", "Notes"]);
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0].cells[1], json!("two\nlines; here"));
        assert_eq!(s.rows[1].cells[0], json!("B"));
        assert_eq!((s.rows[0].row, s.rows[1].row), (2, 5));
        assert_eq!(s.empty_rows, 1);
    }

    #[test]
    fn latin1_bom_tabs_and_pipes() {
        let s = csv(b"Nom\tVille\nJos\xe9\tM\xfcnchen\n");
        assert_eq!(s.rows[0].cells, [json!("José"), json!("München")]);
        let s = csv("\u{feff}Name|Qty\nÅsa|3\n".as_bytes());
        assert_eq!(s.columns, ["Name", "Qty"]);
        assert_eq!(s.rows[0].cells[0], json!("Åsa"));
        let s = csv(b"a,b\n1,\"x,y\"\n");
        assert_eq!(s.rows[0].cells[1], json!("x,y"));
    }

    #[test]
    fn json_and_lines() {
        let s = parse(
            br#"[{"a":1,"b":"x"},{"b":"y","c":true}]"#,
            Format::Json,
            None,
        )
        .unwrap();
        assert_eq!(s.columns, ["a", "b", "c"]);
        assert_eq!(s.rows[1].cells, [Value::Null, json!("y"), json!(true)]);
        let s = parse(b"{\"a\":1}\n\n{\"a\":2}\n", Format::JsonLines, None).unwrap();
        assert_eq!(s.rows[1].row, 3);
        assert!(parse(b"{\"a\":1}", Format::Json, None).is_err());
    }

    #[test]
    fn limits_and_sniffing() {
        let mut big = b"a\n".to_vec();
        for _ in 0..=MAX_ROWS {
            big.extend_from_slice(b"1\n");
        }
        assert!(matches!(
            parse(&big, Format::Csv, None),
            Err(ImportError::TooLarge(_))
        ));
        assert_eq!(Format::sniff(b"PK\x03\x04.."), Format::Xlsx);
        assert_eq!(Format::sniff(b" [{}]"), Format::Json);
        assert_eq!(Format::sniff(b"a,b"), Format::Csv);
        assert_eq!(Format::from_name("x/data.XLSX"), Some(Format::Xlsx));
        assert_eq!(
            header_names(["a", "", "a"].map(String::from).into_iter()),
            ["a", "Column 2", "a 2"]
        );
    }
}
