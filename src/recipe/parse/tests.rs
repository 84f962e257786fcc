//! Tests of the decoder as a whole: recipes in, the recipe or its problems (codes, messages,
//! spans, in order) out.

use super::{document, parse};
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::oci::platform::Platform;
use crate::recipe::Content;
use kdl::{KdlDocument, KdlValue};

fn codes(text: &str) -> Vec<Code> {
    match parse("kiln.kdl", text) {
        Ok(_) => vec![],
        Err(e) => e.codes(),
    }
}

#[test]
fn minimal_recipe_parses() {
    let r = parse("kiln.kdl", "kiln 1\nimage \"app\" {\n base \"scratch\"\n file \"/etc/x\" \"hi\" mode=0o600\n expose 8080 \"53/udp\"\n env A=\"1\" B=\"2\"\n}\n").unwrap();
    assert_eq!(r.images.len(), 1);
    let i = &r.images[0];
    assert_eq!(i.expose, vec!["53/udp".to_string(), "8080/tcp".to_string()]);
    assert_eq!(i.env, vec![("A".into(), "1".into()), ("B".into(), "2".into())]);
    match &i.contents[0] {
        Content::File { perms, .. } => assert_eq!(perms.mode, Some(0o600)),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn reports_all_problems_at_once() {
    let c = codes(
        "kiln 1\nfrob 1\nimage \"app\" {\n base \"scratch\"\n platforms \"linux/amd46\"\n copy \"a\" \"rel/x\"\n}\n",
    );
    assert_eq!(c, vec![Code::RecipeUnknownNode, Code::RecipePlatform, Code::RecipeRelativePath]);
}

#[test]
fn rejects_escaping_and_missing_nodes() {
    assert_eq!(
        codes("kiln 1\nimage \"a\" {\n base \"scratch\"\n copy \"x\" \"/../etc\"\n}"),
        vec![Code::RecipePathEscape]
    );
    assert_eq!(codes("image \"a\" { base \"scratch\"; }"), vec![Code::RecipeMissingNode]);
    assert_eq!(codes("kiln 1\nimage \"a\" { user \"x\"; }"), vec![Code::RecipeMissingNode]);
    assert_eq!(codes("kiln 1\nimage \"a\" { base 1; }"), vec![Code::RecipeType]);
}

#[test]
fn rust_node_parses_every_child() {
    let r = parse(
        "k",
        "kiln 1\nimage \"a\" {\n base \"scratch\"\n rust \"api\" {\n  bin \"server\"\n  features \"x\" \"y\"\n  no-default-features\n  profile \"dist\"\n  dest \"/app\"\n  manifest \"svc/Cargo.toml\"\n  target \"linux/arm/v7\" \"armv7-unknown-linux-musleabihf\"\n }\n}\n",
    )
    .unwrap();
    let Content::Rust(spec) = &r.images[0].contents[0] else { panic!("not a rust node") };
    assert_eq!(spec.package.value, "api");
    assert_eq!(spec.bin.as_ref().unwrap().value, "server");
    assert_eq!(spec.features, vec!["x".to_string(), "y".to_string()]);
    assert!(spec.no_default_features);
    assert_eq!(spec.profile, "dist");
    assert_eq!(spec.dest.as_ref().unwrap().value, "/app");
    assert_eq!(spec.manifest.as_ref().unwrap().value, "svc/Cargo.toml");
    assert_eq!(spec.targets[0].0, Platform::LinuxArmV7);
    assert_eq!(spec.targets[0].1.value, "armv7-unknown-linux-musleabihf");
    assert_eq!(
        codes("kiln 1\nimage \"a\" { base \"scratch\"; rust \"x\" { target \"linux/mips\" \"t\"; binn \"y\"; }; }"),
        vec![Code::RecipePlatform, Code::RecipeUnknownNode]
    );
}

#[test]
fn refuses_control_characters_in_paths() {
    assert_eq!(
        codes("kiln 1\nimage \"a\" { base \"scratch\"; copy \"x\\ny\" \"/a\\tb\"; }"),
        vec![Code::RecipeControlCharacter, Code::RecipeControlCharacter]
    );
}

#[test]
fn refuses_kilns_own_annotations() {
    assert_eq!(
        codes("kiln 1\nimage \"a\" { base \"scratch\"; annotation \"dev.kiln.layers\" \"x\"; }"),
        vec![Code::RecipeReservedAnnotation]
    );
}

#[test]
fn a_refused_layer_path_is_not_also_missing() {
    assert_eq!(
        codes("kiln 1\nlayers { layer \"ui\" { path \"rel/\"; }; }\nimage \"a\" { base \"scratch\"; }"),
        vec![Code::RecipeRelativePath]
    );
}

#[test]
fn normalises_paths() {
    let r = parse("k", "kiln 1\nimage \"a\" { base \"scratch\"; copy \"x\" \"/usr/./lib/../bin/\"; }").unwrap();
    match &r.images[0].contents[0] {
        Content::Copy { dest, .. } => assert_eq!(dest.value, "/usr/bin/"),
        other => panic!("unexpected {other:?}"),
    }
}

fn first(text: &str) -> Problem {
    match parse("kiln.kdl", text) {
        Ok(_) => panic!("parses: {text:?}"),
        Err(e) => e.problems[0].clone(),
    }
}

const OK: &str = "kiln 1\nimage \"a\" { base \"scratch\"; }\n";

#[test]
fn nesting_is_refused_past_32_levels_at_the_brace() {
    let blocks = |n: usize| format!("{}{}", "x{".repeat(n), "}".repeat(n));
    assert!(
        parse("k", &format!("{OK}{}", blocks(32))).unwrap_err().codes().iter().all(|c| *c == Code::RecipeUnknownNode)
    );
    // A `/-` in front of a node counts with its block: 32 blocks under it make 33 levels.
    let text = format!("{OK}/-{}", blocks(32));
    let p = first(&text);
    assert_eq!((p.code, &text[p.span.offset()..p.span.offset() + 2]), (Code::RecipeTooDeep, "{}"));
    let p = first(&format!("{OK}{}", "a{".repeat(5000)));
    assert_eq!((p.code, p.span.offset()), (Code::RecipeTooDeep, OK.len() + 65));
    assert_eq!(first(&format!("{OK}{}", "/*".repeat(40))).code, Code::RecipeTooDeep);
    assert_eq!(first(&format!("{OK}a {}b", "/- ".repeat(40))).code, Code::RecipeTooDeep);
}

#[test]
fn braces_in_strings_and_comments_do_not_nest() {
    let braces = "{".repeat(100);
    for value in [
        format!("\"{braces}\\\"\""),
        format!("\"x\\\n   {braces}\""),
        format!("#\"{braces}\"#"),
        format!("##\"\"#{braces}\"##"),
        format!("\"\"\"\n  {braces}\n  \"\"\""),
        format!("#\"\"\"\n\"\"\"{braces}\n\"\"\"#"),
    ] {
        let text = format!(
            "kiln 1\nimage \"a\" {{ base \"scratch\"; file \"/x\" {value} /* {braces} /* */ */ }} // {braces}\n"
        );
        let r = parse("k", &text).unwrap_or_else(|e| panic!("{value}: {:?}", e.problems));
        assert!(matches!(&r.images[0].contents[0], Content::File { content, .. } if content.contains(&braces)));
    }
}

#[test]
fn malformed_strings_and_comments_are_refused_before_the_parser() {
    let braces = "{".repeat(400);
    // Each of these once let the KDL parser read the braces as blocks and overflow its stack.
    for (text, at) in [
        (format!("a \"x\n{braces}\"\n"), 2),
        (format!("a \"x\\\\\n{braces}\"\n"), 2),
        (format!("a \"\"\"x {braces} \"\"\"\n"), 2),
        (format!("a \"\"\" \n{braces}\n\"\"\"\n"), 2),
        (format!("a #\"x\n{braces}\"#\n"), 2),
        (format!("a #\"\"\"\n{braces}\"\"\"#\n"), 407),
        (format!("foo\"bar {braces} \"\n"), 3),
        (format!("a \"unclosed {braces}"), 2),
        (format!("a /* unclosed\n{braces}"), 2),
    ] {
        let p = first(&text);
        assert_eq!((p.code, p.span.offset()), (Code::RecipeSyntax, at), "{text:.20}: {}", p.message);
    }
}

#[test]
fn many_syntax_errors_stop_at_the_first() {
    for text in ["}\n".repeat(5000), "a =\n".repeat(5000), "(t)\n".repeat(5000), "a \\ ".repeat(3000)] {
        let p = first(&text);
        assert_eq!(p.code, Code::RecipeSyntax);
        assert!(p.help.unwrap().contains("more than 32 syntax errors"), "{text:.10}");
    }
    // A few go to the KDL parser, which explains them.
    assert_eq!(first("kiln 1\n}\n").message, "invalid KDL: Expected end of document");
    // After an error, a string holding a brace on the same line is not read.
    assert!(first("a = \"{\"\n").message.contains("a property is written key=value"));
}

#[test]
fn long_lines_and_files_are_refused() {
    let p = first(&format!("kiln 1\n{}\n", "x".repeat(20_000)));
    assert_eq!((p.code, p.message.as_str(), p.span.offset()), (Code::RecipeTooLong, "line 2 is 20000 bytes long", 7));
    let line = format!("/- x \"{}\"\n", "y".repeat(1000));
    let p = first(&line.repeat(2000));
    assert_eq!(p.code, Code::RecipeTooLong);
    assert!(p.message.starts_with("the recipe is 2016000 bytes long"), "{}", p.message);
    assert_eq!(p.span.offset() % line.len(), 0);
    assert!(parse("k", &format!("{OK}/- x \"{}\"\n", "y".repeat(15_980))).is_ok());
}

#[test]
fn unusual_line_breaks_and_control_characters_are_refused() {
    assert_eq!(first("kiln 1\rimage").code, Code::RecipeLineBreak);
    assert_eq!(first("kiln 1\nimage \"a\u{2028}\"").code, Code::RecipeLineBreak);
    assert_eq!(first("\"\"\"\r\"\"\"").code, Code::RecipeLineBreak);
    let p = first("kiln 1\nimage \"a\u{1}\"");
    assert_eq!((p.code, p.span.offset()), (Code::RecipeSyntax, 15));
    assert!(parse("k", &OK.replace('\n', "\r\n")).is_ok());
    assert!(parse("k", &format!("\u{FEFF}{OK}")).is_ok());
}

#[test]
fn malformed_numbers_are_explained_where_they_are() {
    let text = "kiln 1\nimage \"a\" {\n base \"scratch\"\n copy \"a\" \"/a\" mode=0o999\n}\n";
    let p = first(text);
    assert_eq!(p.message, "invalid KDL: `0o999` is not an octal number");
    assert_eq!(&text[p.span.offset()..p.span.offset() + p.span.len()], "0o999");
    let p = first("kiln 1\nimage \"a\" { base \"scratch\"; expose 0x1g; }");
    assert_eq!(p.message, "invalid KDL: `0x1g` is not a hexadecimal number");
    let p = first("kiln 1\nimage \"a\" { base \"scratch\"; copy \"a\" \"/a\" mode=\n}");
    assert_eq!((p.message.as_str(), p.span.len()), ("invalid KDL: property `mode` has no value", 1));
    assert!(first("kiln 1\nimage \"a\" { user true; }").message.contains("needs a `#`"));
}

#[test]
fn unknown_nodes_suggest_the_closest_valid_one() {
    let label = |text: &str| {
        let e = parse("k", text).unwrap_err();
        e.problems.iter().find(|p| p.code != Code::RecipeMissingNode).unwrap().label.clone()
    };
    assert_eq!(label("kiln 1\ndefualts {}\nimage \"a\" { base \"scratch\"; }"), "did you mean `defaults`?");
    assert_eq!(label(&format!("kiln 1\ndefaults {{ platfroms \"linux/amd64\"; }}\n{OK}")), "did you mean `platforms`?");
    assert_eq!(label("kiln 1\nimage \"a\" { base \"scratch\"; coppy \"a\" \"/a\"; }"), "did you mean `copy`?");
    assert_eq!(
        label("kiln 1\nimage \"a\" { base \"scratch\"; rust \"x\" { featurs \"a\"; }; }"),
        "did you mean `features`?"
    );
    assert_eq!(label("kiln 1\nlayers { buget 3; }\nimage \"a\" { base \"scratch\"; }"), "did you mean `budget`?");
    assert_eq!(
        label("kiln 1\nlayers { layer \"x\" { paht \"/a\"; }; }\nimage \"a\" { base \"scratch\"; }"),
        "did you mean `path`?"
    );
    assert_eq!(label("kiln 1\nimage \"a\" { base \"scratch\"; colour \"blue\"; }"), "not a recipe node here");
    assert_eq!(
        label("kiln 1\nimage \"a\" { base \"scratch\"; copy \"a\" \"/a\" mdoe=0o644; }"),
        "did you mean `mode`?"
    );
}

#[test]
fn copy_takes_exclude_patterns() {
    let r = parse("k", "kiln 1\nimage \"a\" { base \"scratch\"; copy \".\" \"/app/\" { exclude \"target/\" \"*.log\"; exclude \"!keep.log\"; }; }").unwrap();
    let Content::Copy { exclude, .. } = &r.images[0].contents[0] else { panic!("not a copy") };
    let patterns: Vec<&str> = exclude.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(patterns, ["target/", "*.log", "!keep.log"]);
    assert_eq!(
        codes(
            "kiln 1\nimage \"a\" { base \"scratch\"; copy \".\" \"/app/\" { exclude \"\" \"!\" \"a\\nb\"; exclude; exclude 1; skip \"x\"; }; }"
        ),
        vec![
            Code::RecipeExcludePattern,
            Code::RecipeExcludePattern,
            Code::RecipeControlCharacter,
            Code::RecipeArguments,
            Code::RecipeType,
            Code::RecipeUnknownNode
        ]
    );
}

/// The same values as the KDL parser reads from the same text, or an error where it has one.
#[test]
fn multi_line_strings_read_as_kdl_reads_them() {
    let cases = [
        "\"\"\"\n  foo \\\nbar\n  baz\n  \\   \"\"\"",
        "\"\"\"\n  foo\n \n\n  bar\n  \"\"\"",
        "\"\"\"\n\tfoo\n  \"\"\"",
        "\"\"\"\r\n  foo\r\n  bar\r\n  \"\"\"",
        "\"\"\"\n  bar\\\n  \"\"\"",
        "\"\"\"\n  foo\n bar\n  \"\"\"",
        "\"\"\"\n\"\"\"",
        "\"\"\"\n\n\"\"\"",
        "\"\"\"\n  \\n\\t\\u{1F600}\\s\\\"\\\\\n  \"\"\"",
        "\"\"\"\n  \\q\n  \"\"\"",
        "\"\"\"\n  \\u{D800}\n  \"\"\"",
        "\"\"\"\n  a\\   b\n  \"\"\"",
        "\"\"\"\n  a\\\n\n  b\n  \"\"\"",
        "\"\"\"\n  a \"\" b \"\n  \"\"\"",
        "\"\"\"\n  x\n  \\\n  \"\"\"",
        "\"\"\"\n   \n  x\n  \"\"\"",
        "\"\"\"\n  x \"\"\" y\n  \"\"\"",
        "\"\"\"\n\u{3000}x\n\u{3000}\"\"\"",
        "#\"\"\"\n  x\n  \"\"\"#",
        "#\"\"\"\n  x\\n \"\"\" y\n  \"\"\"#",
        "#\"\"\"\n  x \"\"\"# y\n  \"\"\"#",
        "##\"\"\"\n  \"\"\"#\n  \"\"\"##",
    ];
    let value = |d: &KdlDocument| d.nodes()[0].entries()[0].value().clone();
    for case in cases {
        let text = format!("a {case} k=1\n");
        match (document(&text), KdlDocument::parse_v2(&text)) {
            (Ok(ours), Ok(theirs)) => assert_eq!(value(&ours), value(&theirs), "{case}"),
            (Err(_), Err(_)) => {}
            (ours, theirs) => {
                panic!("{case}: kiln {:?}, kdl {:?}", ours.map(|d| value(&d)), theirs.map(|d| value(&d)))
            }
        }
    }
    // As a node's name, a property's key and a type.
    let d =
        document("\"\"\"\n  n\n  \"\"\" (\"\"\"\nt\n\"\"\")1 \"\"\"\nk\n\"\"\"=\"\"\"\n  v\n \"\"\" { c; }").unwrap();
    let n = &d.nodes()[0];
    assert_eq!(n.name().value(), "n");
    assert_eq!((n.entries()[0].ty().unwrap().value(), n.entries()[1].name().unwrap().value()), ("t", "k"));
    assert_eq!(n.entries()[1].value(), &KdlValue::String(" v".into()));
    assert_eq!(n.children().unwrap().nodes()[0].name().value(), "c");
}

#[test]
fn multi_line_strings_with_many_braces_stay_text() {
    // The KDL parser alone overflows its stack on these.
    let json = "{\"a\": [{\"b\": {}}]}\n".repeat(2000);
    let text = format!("kiln 1\nimage \"a\" {{\n base \"scratch\"\n file \"/x.json\" \"\"\"\n{json}\"\"\"\n}}\n");
    let r = parse("k", &text).unwrap();
    assert!(matches!(&r.images[0].contents[0], Content::File { content, .. } if content.len() == json.len() - 1));
    let p = first("kiln 1\na \"\"\"\n  ok\n x\n  \"\"\"\n");
    assert_eq!(
        (p.message.as_str(), p.span.offset()),
        ("invalid KDL: a line of this multi-line string is indented less than its closing `\"\"\"`", 18)
    );
}
