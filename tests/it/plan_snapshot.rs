//! The plan is the contract between stages: its JSON form for `examples/hello` is snapshot-
//! tested, so any change to what kiln decides shows up as a reviewed snapshot diff
//! (`cargo insta review`, or `INSTA_UPDATE=always cargo test --test it plan_snapshot::`).

use crate::common::*;

#[test]
fn hello_plan_json() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let json = run(kiln().current_dir(&root).args(["plan", "--json", "-f", "examples/hello/kiln.kdl"]));
    insta::assert_snapshot!("hello_plan_json", json);
}

#[test]
fn hello_plan_text() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text =
        run(kiln().current_dir(&root).args(["plan", "-f", "examples/hello/kiln.kdl", "--platform", "linux/arm/v7"]));
    insta::assert_snapshot!("hello_plan_text_armv7", text);
}
