//! `docs/WIRE_TYPES.md`: field sizes (sections 2 to 12), golden
//! fingerprints and schema summary sizes (13).

use legume::prelude::*;
use legume::SchemaFingerprint;

use crate::markdown::{integers_of_body, number_after, section, table_cell};
use crate::wire::{encoded, Blob};
use crate::{PROTOCOL, SCHEMA_FINGERPRINT_TEST, WIRE_TYPES};

#[test]
fn golden_fingerprints() {
    let lines = section(WIRE_TYPES, "### 13.2");
    let start = lines.find("```text").expect("13.2 has the golden lines") + 7;
    let block = &lines[start..start + lines[start..].find("```").expect("closed")];
    let hashes = section(WIRE_TYPES, "### 13.3");
    let mut factory_bytes = Vec::new();
    for line in block.lines().filter(|l| !l.is_empty()) {
        let id = line.split(' ').next().expect("an id");
        let row = |column: &str| {
            table_cell(
                hashes,
                id,
                column,
                &format!("WIRE_TYPES.md 13.3, message {id}, column `{column}`"),
            )
        };
        // Messages without a row (the `opaque` example) are not golden.
        if !hashes.lines().any(|l| l.starts_with(&format!("| {id} |"))) {
            continue;
        }
        assert!(
            SCHEMA_FINGERPRINT_TEST.contains(line),
            "WIRE_TYPES.md 13.2: golden line `{line}` is not the one tests/schema_fingerprint.rs derives"
        );
        let fp = SchemaFingerprint::of_text(line);
        assert_eq!(
            row("message fingerprint"),
            format!("{:016x}", fp.as_u64()),
            "WIRE_TYPES.md 13.3, message {id}: fingerprint"
        );
        assert_eq!(
            row("compact"),
            format!("{:08x}", fp.compact()),
            "WIRE_TYPES.md 13.3, message {id}: compact fingerprint"
        );
        factory_bytes.push(id.parse::<u8>().expect("a u8 id"));
        factory_bytes.extend_from_slice(&fp.as_u64().to_be_bytes());
    }
    let what = "WIRE_TYPES.md 13.3, `the factory fingerprint is`";
    let at = hashes.find("the factory fingerprint is `").expect(what) + 28;
    let doc = &hashes[at..at + 16];
    assert_eq!(
        doc,
        format!("{:016x}", legume::schema::fnv1a_64(&factory_bytes)),
        "{what}"
    );
}

#[derive(Debug, Message)]
#[message(id = 21)]
struct Second;

#[derive(Debug, Message)]
#[message(id = 22)]
struct Third;

#[test]
fn schema_summary_sizes() {
    let what = "WIRE_TYPES.md 13.4, `The summary is `A + Bn` bytes ... and C bytes without`";
    let text = section(WIRE_TYPES, "### 13.4");
    let base = number_after(text, "The summary is `", what) as usize;
    let per = number_after(text, &format!("The summary is `{base} + "), what) as usize;
    let without = number_after(text, "messages with the list and ", what) as usize;
    let mut f = MessageFactory::new();
    for n in 1..=3 {
        match n {
            1 => f.register::<Blob>(),
            2 => f.register::<Second>(),
            _ => f.register::<Third>(),
        }
        .expect("free id");
        let summary = f.schema_summary();
        assert_eq!(
            summary.encoded_len(),
            base + per * n,
            "{what}: with {n} messages the doc gives {base} + {per}·{n}"
        );
        assert_eq!(
            summary.without_entries().encoded_len(),
            without,
            "{what}: without the list"
        );
    }
    // PROTOCOL.md 2.3: the most messages whose list fits in the extension.
    let what = "PROTOCOL.md 2.3, `fits in the N bytes; with more than M message types`";
    let text = section(PROTOCOL, "### 2.3");
    let room = number_after(text, "fits in the ", what) as usize;
    let most = number_after(text, "with more than ", what) as usize;
    assert!(
        base + per * most <= room && base + per * (most + 1) > room,
        "{what}: {room} bytes hold the list of {} messages, not {most}",
        (room - base) / per
    );
}

#[test]
fn field_sizes() {
    // Signed and unsigned integers of one width take the same bytes.
    for (unsigned, signed) in [
        (encoded(&0u8), encoded(&0i8)),
        (encoded(&0u16), encoded(&0i16)),
        (encoded(&0u32), encoded(&0i32)),
        (encoded(&0u64), encoded(&0i64)),
        (encoded(&0u128), encoded(&0i128)),
    ] {
        assert_eq!(unsigned, signed);
    }
    for (heading, prefix, code) in [
        ("## 2.", "`u8`, `i8`: ", encoded(&0u8)),
        ("## 2.", "`u16`, `i16`: ", encoded(&0u16)),
        ("## 2.", "`u32`, `i32`: ", encoded(&0u32)),
        ("## 2.", "`u64`, `i64`: ", encoded(&0u64)),
        ("## 2.", "`u128`, `i128`: ", encoded(&0u128)),
        ("## 3.", "`f32`: ", encoded(&0f32)),
        ("## 3.", "`f64`: ", encoded(&0f64)),
        ("## 4.", "", encoded(&true)),
        ("## 5.", "", encoded(&'x')),
        ("## 9.", "", encoded(&None::<u8>)),
    ] {
        let text = section(WIRE_TYPES, heading);
        let title = text.lines().next().unwrap_or(heading);
        let doc = if prefix.is_empty() {
            // The section's first number after its heading line.
            let body = text.split_once('\n').map_or("", |(_, b)| b);
            integers_of_body(body, title)
        } else {
            number_after(text, prefix, title) as usize
        };
        assert_eq!(
            doc, code,
            "WIRE_TYPES.md `{title}`, `{prefix}N`: the doc says {doc} bytes, the code writes {code}"
        );
    }

    let what = "WIRE_TYPES.md section 6, String: `length in bytes` row";
    let prefix = table_cell(
        section(WIRE_TYPES, "## 6."),
        "length in **bytes**, u16",
        "bytes",
        what,
    );
    assert_eq!(
        prefix.parse::<usize>().ok(),
        Some(encoded(&"ab".to_owned()) - 2),
        "{what}"
    );
    let what = "WIRE_TYPES.md section 8, Vec: `element count` row";
    let count = table_cell(
        section(WIRE_TYPES, "## 8."),
        "element count, varint (section 12)",
        "bytes",
        what,
    );
    assert_eq!(
        count,
        format!(
            "{}-{}",
            encoded(&Vec::<u8>::new()),
            legume::varint::varint_len(u32::MAX)
        ),
        "{what}"
    );
    let what = "WIRE_TYPES.md section 12, `0 to N take one byte`";
    let one = number_after(section(WIRE_TYPES, "## 12."), "0 to ", what) as u32;
    assert!(
        legume::varint::varint_len(one) == 1 && legume::varint::varint_len(one + 1) == 2,
        "{what}: the doc says {one}"
    );
}
