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
///
/// Beyond the formats' own rules, a row is rejected with its line when a cell holds a NUL
/// character, when a field exceeds its cap ([`domain::text`]), or when a quote is left
/// open: a quoted cell never closed (it would run to the end of the file) or closed by
/// the quote of a later row (then text follows its closing quote). That row is rejected
/// and reading resumes on the line after the one where the quote opened.
pub fn parse_catalog(bytes: &[u8], currency: &str) -> Result<CsvImport, CsvError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CsvError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(CsvError::Empty);
    }
    let lines = Lines::new(text);
    let mut read = Records::default();
    let mut start = 0;
    // Resuming re-reads what the misquoted row swallowed; this many bytes of the file
    // may be re-read before the rest of it is given up.
    let mut reread_budget = 2 * text.len();
    while let Some(broken) = read.read_from(text, start, &lines)? {
        // The quote's line belongs to the rejected row; the next line starts afresh.
        let resume = text[broken.quote..]
            .find('\n')
            .map_or(text.len(), |newline| broken.quote + newline + 1);
        let quote_line = lines.line_at(broken.quote);
        let swallowed = broken.end.saturating_sub(resume);
        if swallowed > reread_budget {
            read.rejected.push(RejectedRow {
                line: broken.line,
                reason: format!(
                    "a quote opened on line {quote_line} is never closed, and this file has too many of them: nothing from this line on was imported; close the quotes (a quote inside a quoted cell is written twice, \"\")"
                ),
            });
            break;
        }
        reread_budget -= swallowed;
        read.rejected.push(RejectedRow {
            line: broken.line,
            reason: format!(
                "a quote opened on line {quote_line} is never closed (it would swallow the rows after it); the row was skipped and reading went on at line {}",
                quote_line + 1
            ),
        });
        start = resume;
        if start >= text.len() {
            break;
        }
    }
    let Records {
        headers,
        rows,
        rejected: unreadable,
    } = read;
    let table = Table::new(headers.unwrap_or_default());
    let mut import = if table.has("Handle") && table.has("Title") {
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
    }?;
    import.rejected.extend(unreadable);
    import.rejected.sort_by_key(|row| row.line);
    Ok(import)
}

/// Line numbers as an editor shows them, counted from byte offsets: the CSV reader's own
/// count skips line breaks inside quoted CRLF cells.
struct Lines<'t> {
    text: &'t str,
    newlines: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        Lines {
            text,
            newlines: text.match_indices('\n').map(|(i, _)| i).collect(),
        }
    }

    /// The first byte at or after `byte` that is not a line terminator: a record's
    /// reported start can sit on the previous row's line terminator.
    fn content_start(&self, byte: usize) -> usize {
        self.text
            .get(byte..)
            .and_then(|rest| rest.find(|c| c != '\r' && c != '\n'))
            .map_or(byte, |skip| byte + skip)
    }

    fn line_at(&self, byte: usize) -> u64 {
        self.newlines.partition_point(|&i| i < byte) as u64 + 1
    }
}

/// A record with a quote left open.
struct BrokenRecord {
    /// Line where the record starts.
    line: u64,
    /// Byte offset of the opening quote.
    quote: usize,
    /// Byte offset where the CSV reader ended the record.
    end: usize,
}

/// What the reader collected: the header, the rows worth parsing, and the rows refused
/// before parsing (NUL characters).
#[derive(Default)]
struct Records {
    headers: Option<Vec<String>>,
    rows: Vec<Row>,
    rejected: Vec<RejectedRow>,
}

