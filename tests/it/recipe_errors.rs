//! Bad recipes: one test per kind of problem. Each must exit 2, point at the line and column of
//! its cause, name the error code, and leave no output behind.

use crate::common::*;

/// Builds a bad recipe and checks the failure; returns stderr for further checks.
fn fails(f: &Fixture, code: &str, at: &str) -> String {
    checked_failure(f, &f.build(), code, at)
}

/// Checks the output `o` of a failed build of `f`: exit 2, `code` at `at`, nothing written.
fn checked_failure(f: &Fixture, o: &std::process::Output, code: &str, at: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, got {:?}:\n{err}", o.status);
    assert!(err.contains(code), "expected error code {code} in:\n{err}");
    assert!(err.contains(&format!("kiln.kdl:{at}]")), "expected location kiln.kdl:{at} in:\n{err}");
    assert!(!f.out().exists(), "a failed build left {}", f.out().display());
    let leftovers: Vec<_> = std::fs::read_dir(f.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".kiln"))
        .collect();
    assert!(leftovers.is_empty(), "a failed build left staging files: {leftovers:?}");
    err
}

fn fixture(recipe: &str) -> Fixture {
    let f = Fixture::new();
    f.recipe(recipe).write("app.txt", "app\n");
    f
}

#[test]
fn unknown_node() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    coppy \"app.txt\" \"/app\"\n}\n");
    let err = fails(&f, "kiln::recipe::unknown_node", "4:5");
    assert!(err.contains("valid nodes in `image`"), "{err}");
}

#[test]
fn wrong_value_type() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"app.txt\" \"/app\" mode=\"0644\"\n}\n");
    let err = fails(&f, "kiln::recipe::type", "4:27");
    assert!(err.contains("expected an integer, found a string"), "{err}");
}

#[test]
fn missing_required_node() {
    let f = fixture("kiln 1\nimage \"a\" {\n    copy \"app.txt\" \"/app\"\n}\n");
    let err = fails(&f, "kiln::recipe::missing_node", "2:7");
    assert!(err.contains("has no `base`"), "{err}");
    let f = fixture("image \"a\" {\n    base \"scratch\"\n}\n");
    fails(&f, "kiln::recipe::missing_node", "1:1");
}

#[test]
fn unknown_platform() {
    let f = fixture(
        "kiln 1\ndefaults {\n    platforms \"linux/amd64\" \"linux/riscv\"\n}\nimage \"a\" {\n    base \"scratch\"\n}\n",
    );
    let err = fails(&f, "kiln::recipe::platform", "3:29");
    assert!(err.contains("linux/arm/v7"), "help lists the supported platforms:\n{err}");
}

#[test]
fn missing_source_file() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"nope.txt\" \"/nope\"\n}\n");
    fails(&f, "kiln::plan::missing_source", "4:10");
}

#[test]
fn missing_per_platform_source_names_the_platform() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"dist/{arch}/app\" \"/app\"\n}\n");
    f.write("dist/amd64/app", "x").write("dist/arm64/app", "x");
    let err = fails(&f, "kiln::plan::missing_source", "4:10");
    assert!(err.contains("dist/arm/app") && err.contains("linux/arm/v7"), "{err}");
    assert!(!err.contains("dist/amd64/app` not found"), "{err}");
}

#[test]
fn duplicate_destination() {
    let f = fixture(
        "kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"app.txt\" \"/etc/app\"\n    file \"/etc/app\" \"again\"\n}\n",
    );
    // miette heads the report with the earlier of the two labelled places.
    let err = fails(&f, "kiln::plan::duplicate_destination", "4:20");
    assert!(err.contains("first written here") && err.contains("second write here"), "both places are shown:\n{err}");
    assert!(err.contains(" 5 |     file \"/etc/app\""), "the second place is shown:\n{err}");
}

#[test]
fn destination_not_absolute() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"app.txt\" \"etc/app\"\n}\n");
    fails(&f, "kiln::recipe::relative_path", "4:20");
}

