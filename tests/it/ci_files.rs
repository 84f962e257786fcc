//! The CI workflows `kiln init --ci` writes (`templates/ci/`): YAML with the jobs the book
//! describes, whose commands are all installed here; written by `kiln init --ci` as they are;
//! and, run job by job with bash as GitHub Actions and GitLab CI run them (a working copy and a
//! HOME of each job's own, a local registry for the images, the shards and the cache), they
//! push the very image index one `kiln build` writes.
//!
//! Only the steps that install kiln and its toolchains are skipped (the kiln under test is
//! first on PATH, the toolchains are this machine's), and the actions (`uses:`) are emulated:
//! the checkout is the working copy, artifacts are files shared between working copies.

use crate::common::{kiln, repo_root, require, run, stderr, stdout};
use crate::servers::Registry;
use serde_json::{Map, Value};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

mod jobs;

const GITHUB: &str = "templates/ci/github.yml";
const GITLAB: &str = "templates/ci/gitlab.yml";
/// The commit the emulated pipelines build (`GITHUB_SHA`, `CI_COMMIT_SHA`), a tag of the images.
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const USER: &str = "ci-bot";
const PASSWORD: &str = "ci-s3cret";

/// A workflow file as JSON, read by PyYAML. YAML 1.1 reads the key `on` as `true`; it is given
/// back as `on`.
fn load(rel: &str) -> Value {
    let script = "import sys, json, yaml\n\
        def fix(v):\n    \
            if isinstance(v, dict): return {('on' if k is True else str(k)): fix(x) for k, x in v.items()}\n    \
            if isinstance(v, list): return [fix(x) for x in v]\n    \
            return v\n\
        json.dump(fix(yaml.safe_load(open(sys.argv[1]))), sys.stdout)\n";
    let json = run(Command::new(require("python3")).arg("-c").arg(script).arg(repo_root().join(rel)));
    serde_json::from_str(&json).expect("python prints JSON")
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, found {v}"))
}

fn object(v: &Value) -> &Map<String, Value> {
    v.as_object().unwrap_or_else(|| panic!("expected a mapping, found {v}"))
}

/// A GitLab script: its lines, the nested lists YAML anchors give flattened as GitLab does.
fn lines(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(lines).collect(),
        Value::Null => Vec::new(),
        other => vec![text(other).to_string()],
    }
}

/// The GitLab jobs: the mappings with a stage, not hidden.
fn gitlab_jobs(wf: &Value) -> Vec<(&String, &Value)> {
    object(wf).iter().filter(|(k, v)| !k.starts_with('.') && v.get("stage").is_some()).collect()
}

/// Every shell script of both workflows, named: GitHub's `run:` blocks, GitLab's script lines.
fn scripts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let gh = load(GITHUB);
    for (job, def) in object(&gh["jobs"]) {
        for step in def["steps"].as_array().expect("steps") {
            if let Some(script) = step["run"].as_str() {
                out.push((format!("{GITHUB}: {job}: {}", step["name"]), script.to_string()));
            }
        }
    }
    let gl = load(GITLAB);
    for (job, def) in gitlab_jobs(&gl) {
        for key in ["before_script", "script"] {
            out.extend(lines(&def[key]).into_iter().map(|l| (format!("{GITLAB}: {job}: {key}"), l)));
        }
    }
    out
}