impl Records {
    /// Reads the records of `text[start..]` (the first one is the header if none was read
    /// yet), stopping at the first record with a quote left open, which it returns.
    fn read_from(
        &mut self,
        text: &str,
        start: usize,
        lines: &Lines<'_>,
    ) -> Result<Option<BrokenRecord>, CsvError> {
        let mut reader = ::csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(&text.as_bytes()[start..]);
        let mut record = ::csv::StringRecord::new();
        while reader
            .read_record(&mut record)
            .map_err(|err| malformed(&err))?
        {
            let offset = record.position().map_or(0, |p| p.byte() as usize);
            let begin = lines.content_start(start + offset);
            if let Some(quote) = open_quote(&text[begin..]) {
                if self.headers.is_none() {
                    return Err(CsvError::Malformed {
                        line: lines.line_at(begin + quote),
                        message: "the header opens a quoted cell that is never closed".into(),
                    });
                }
                return Ok(Some(BrokenRecord {
                    line: lines.line_at(begin),
                    quote: begin + quote,
                    end: start + reader.position().byte() as usize,
                }));
            }
            let Some(headers) = &self.headers else {
                self.headers = Some(record.iter().map(|h| h.trim().to_owned()).collect());
                continue;
            };
            if record.iter().all(|cell| cell.trim().is_empty()) {
                continue;
            }
            let line = lines.line_at(begin);
            if let Some(index) = record.iter().position(|cell| cell.contains('\0')) {
                let column = headers
                    .get(index)
                    .map_or_else(|| format!("column {}", index + 1), Clone::clone);
                self.rejected.push(RejectedRow {
                    line,
                    reason: format!("{column}: {}", domain::TextProblem::Nul),
                });
                continue;
            }
            self.rows.push(Row {
                line,
                cells: record.iter().map(str::to_owned).collect(),
            });
        }
        Ok(None)
    }
}

/// Where a quote left open starts in `record` (the text from a record's start on), by the
/// CSV reader's rules (RFC 4180 as the `csv` crate reads it: a quote opens a quoted cell
/// only as a cell's first character, `""` inside one is a literal quote, a line break
/// outside quotes ends the record). A quoted cell is left open when it is never closed,
/// or when text other than spaces follows its closing quote: the sign that it was closed
/// by the opening quote of a cell in a later row.
fn open_quote(record: &str) -> Option<usize> {
    let bytes = record.as_bytes();
    let mut open = None;
    let mut closed = None;
    let mut at_cell_start = true;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if open.is_some() {
            if byte == b'"' {
                if bytes.get(index + 1) == Some(&b'"') {
                    index += 1;
                } else {
                    closed = open.take();
                }
            }
            index += 1;
            continue;
        }
        match byte {
            b',' => {
                at_cell_start = true;
                closed = None;
            }
            b'\n' | b'\r' => return None,
            b' ' | b'\t' if closed.is_some() => {}
            _ if closed.is_some() => return closed,
            b'"' if at_cell_start => {
                open = Some(index);
                at_cell_start = false;
            }
            _ => at_cell_start = false,
        }
        index += 1;
    }
    open
}