#[test]
fn destination_escaping_the_root() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"app.txt\" \"/etc/../../app\"\n}\n");
    fails(&f, "kiln::recipe::path_escape", "4:20");
}

#[test]
fn invalid_kdl_syntax() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\n}\n");
    fails(&f, "kiln::recipe::syntax", "3:10");
}

#[test]
fn all_problems_are_reported_at_once() {
    let f = fixture(
        "kiln 1\nfrob 1\nimage \"a\" {\n    base \"scratch\"\n    platforms \"linux/amd46\"\n    copy \"nope.txt\" \"/nope\"\n}\n",
    );
    let err = fails(&f, "kiln::recipe::unknown_node", "2:1");
    assert!(err.contains("has 3 problems"), "{err}");
    assert!(err.contains("kiln.kdl:5:15]") && err.contains("kiln.kdl:6:10]"), "{err}");
}

#[test]
fn a_failed_build_keeps_the_previous_layout() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"app.txt\" \"/app\"\n}\n");
    summary(&f.build());
    let before = std::fs::read(f.out().join("index.json")).unwrap();
    f.recipe("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"gone.txt\" \"/app\"\n}\n");
    assert_eq!(f.build().status.code(), Some(2));
    assert_eq!(std::fs::read(f.out().join("index.json")).unwrap(), before);
}

#[test]
fn refuses_to_replace_a_directory_that_is_not_a_layout() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"app.txt\" \"/app\"\n}\n");
    f.write("out/precious.txt", "keep me");
    let o = f.build();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not an OCI image layout"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(f.out().join("precious.txt")).unwrap(), "keep me");
}

