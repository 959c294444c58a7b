//! The OpenAPI document against its committed copy (docs/openapi.json), so
//! that any change to the API's surface is a visible diff in review.
//! After an intended change: `JETPACK_BLESS=1 cargo test --lib openapi`.

use std::path::Path;

#[test]
fn the_openapi_document_matches_its_committed_copy() {
    let (_, document) = super::routes();
    let mut generated = serde_json::to_string_pretty(&document).expect("the document as JSON");
    generated.push('\n');
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    if std::env::var_os("JETPACK_BLESS").is_some() {
        std::fs::write(&committed, &generated).expect("writing docs/openapi.json");
        return;
    }
    let expected = std::fs::read_to_string(&committed).unwrap_or_default();
    if expected != generated {
        let first = expected
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(generated.lines().count()));
        panic!(
            "the OpenAPI document differs from docs/openapi.json from line {}:\n  committed: {:?}\n  generated: {:?}\n\
             if the change is intended, run JETPACK_BLESS=1 cargo test --lib openapi and commit the file",
            first + 1,
            expected.lines().nth(first),
            generated.lines().nth(first)
        );
    }
}