/// A row's text problem in the words of the file: the column's name when `column` knows
/// the field, the product field's name otherwise.
pub(crate) fn text_reason(
    err: &domain::TextFieldError,
    column: impl Fn(&domain::TextFieldError) -> Option<&'static str>,
) -> String {
    match column(err) {
        Some(column) => format!("{column}: {}", err.problem),
        None => err.to_string(),
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

    fn rejected(import: &CsvImport) -> Vec<(u64, &str)> {
        import
            .rejected
            .iter()
            .map(|row| (row.line, row.reason.as_str()))
            .collect()
    }

    fn titles(import: &CsvImport) -> Vec<&str> {
        import.products.iter().map(|p| p.title.as_str()).collect()
    }

    #[test]
    fn a_row_with_a_nul_is_rejected_by_line_and_column() {
        let csv = "ID,Name,Description\n1,Good,ok\n2,Bad,\"a\0b\"\n3,Also good,ok\n";
        let import = parse_catalog(csv.as_bytes(), "USD").unwrap();
        assert_eq!(titles(&import), ["Good", "Also good"]);
        assert_eq!(
            rejected(&import),
            [(3, "Description: must not contain NUL characters (U+0000)")]
        );
    }

    #[test]
    fn an_unclosed_quote_rejects_its_row_and_reading_goes_on() {
        let csv =
            "ID,Name,Regular price\n1,First,1\n2,\"Broken,2\n3,Third,3\n4,\"Multi\nline\",4\n";
        let import = parse_catalog(csv.as_bytes(), "USD").unwrap();
        assert_eq!(titles(&import), ["First", "Third", "Multi\nline"]);
        let reasons = rejected(&import);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert_eq!(reasons[0].0, 3);
        assert!(reasons[0].1.contains("never closed"), "{reasons:?}");
        assert!(reasons[0].1.contains("line 4"), "{reasons:?}");

        // In the last row, and after a multi-line cell of the same row.
        let csv = "ID,Name,Description\n1,First,x\n2,Second,\"a\nb\",\"oops\n";
        let import = parse_catalog(csv.as_bytes(), "USD").unwrap();
        assert_eq!(titles(&import), ["First"]);
        assert_eq!(rejected(&import)[0].0, 3);
        assert!(rejected(&import)[0].1.contains("opened on line 4"));

        // A quote inside an unquoted cell is text, as the CSV reader reads it.
        let csv = "ID,Name\n1,5\" screen\n2,Second\n";
        let import = parse_catalog(csv.as_bytes(), "USD").unwrap();
        assert_eq!(titles(&import), ["5\" screen", "Second"]);
        assert!(import.rejected.is_empty());

        assert!(matches!(
            parse_catalog(b"ID,\"Name\n1,x\n", "USD"),
            Err(CsvError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn each_open_quote_costs_its_own_row_only() {
        let mut csv = String::from("ID,Name\n1,First\n");
        for id in 2..40 {
            csv.push_str(&format!("{id},\"open\n"));
        }
        let import = parse_catalog(csv.as_bytes(), "USD").unwrap();
        assert_eq!(titles(&import), ["First"]);
        assert_eq!(
            import.rejected.len(),
            38,
            "each open quote costs its own row only"
        );
    }

    #[test]
    fn fields_over_their_cap_reject_the_row_naming_the_column() {
        let long_title = "t".repeat(domain::text::TITLE_MAX_CHARS + 1);
        let long_description = "d".repeat(domain::text::DESCRIPTION_HTML_MAX_CHARS + 1);
        let csv = format!(
            "ID,Type,SKU,Name,Description,Parent,Attribute 1 name,Attribute 1 value(s)\n\
1,simple,A,{long_title},x,,,\n\
2,simple,B,Fine,{long_description},,,\n\
3,variable,C,Shirt,x,,Size,S\n\
4,variation,C-S,{long_title},,C,Size,S\n\
5,simple,E,Kept,x,,,\n"
        );
        let import = parse_catalog(csv.as_bytes(), "USD").unwrap();
        assert_eq!(titles(&import), ["Shirt", "Kept"]);
        assert_eq!(
            rejected(&import),
            [
                (2, "Name: must be at most 500 characters (it has 501)"),
                (
                    3,
                    "Description: must be at most 100000 characters (it has 100001)"
                ),
                (5, "Name: must be at most 500 characters (it has 501)"),
            ]
        );

        let csv = format!(
            "Handle,Title,Body (HTML),Option1 Name,Option1 Value,Variant Price,Image Src\n\
shirt,Shirt,x,Size,S,5,\n\
shirt,,,,{long_description},5,\n\
shirt,,,,M,5,https://x/{long_description}\n\
shirt,,,,L,5,\n\
long,{long_title},x,,,5,\n"
        );
        let import = parse_catalog(csv.as_bytes(), "USD").unwrap();
        assert_eq!(titles(&import), ["Shirt"]);
        assert_eq!(import.products[0].variants.len(), 2);
        let reasons = rejected(&import);
        assert_eq!(
            reasons.iter().map(|r| r.0).collect::<Vec<_>>(),
            [3, 4, 6],
            "{reasons:?}"
        );
        assert!(
            reasons[0].1.starts_with("Option Value: must be at most"),
            "{reasons:?}"
        );
        assert!(reasons[1].1.starts_with("Image Src: must be at most 4096"));
        assert!(reasons[2].1.starts_with("Title: must be at most 500"));
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