#[test]
fn unreadable_recipe_file_is_an_error() {
    let f = Fixture::new();
    let o = kiln().current_dir(f.path()).args(["plan", "-f", "missing.kdl"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read recipe missing.kdl"), "{}", stderr(&o));
}

#[test]
fn mode_written_in_decimal() {
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"app.txt\" \"/app\" mode=755\n}\n");
    let err = fails(&f, "kiln::recipe::mode", "4:27");
    assert!(err.contains("mode=0o755"), "the help shows the octal form:\n{err}");
}

/// Like [`fails`], for hostile recipes: kiln must also finish quickly and say little. The
/// budget is CPU time, which the tests running beside this one do not add to.
fn refused(f: &Fixture, code: &str, at: &str, max_stderr: usize) -> String {
    let (o, took) = output_and_cpu_time(&mut f.build_cmd());
    let err = checked_failure(f, &o, code, at);
    assert!(took < std::time::Duration::from_secs(20), "kiln took {took:?} of CPU time");
    assert!(err.len() <= max_stderr, "{} bytes of errors:\n{}", err.len(), &err[..err.len().min(4000)]);
    err
}

#[test]
fn nesting_deeper_than_32_levels_is_refused_at_its_brace() {
    // 1,300 levels (a 3.9 KB file) used to overflow the KDL parser's stack: SIGABRT, exit 134.
    let f = fixture(&format!("kiln 1\n{}{}\n", "a{".repeat(1300), "}".repeat(1300)));
    let err = refused(&f, "kiln::recipe::too_deep", "2:66", 8_000);
    assert!(err.contains("the recipe is nested more than 32 levels deep"), "{err}");
    assert!(err.contains("level 33 starts here"), "{err}");
    // Braces in strings and comments are text, however many there are.
    let braces = "{".repeat(2000);
    let f = fixture(&format!(
        "kiln 1\nimage \"a\" {{\n    base \"scratch\" // {braces}\n    file \"/a\" \"{braces}\"\n    file \"/b\" #\"{braces}\"#\n    file \"/c\" \"\"\"\n    {braces}\n    \"\"\"\n}}\n"
    ));
    summary(&f.build());
}

#[test]
fn commented_out_blocks_nest_three_deep_at_most() {
    // The KDL parser reads a commented-out block twice: each one inside another doubled its
    // time, and a 735-byte recipe found by the fuzzer took 2 s (twenty more `/- b {` lines, an
    // hour).
    let recipe =
        |inner: &str| format!("kiln 1\nimage \"a\" {{\n    base \"scratch\"\n    file \"/a\" \"a\"\n{inner}}}\n");
    let nested = |n: usize| format!("{}{}", "/- b {x\n".repeat(n), "}\n".repeat(n));
    summary(&fixture(&recipe(&nested(3))).build());
    summary(&fixture(&recipe(&format!("file \"/b\" \"b\" /- {{\n{}}}\n", nested(2)))).build());
    let f = fixture(&recipe(&nested(4)));
    let err = refused(&f, "kiln::recipe::too_deep", "8:6", 4_000);
    assert!(err.contains("commented-out blocks nested more than 3 levels deep"), "{err}");
    assert!(err.contains("commented-out block 4 starts here"), "{err}");
    // `node /- { … }` comments out a block too; unclosed ones count as well.
    let f = fixture(&recipe(&"a /- {\n".repeat(30)));
    refused(&f, "kiln::recipe::too_deep", "8:6", 4_000);
    let f = fixture(include_str!("../data/fuzz-slashdash-timeout.kdl"));
    refused(&f, "kiln::recipe::too_deep", "18:6", 4_000);
    // A `/-` followed by something the parser cannot read still comments out the node's
    // block for the parser, whose recovery then took 7 s over 1.2 kB (found by the fuzzer).
    let f = fixture(include_str!("../data/fuzz-slashdash-after-error-timeout.kdl"));
    refused(&f, "kiln::recipe::too_deep", "24:17", 4_000);
}

#[test]
fn braces_the_scan_takes_for_a_comment_cannot_overflow_the_parser() {
    // After an error the KDL parser may read the `{` of a `//` comment as blocks: 5,000 of
    // them overflowed its stack (SIGABRT, exit 134; the long fuzz run died of it). 8,192 are
    // read, on the parser's own large stack (a debug build overflowed 8 MiB at 512); the
    // 8,193rd is refused where it is.
    let recipe = |n: usize| format!("kiln 1\n# 0.//{}\n", "{".repeat(n));
    let f = fixture(&recipe(8192));
    let err = refused(&f, "kiln::recipe::syntax", "2:1", 40_000);
    assert!(err.contains("`#` is not a KDL keyword"), "{err}");
    let f = fixture(&recipe(9000));
    let err = refused(&f, "kiln::recipe::too_deep", "2:8199", 40_000);
    assert!(err.contains("the recipe has more than 8192 `{`"), "{err}");
    assert!(err.contains("`{` number 8193 is here"), "{err}");
}

#[test]
fn lines_and_recipes_too_long_to_render_are_refused() {
    // An error past column 65,535 used to panic inside miette: exit 101.
    let f = fixture(&format!(
        "kiln 1\nimage \"a\" {{\n    base \"scratch\"\n{}coppy \"app.txt\" \"/app\"\n}}\n",
        " ".repeat(70_000)
    ));
    let err = refused(&f, "kiln::recipe::too_long", "4:1", 4_000);
    assert!(err.contains("line 4 is 70022 bytes long"), "{err}");
    assert!(err.contains("kiln reads lines of up to 16000 bytes"), "{err}");
    let filler = format!("/- file \"/x\" \"{}\"\n", "y".repeat(1_000));
    let text = format!("kiln 1\nimage \"a\" {{\n    base \"scratch\"\n}}\n{}", filler.repeat(300));
    let f = fixture(&text);
    let err = refused(&f, "kiln::recipe::too_long", "262:1", 4_000);
    assert!(err.contains(&format!("the recipe is {} bytes long", text.len())), "{err}");
    assert!(err.contains("kiln reads recipes of up to 262144 bytes (256 KiB)"), "{err}");
}

#[test]
fn many_problems_render_quickly_and_briefly() {
    // 40,000 problems used to render as 13 MB, in minutes; now the first 50 are shown.
    let f = fixture(&format!("kiln 1\nimage \"a\" {{\n    base \"scratch\"\n{}}}\n", "x\n".repeat(40_000)));
    let err = refused(&f, "kiln::recipe::unknown_node", "4:1", 40_000);
    assert!(err.contains("has 40000 problems") && err.contains("kiln.kdl:53:1]"), "{err}");
    assert!(!err.contains("kiln.kdl:54:1]"), "{err}");
    assert!(err.trim_end().ends_with("39950 more problems not shown: fix the ones above and run kiln again"), "{err}");
    // Thirty unclosed blocks: each of the parser's errors spans the rest of the file, and is
    // shown on its first line only (a 447-byte file used to give 53 KB of errors).
    let f = fixture(&format!("kiln 1\n{}{}", "a {\n".repeat(30), "b 1\n".repeat(80)));
    let err = refused(&f, "kiln::recipe::syntax", "2:3", 12_000);
    assert!(err.contains("No closing '}' for child block"), "{err}");
}

#[test]
fn unknown_nodes_suggest_the_closest_valid_one() {
    let f = fixture(
        "kiln 1\ndefaults {\n    platfroms \"linux/amd64\"\n}\nlayers {\n    buget 3\n    layer \"l\" {\n        paht \"/a/\"\n        path \"/b/\"\n    }\n}\nimage \"a\" {\n    base \"scratch\"\n    coppy \"app.txt\" \"/app\"\n    rust \"x\" {\n        featurs \"a\"\n    }\n    colour \"blue\"\n}\nimgae \"b\" {\n}\n",
    );
    let err = fails(&f, "kiln::recipe::unknown_node", "3:5");
    for (at, close) in [
        ("3:5", "platforms"),
        ("6:5", "budget"),
        ("8:9", "path"),
        ("14:5", "copy"),
        ("16:9", "features"),
        ("20:1", "image"),
    ] {
        let shown = err
            .split("Error: ")
            .find(|e| e.contains(&format!("kiln.kdl:{at}]")))
            .unwrap_or_else(|| panic!("{at}:\n{err}"));
        assert!(shown.contains(&format!("did you mean `{close}`?")), "{at}:\n{shown}");
    }
    let colour = err.split("Error: ").find(|e| e.contains("`colour`")).unwrap();
    assert!(colour.contains("not a recipe node here") && !colour.contains("did you mean"), "{colour}");
}

#[test]
fn a_malformed_number_is_explained_at_the_value() {
    // Used to be "invalid KDL: Expected property value", highlighting the file from its start.
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \"app.txt\" \"/app\" mode=0o999\n}\n");
    let err = fails(&f, "kiln::recipe::syntax", "4:32");
    assert!(err.contains("`0o999` is not an octal number"), "{err}");
    assert!(err.contains("`9` is not an octal digit"), "{err}");
    assert!(err.contains("the digits 0-7"), "{err}");
    assert!(!err.contains("kiln.kdl:1:1]"), "{err}");
    let f = fixture("kiln 1\nimage \"a\" {\n    base \"scratch\"\n    expose 8080 0x1f90g\n}\n");
    let err = fails(&f, "kiln::recipe::syntax", "4:17");
    assert!(err.contains("`0x1f90g` is not a hexadecimal number"), "{err}");
}

#[test]
fn copy_takes_exclude_patterns() {
    let f = fixture(
        "kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \".\" \"/app/\" {\n        exclude \"target/\" \"*.log\" \"docs/**/*.tmp\"\n        exclude \"!keep.log\"\n    }\n}\n",
    );
    let o = kiln().current_dir(f.path()).args(["plan", "-f", "kiln.kdl"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let f = fixture(
        "kiln 1\nimage \"a\" {\n    base \"scratch\"\n    copy \".\" \"/app/\" {\n        exclude \"target/\" \"\"\n        exclude \"a\\tb\"\n        exclude\n    }\n}\n",
    );
    let err = fails(&f, "kiln::recipe::exclude_pattern", "5:27");
    assert!(err.contains("empty exclude pattern") && err.contains("has 3 problems"), "{err}");
    assert!(err.contains("kiln::recipe::control_character") && err.contains("kiln.kdl:6:17]"), "{err}");
    assert!(err.contains("`exclude` needs at least one pattern") && err.contains("kiln.kdl:7:9]"), "{err}");
}
