//! Compile-fail tests for the derive macros: each case under `tests/ui`
//! must fail with the diagnostic checked in next to it, and each case under
//! `tests/ui-pass` must compile and run.
//!
//! Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test --test derive_ui`, then read every diff.

#[test]
fn derive_ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
    t.pass("tests/ui-pass/*.rs");
}