#[test]
fn the_workflows_are_yaml_with_a_plan_a_build_matrix_and_a_merge() {
    let gh = load(GITHUB);
    let jobs = &gh["jobs"];
    assert_eq!(object(jobs).keys().collect::<Vec<_>>(), ["build", "merge", "plan"]);
    assert_eq!((&jobs["build"]["needs"], &jobs["merge"]["needs"]), (&Value::from("plan"), &Value::from("build")));
    assert_eq!(jobs["build"]["strategy"]["matrix"]["include"], "${{ fromJSON(needs.plan.outputs.matrix) }}");
    assert_eq!(jobs["build"]["env"]["KILN_SHARD"], "${{ matrix.KILN_SHARD }}");
    assert!(gh["on"]["push"].is_object(), "{}", gh["on"]);
    let env = &gh["env"];
    for var in ["KILN_GIT", "KILN_REV", "SHARDS", "CACHE"] {
        assert!(env[var].is_string(), "no {var} in {env}");
    }
    assert!(text(&env["IMAGE"]).ends_with("/{image}"), "{env}");
    assert_eq!(env["KILN_REGISTRY_USER"], "${{ github.actor }}");
    assert_eq!(env["KILN_REGISTRY_PASSWORD"], "${{ secrets.GITHUB_TOKEN }}");

    let gl = load(GITLAB);
    assert_eq!(gl["stages"], serde_json::json!(["plan", "build", "merge"]));
    let stages: Vec<(&str, &str)> = gitlab_jobs(&gl).iter().map(|(k, v)| (k.as_str(), text(&v["stage"]))).collect();
    assert_eq!(stages, [("build", "build"), ("merge", "merge"), ("plan", "plan")]);
    let matrix = serde_json::json!([{"KILN_SHARD": "1of3"}, {"KILN_SHARD": "2of3"}, {"KILN_SHARD": "3of3"}]);
    assert_eq!(gl["build"]["parallel"]["matrix"], matrix, "the list `kiln plan --matrix --shards 3` prints");
    let vars = &gl["variables"];
    assert_eq!((&vars["KILN_SHARDS"], &vars["IMAGE"]), (&Value::from("3"), &Value::from("$CI_REGISTRY_IMAGE/{image}")));
    assert_eq!(
        (&vars["KILN_REGISTRY_USER"], &vars["KILN_REGISTRY_PASSWORD"]),
        (&"$CI_REGISTRY_USER".into(), &"$CI_REGISTRY_PASSWORD".into())
    );
    assert!(lines(&gl["merge"]["script"]).concat().contains("--tag \"$CI_COMMIT_SHA\""));

    // The scripts use plain shell variables; GitHub's expressions stay in `env:` and `with:`.
    for (name, script) in scripts() {
        assert!(!script.contains("${{"), "{name}: an expression in a script: {script}");
    }
}

