//! The numbers the documents state, read back from the code so that they
//! cannot drift: `docs/PROTOCOL.md`'s packet sizes (section 2), DATA
//! header (2.6), frame overheads (3), largest unreliable message and
//! fragment size (4), connection states and timer defaults (6), connect
//! token sizes (8.2) and the `Config` defaults quoted in its prose;
//! `docs/WIRE_TYPES.md`'s field sizes (2 to 12), golden fingerprints and
//! schema summary sizes (13); README's MTU, message size, statistics
//! window and first app type id.
//!
//! Sizes are measured on the wire: a client and a server endpoint talk
//! through plain function calls and every datagram is recorded, so only
//! public API is used and the test reads what is sent, not a constant that
//! might not be the one used. Rows are found by their label (a table cell,
//! a heading number, a backticked name), never by line number, and every
//! failure names the document, row and both values.
//!
//! The modules: `markdown` reads the documents, `wire` measures what the
//! code sends, `protocol` and `wire_types` hold the tests of those two
//! documents; README's are below.

#[path = "docs_numbers/markdown.rs"]
mod markdown;
#[path = "docs_numbers/protocol.rs"]
mod protocol;
#[path = "docs_numbers/wire.rs"]
mod wire;
#[path = "docs_numbers/wire_types.rs"]
mod wire_types;

use legume::prelude::*;
use legume::FIRST_USER_TYPE_ID;

use markdown::{flat, number_after, section};

const PROTOCOL: &str = include_str!("../docs/PROTOCOL.md");
const WIRE_TYPES: &str = include_str!("../docs/WIRE_TYPES.md");
const README: &str = include_str!("../README.md");
/// The test that pins the golden schema lines against derived messages.
const SCHEMA_FINGERPRINT_TEST: &str = include_str!("schema_fingerprint.rs");

// ---- README.md -------------------------------------------------------------------------------

#[test]
fn user_type_ids() {
    let first = usize::from(FIRST_USER_TYPE_ID);
    let what = "WIRE_TYPES.md section 1, `apps use N to 255`";
    assert_eq!(
        number_after(section(WIRE_TYPES, "## 1."), "apps use ", what) as usize,
        first,
        "{what}"
    );
    let what = "README.md, `// N..=255; 0-M belong to the protocol`";
    let at = README
        .find("..=255; 0-")
        .unwrap_or_else(|| panic!("{what}: not found"));
    let digits = README[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .chars()
        .rev()
        .collect::<String>();
    assert_eq!(digits.parse::<usize>().ok(), Some(first), "{what}");
    assert_eq!(
        number_after(README, "..=255; 0-", what) as usize,
        first - 1,
        "{what}"
    );
}

#[test]
fn readme_defaults() {
    let c = Config::default();
    for phrase in [
        format!("at most {} bytes of UDP payload", c.mtu),
        format!(
            "a reliable message up to {} MiB (configurable)",
            c.limits.max_message_size >> 20
        ),
        format!("(`Config::stats_window`, {} s)", c.stats_window.as_secs()),
    ] {
        assert!(
            flat(README).contains(&phrase),
            "README.md should say `{phrase}` (the value of Config::default())"
        );
    }
}
