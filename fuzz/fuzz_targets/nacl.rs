//! The NaCl validator (spec/nacl.md) on arbitrary text: `parse` and
//! `check` of any input, as `POST /v1/nacls/validate` receives it, must
//! neither panic nor hang, and the verdict must be coherent: valid exactly
//! when there is no error, every error on a line of the input, with a
//! message.
//!
//! Seeds: `fuzz/seeds/nacl/` (fuzz/corpus/ is the working corpus, not kept
//! in git): `cargo fuzz run nacl fuzz/corpus/nacl fuzz/seeds/nacl --
//! -dict=fuzz/nacl.dict`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let _ = jetpack::nacl::parse(&source);
    let verdict = jetpack::nacl::check(&source);
    assert_eq!(
        verdict.valid,
        verdict.errors.is_empty(),
        "valid is {} with {} errors",
        verdict.valid,
        verdict.errors.len()
    );
    // However the checker counts lines (\n, \r\n or a lone \r), an error
    // is on one of them, or just past the end (an unexpected end of input).
    let lines = 1 + source.bytes().filter(|&b| b == b'\n' || b == b'\r').count();
    for d in &verdict.errors {
        assert!(
            d.line >= 1 && d.line as usize <= lines,
            "an error on line {} of a {lines}-line input: {}",
            d.line,
            d.message
        );
        assert!(
            d.column as usize <= source.len(),
            "an error at column {} of a {}-byte input: {}",
            d.column,
            source.len(),
            d.message
        );
        assert!(!d.message.trim().is_empty(), "an error without a message");
    }
});
