//! Catalog CSV files. The format is recognised from the header; every row that cannot be
//! imported is reported with its line number and the reason, and every valid row is
//! imported, so one bad price never costs a merchant the whole file.

mod shopify;
mod woocommerce;

use domain::{Money, SourceProduct};

pub use woocommerce::export as export_woocommerce;

/// The CSV dialects the local catalog understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvFormat {
    WooCommerce,
    Shopify,
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// 1-based line number in the file where the row starts.
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CsvImport {
    pub format: CsvFormat,
    pub products: Vec<SourceProduct>,
    pub rejected: Vec<RejectedRow>,
}

/// Problems with the file as a whole; row problems are [`RejectedRow`]s instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not UTF-8 text")]
    NotUtf8,
    #[error("unrecognised CSV header: expected the WooCommerce product export (ID, Type, SKU, Name, …) or the Shopify product format (Handle, Title, Body (HTML), …)")]
    UnknownFormat,
    #[error("the header lacks required columns: {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    #[error("the file is not valid CSV near line {line}: {message}")]
    Malformed { line: u64, message: String },
}

/// Parses a catalog CSV in either supported format. `currency` is the store's currency
/// (CSV files carry none).
pub fn parse_catalog(bytes: &[u8], currency: &str) -> Result<CsvImport, CsvError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CsvError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(CsvError::Empty);
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|err| malformed(&err))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect::<Vec<_>>();
    let table = Table::new(headers);
    // Line numbers as an editor shows them, counted from byte offsets: the CSV reader's own
    // count skips line breaks inside quoted CRLF cells.
    let newlines: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
    // A record's reported start can sit on the previous row's line terminator: step past it.
    let line_at = |byte: u64| {
        let start = byte as usize;
        let first = text
            .get(start..)
            .and_then(|rest| rest.find(|c| c != '\r' && c != '\n'))
            .map_or(start, |skip| start + skip);
        newlines.partition_point(|&i| i < first) as u64 + 1
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| malformed(&err))?;
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        rows.push(Row {
            line,
            cells: record.iter().map(str::to_owned).collect(),
        });
    }
    if table.has("Handle") && table.has("Title") {
        shopify::parse(&table, rows, currency)
    } else if table.has("Name") && (table.has("ID") || table.has("SKU")) {
        woocommerce::parse(&table, rows, currency)
    } else if table.has("Handle") || table.has("Name") {
        let mut missing = Vec::new();
        if table.has("Handle") {
            missing.push("Title".to_owned());
        } else {
            missing.push("ID or SKU".to_owned());
        }
        Err(CsvError::MissingColumns(missing))
    } else {
        Err(CsvError::UnknownFormat)
    }
}

/// A CSV syntax error; its line is the reader's own count (close enough to point at it).
fn malformed(err: &::csv::Error) -> CsvError {
    CsvError::Malformed {
        line: err.position().map_or(0, |p| p.line()),
        message: err.to_string(),
    }
}

/// Column lookup by header name.
pub(crate) struct Table {
    headers: Vec<String>,
}

impl Table {
    fn new(headers: Vec<String>) -> Self {
        Table { headers }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.index(name).is_some()
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
    }

    /// The trimmed cell of `column`, `None` when absent or empty.
    pub(crate) fn get<'r>(&self, row: &'r Row, column: &str) -> Option<&'r str> {
        self.index(column)
            .and_then(|i| row.cells.get(i))
            .map(|cell| cell.trim())
            .filter(|cell| !cell.is_empty())
    }

    /// The cell of `column` without trimming (descriptions keep their layout).
    pub(crate) fn raw<'r>(&self, row: &'r Row, column: &str) -> Option<&'r str> {
        self.index(column)
            .and_then(|i| row.cells.get(i))
            .map(String::as_str)
            .filter(|cell| !cell.trim().is_empty())
    }
}

pub(crate) struct Row {
    pub line: u64,
    pub cells: Vec<String>,
}

/// Parses an optional price cell, naming the column in the error.
pub(crate) fn price(table: &Table, row: &Row, column: &str) -> Result<Option<Money>, String> {
    table
        .get(row, column)
        .map(|text| Money::parse_decimal(text).map_err(|why| format!("{column}: {why}")))
        .transpose()
}

/// Parses an optional whole-number cell.
pub(crate) fn integer(table: &Table, row: &Row, column: &str) -> Result<Option<i64>, String> {
    table
        .get(row, column)
        .map(|text| {
            text.parse::<f64>()
                .ok()
                .filter(|n| n.fract() == 0.0 && n.abs() < 1e12)
                .map(|n| n as i64)
                .ok_or_else(|| format!("{column}: {text:?} is not a whole number"))
        })
        .transpose()
}

/// Splits a list cell on commas, honouring WooCommerce's `\,` escape for commas in names.
pub(crate) fn split_list(cell: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = cell.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                current.push(',');
                chars.next();
            }
            ',' => {
                items.push(std::mem::take(&mut current));
            }
            other => current.push(other),
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_unescaped_commas() {
        assert_eq!(split_list("A > B, Sale"), ["A > B", "Sale"]);
        assert_eq!(
            split_list(r"Pots\, pans, Kitchen"),
            ["Pots, pans", "Kitchen"]
        );
        assert!(split_list(" , ").is_empty());
    }

    #[test]
    fn whole_file_problems_are_errors() {
        assert_eq!(parse_catalog(b"", "USD"), Err(CsvError::Empty));
        assert_eq!(
            parse_catalog(b"\xff\xfe\x00", "USD"),
            Err(CsvError::NotUtf8)
        );
        assert_eq!(
            parse_catalog(b"foo,bar\n1,2\n", "USD"),
            Err(CsvError::UnknownFormat)
        );
        assert!(matches!(
            parse_catalog(b"Handle,Body (HTML)\nx,y\n", "USD"),
            Err(CsvError::MissingColumns(_))
        ));
    }
}
