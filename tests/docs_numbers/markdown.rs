//! Reading numbers out of the markdown documents: sections by heading
//! number, table cells by row label and column header, numbers after a
//! phrase, quantities with units.

use std::time::Duration;

/// The text of the section whose heading starts with `heading` (for
/// example `"## 6."` or `"### 2.6"`), up to the next heading of the same or
/// a higher level.
pub(crate) fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let start = doc
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain([0])
        .find(|&i| doc[i..].starts_with(heading) && doc[i + heading.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no section `{heading}` in the document"));
    let body = &doc[start..];
    let mut end = body.len();
    let mut offset = body.find('\n').map_or(body.len(), |i| i + 1);
    let mut in_code = false;
    for line in body[offset..].split_inclusive('\n') {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !in_code && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            end = offset;
            break;
        }
        offset += line.len();
    }
    &body[..end]
}

/// The cells of a markdown table line, trimmed, with backticks removed.
pub(crate) fn cells(line: &str) -> Vec<String> {
    let line = line.trim();
    let inner = line.strip_prefix('|').unwrap_or(line);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner
        .split('|')
        .map(|c| c.trim().replace('`', ""))
        .collect()
}

/// The cell in column `column` (by header) of the row one of whose cells is
/// exactly `label`, in the first table of `text` that has such a row.
pub(crate) fn table_cell(text: &str, label: &str, column: &str, what: &str) -> String {
    let mut header: Option<Vec<String>> = None;
    let mut previous_was_table = false;
    for line in text.lines() {
        let is_table = line.trim_start().starts_with('|');
        if !is_table {
            previous_was_table = false;
            header = None;
            continue;
        }
        let row = cells(line);
        if !previous_was_table {
            header = Some(row);
            previous_was_table = true;
            continue;
        }
        previous_was_table = true;
        if row.iter().any(|c| c == label) {
            let header = header.as_ref().expect("a table has a header");
            let col = header.iter().position(|h| h == column).unwrap_or_else(|| {
                panic!("{what}: the table with row `{label}` has no column `{column}`")
            });
            return row
                .get(col)
                .unwrap_or_else(|| panic!("{what}: row `{label}` has no cell in column `{column}`"))
                .clone();
        }
    }
    panic!("{what}: no table row labelled `{label}`")
}

/// The integers of `text` in order (`1,200` is 1200; `2⁻³²` is 2).
pub(crate) fn integers(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut digits = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let separator =
            c == ',' && !digits.is_empty() && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !separator && !digits.is_empty() {
            out.push(digits.parse().expect("digits"));
            digits.clear();
        }
    }
    if !digits.is_empty() {
        out.push(digits.parse().expect("digits"));
    }
    out
}

/// `text` with every run of whitespace made one space, so that phrases
/// are found wherever the lines break.
pub(crate) fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The number right after the first `prefix` in `text` (thousands
/// separators allowed), or a panic naming `what`.
pub(crate) fn number_after(text: &str, prefix: &str, what: &str) -> u64 {
    let text = &flat(text);
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{what}: `{prefix}` not found"));
    let rest = &text[at + prefix.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ','))
        .unwrap_or(rest.len());
    rest[..end]
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{what}: no number after `{prefix}`"))
}

/// A default as the documents write it: `100 ms`, `10 s`, `1 MiB`,
/// `16 × 1400 bytes`, `256`; in milliseconds, bytes or a plain count.
pub(crate) fn quantity(text: &str, what: &str) -> u128 {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == ' ' || c == '×'))
        .unwrap_or(text.len());
    let factors: Vec<u128> = text[..end]
        .split('×')
        .map(|f| {
            f.trim()
                .replace(',', "")
                .parse()
                .unwrap_or_else(|_| panic!("{what}: `{text}` does not start with a number"))
        })
        .collect();
    let n: u128 = factors.iter().product();
    let unit = text[end..]
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    n * match unit {
        "ms" => 1,
        "s" => 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        _ => 1,
    }
}

pub(crate) fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The first integer of `body`.
pub(crate) fn integers_of_body(body: &str, what: &str) -> usize {
    *integers(body)
        .first()
        .unwrap_or_else(|| panic!("{what}: no number")) as usize
}