/// The programs a shell script runs: the first word of each simple command (one begins a line
/// or follows `|`, `||`, `&&`, `;`, `(`, `$(` or a keyword such as `then`), past variable
/// assignments and `sudo`. Nothing in single quotes is looked into; `#` starts a comment.
fn programs(script: &str) -> Vec<String> {
    let script = script.replace("\\\n", " ");
    let mut tokens: Vec<Option<String>> = Vec::new(); // None separates commands, Some is a word
    let (mut word, mut quotes, mut chars) = (String::new(), vec![None::<char>], script.chars().peekable());
    let end_word = |word: &mut String, tokens: &mut Vec<Option<String>>| {
        if !word.is_empty() {
            tokens.push(Some(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        let quote = *quotes.last().expect("a quote state");
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => *quotes.last_mut().expect("state") = None,
            (Some('\''), _) => word.push(c),
            (_, '\\') => word.extend(chars.next()),
            (_, '$') if chars.peek() == Some(&'(') => {
                chars.next();
                end_word(&mut word, &mut tokens);
                tokens.push(None);
                quotes.push(None);
            }
            (None, ')') if quotes.len() > 1 => {
                end_word(&mut word, &mut tokens);
                quotes.pop();
                // What follows belongs to the command around the substitution.
                tokens.push(Some(String::new()));
            }
            (None, '\'' | '"') => *quotes.last_mut().expect("state") = Some(c),
            (None, '#') if word.is_empty() => while chars.next_if(|c| *c != '\n').is_some() {},
            (None, ' ' | '\t') => end_word(&mut word, &mut tokens),
            (None, '\n' | ';' | '|' | '(' | ')') => {
                end_word(&mut word, &mut tokens);
                tokens.push(None);
            }
            (None, '&') if chars.next_if_eq(&'&').is_some() => {
                end_word(&mut word, &mut tokens);
                tokens.push(None);
            }
            _ => word.push(c),
        }
    }
    end_word(&mut word, &mut tokens);
    let (mut out, mut at_start) = (Vec::new(), true);
    for token in tokens {
        match token {
            None => at_start = true,
            Some(_) if !at_start => {}
            Some(w) if w.is_empty() => at_start = false,
            Some(w) if w == "for" || w == "case" => at_start = false,
            Some(w)
                if [
                    "if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "fi", "done", "esac", "sudo",
                ]
                .contains(&w.as_str()) => {}
            Some(w)
                if w.split_once('=')
                    .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_')) => {}
            Some(w) => {
                out.push(w);
                at_start = false;
            }
        }
    }
    out
}

#[test]
fn programs_finds_each_command_of_a_line() {
    let script = "x=$(kiln plan | grep -o '\"a\": *\"[^\"]*\"' | cut -d'\"' -f4) # a comment; rm\n\
        echo \"m=$(kiln plan --matrix)\" >>\"$OUT\" && sudo apt-get install \\\n  a b\n\
        if [ \"$x\" != \"$(echo y)\" ]; then exit 1; fi\nfor v in A B; do true; done";
    let expected = ["kiln", "grep", "cut", "echo", "kiln", "apt-get", "[", "echo", "exit", "true"];
    assert_eq!(programs(script), expected);
}

#[test]
fn every_program_the_workflows_run_is_installed_and_every_script_parses() {
    let mut missing = Vec::new();
    for (name, script) in scripts() {
        let o = Command::new("bash").arg("-n").arg("-c").arg(&script).output().unwrap();
        assert!(o.status.success(), "{name}: bash -n: {}\n{script}", stderr(&o));
        for program in programs(&script) {
            let found = program == "kiln"
                || Command::new("bash")
                    .args(["-c", "command -v -- \"$1\"", "_", &program])
                    .output()
                    .unwrap()
                    .status
                    .success();
            if !found {
                missing.push(format!("{name}: {program}"));
            }
        }
    }
    assert!(missing.is_empty(), "programs not installed here: {missing:#?}");
}

#[test]
fn init_writes_the_workflows_as_they_are_and_replaces_one_only_when_forced() {
    for (system, rel, source) in
        [("github", ".github/workflows/kiln.yml", GITHUB), ("gitlab", ".gitlab-ci.yml", GITLAB)]
    {
        let dir = tempfile::tempdir().unwrap();
        let init = |extra: &[&str]| {
            kiln().current_dir(dir.path()).args(["init", "--ci", system]).args(extra).output().unwrap()
        };
        let o = init(&[]);
        assert!(o.status.success(), "kiln init --ci {system}: {}", stderr(&o));
        assert!(stdout(&o).contains(rel), "{}", stdout(&o));
        let template = std::fs::read(repo_root().join(source)).unwrap();
        assert!(std::fs::read(dir.path().join(rel)).unwrap() == template, "{rel} is not {source}");
        assert!(!dir.path().join("kiln.kdl").exists() && !dir.path().join(".gitignore").exists());

        std::fs::write(dir.path().join(rel), "mine\n").unwrap();
        let o = init(&[]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("kiln::init::ci_exists") && stderr(&o).contains("--force"), "{}", stderr(&o));
        assert_eq!(std::fs::read_to_string(dir.path().join(rel)).unwrap(), "mine\n", "nothing is replaced");
        let o = init(&["--force", "-q"]);
        assert!(o.status.success() && o.stdout.is_empty(), "{}", stderr(&o));
        assert!(std::fs::read(dir.path().join(rel)).unwrap() == template);
        let names = |d: &Path| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
        assert_eq!(names(dir.path().join(rel).parent().unwrap()).len(), 1, "no temporary file is left");
    }
    let dir = tempfile::tempdir().unwrap();
    let o = kiln().current_dir(dir.path()).args(["init", "--ci", "jenkins"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("kiln::init::ci") && err.contains("jenkins") && err.contains("github, gitlab"), "{err}");
    let o = kiln().current_dir(dir.path()).args(["init", "--ci", "github", "--template", "prebuilt"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "--ci and --template together: {}", stderr(&o));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing is written");
}

/// The image index one `kiln build` of examples/polyglot writes, as `skopeo inspect --raw`
/// reads it from the layout (built once for the tests that compare with it).
pub(crate) fn reference_index() -> &'static str {
    static INDEX: OnceLock<String> = OnceLock::new();
    INDEX.get_or_init(|| {
        let layout = format!("oci:{}:polyglot", crate::compiled::example("polyglot").project.join("out").display());
        run(Command::new(require("skopeo")).args(["inspect", "--raw", &layout]))
    })
}

/// The image index the registry serves for `ci/polyglot:TAG`, as `skopeo inspect --raw` reads it.
fn pushed_index(registry: &Registry, tag: &str) -> String {
    let reference = format!("docker://{}/ci/polyglot:{tag}", registry.addr());
    let creds = format!("{USER}:{PASSWORD}");
    run(Command::new(require("skopeo")).args(["inspect", "--raw", "--tls-verify=false", "--creds", &creds, &reference]))
}

/// How many entries of each kind the build jobs stored in the cache repository (`ci/cache`):
/// compiled binaries (`kiln-bin-…` tags) and layers (`kiln-layer-…`).
fn cache_entries(registry: &Registry) -> (usize, usize) {
    let tags = registry.storage().join("docker/registry/v2/repositories/ci/cache/_manifests/tags");
    let names: Vec<String> = std::fs::read_dir(&tags)
        .unwrap_or_else(|e| panic!("the cache repository has no tags ({}): {e}", tags.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let count = |prefix: &str| names.iter().filter(|n| n.starts_with(prefix)).count();
    (count("kiln-bin-"), count("kiln-layer-"))
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(text.as_bytes()))
}

#[test]
fn the_github_workflow_pushes_the_index_one_kiln_build_writes() {
    let registry = Registry::start_with_auth(USER, PASSWORD);
    let wf = load(GITHUB);
    let mut runner = jobs::Runner::new(&registry);
    let plan = runner.github_job(&wf, "plan", &jobs::Entry::new());
    let matrix: Vec<jobs::Entry> = serde_json::from_str(&plan["matrix"]).expect("the plan job's matrix is JSON");
    assert_eq!(matrix.len(), 3, "a shard a platform: {}", plan["matrix"]);
    for entry in &matrix {
        runner.github_job(&wf, "build", entry);
    }
    runner.github_job(&wf, "merge", &jobs::Entry::new());
    let (pushed, built) = (pushed_index(&registry, COMMIT), reference_index());
    assert_eq!(sha256(&pushed), sha256(built), "merged:\n{pushed}\nbuilt:\n{built}");
    // Three programs for three platforms, each in a layer of its own, went through --cache.
    assert_eq!(cache_entries(&registry), (9, 9));
}

#[test]
fn the_gitlab_workflow_pushes_the_index_one_kiln_build_writes() {
    let registry = Registry::start_with_auth(USER, PASSWORD);
    let wf = load(GITLAB);
    let mut runner = jobs::Runner::new(&registry);
    runner.gitlab_pipeline(&wf);
    let (pushed, built) = (pushed_index(&registry, COMMIT), reference_index());
    assert_eq!(sha256(&pushed), sha256(built), "merged:\n{pushed}\nbuilt:\n{built}");
    // Three programs for three platforms, each in a layer of its own, went through --cache.
    assert_eq!(cache_entries(&registry), (9, 9));

    // The plan job fails when build's list is not the one kiln makes for KILN_SHARDS.
    runner.values.insert("KILN_SHARDS".into(), "2".into());
    let (o, _) = runner.gitlab_job(&wf, "plan", &jobs::Entry::new(), &[]);
    assert!(!o.status.success(), "the plan job took a matrix of 3 for 2 shards");
    let want = r#"must be: matrix: [{"KILN_SHARD":"1of2"},{"KILN_SHARD":"2of2"}]"#;
    assert!(stderr(&o).contains(want), "{}", stderr(&o));
}
