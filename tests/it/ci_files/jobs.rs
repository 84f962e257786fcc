//! Runs the workflows' jobs on this machine as GitHub Actions and GitLab CI run them: each job
//! in a working copy and a HOME of its own (so a kiln cache of its own), its script with
//! `bash -eo pipefail`, its variables from the workflow (the registry's references and
//! credentials from the test), artifacts as files copied from one working copy to the next.

use super::{COMMIT, GITLAB, PASSWORD, USER, gitlab_jobs, lines, object, text};
use crate::common::{cargo_home, copy_project, repo_root, rustup_home, stderr, stdout};
use crate::servers::Registry;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A job's matrix entry: its variables and their values.
pub(super) type Entry = Map<String, Value>;

/// Where the emulated jobs run, and what they share.
pub(super) struct Runner {
    root: tempfile::TempDir,
    /// The test's values of workflow variables: the registry's references, the credentials.
    pub(super) values: BTreeMap<String, String>,
    jobs: usize,
}

/// `text` with each `${{ expr }}` replaced by `lookup(expr)`; one it cannot evaluate fails the test.
fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let (mut out, mut rest) = (String::new(), text);
    while let Some(start) = rest.find("${{") {
        let end = start + rest[start..].find("}}").expect("a closed expression");
        let expr = rest[start + 3..end].trim();
        out.push_str(&rest[..start]);
        out.push_str(&lookup(expr).unwrap_or_else(|| panic!("the test cannot evaluate `{expr}` in {text}")));
        rest = &rest[end + 2..];
    }
    out + rest
}

/// `matrix.NAME` of a matrix entry.
fn matrix_value(entry: &Entry, expr: &str) -> Option<String> {
    entry.get(expr.strip_prefix("matrix.")?).map(|v| text(v).to_string())
}

/// What a step's `with:` may name: `matrix.NAME` and `runner.temp`, a job's own directory.
fn with_value(entry: &Entry, temp: &Path, expr: &str) -> Option<String> {
    match expr {
        "runner.temp" => Some(temp.display().to_string()),
        _ => matrix_value(entry, expr),
    }
}

/// Copies a file, or a directory's files, to `to`.
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

impl Runner {
    pub(super) fn new(registry: &Registry) -> Runner {
        let root = tempfile::Builder::new().prefix("kiln-ci-").tempdir().unwrap();
        // The kiln under test, alone in a directory put first on PATH.
        std::fs::create_dir(root.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kiln"), root.path().join("bin/kiln")).unwrap();
        let addr = registry.addr();
        let values = [
            ("IMAGE", format!("{addr}/ci/{{image}}")),
            ("SHARDS", format!("{addr}/ci/shards")),
            ("CACHE", format!("{addr}/ci/cache")),
            ("KILN_REGISTRY_USER", USER.to_string()),
            ("KILN_REGISTRY_PASSWORD", PASSWORD.to_string()),
        ];
        Runner { root, values: values.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), jobs: 0 }
    }

    /// A new job's directory, with its working directory (a copy of examples/polyglot when it
    /// checks the project out, and its compiled binaries in the kiln cache) and its HOME.
    fn job_dir(&mut self, name: &str, checkout: bool) -> PathBuf {
        self.jobs += 1;
        let dir = self.root.path().join(format!("{}-{name}", self.jobs));
        std::fs::create_dir_all(dir.join("home")).unwrap();
        if checkout {
            copy_project(&repo_root().join("examples/polyglot"), &dir.join("work"));
            // The runner's kiln cache holds the binaries a first build compiled (shared by the
            // tests): what --cache moves is the subject here, not the compiles.
            crate::compiled::seed("polyglot", &dir.join("home/.cache/kiln"));
        } else {
            std::fs::create_dir_all(dir.join("work")).unwrap();
        }
        dir
    }

    /// A workflow variable's value: the test's for the registry and credentials, else the
    /// file's own with `${{ matrix.NAME }}` filled in. A value the test cannot give (another
    /// expression, GitLab's `$CI_…`) fails the test.
    fn value(&self, key: &str, value: &Value, entry: &Entry) -> String {
        if let Some(v) = self.values.get(key) {
            return v.clone();
        }
        let v = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let v = expand(&v, |e| matrix_value(entry, e));
        assert!(!v.contains('$'), "the test has no value for {key}: {v}");
        v
    }

    /// Runs a script with bash in `dir/work`, HOME `dir/home`, the kiln under test first on PATH.
    fn bash(&self, dir: &Path, n: usize, env: &BTreeMap<String, String>, script: &str) -> Output {
        let file = dir.join(format!("script-{n}.sh"));
        std::fs::write(&file, script).unwrap();
        let paths = std::env::var_os("PATH").unwrap_or_default();
        let path =
            std::env::join_paths(std::iter::once(self.root.path().join("bin")).chain(std::env::split_paths(&paths)))
                .unwrap();
        let mut c = Command::new("bash");
        c.args(["--noprofile", "--norc", "-eo", "pipefail"]).arg(&file).current_dir(dir.join("work"));
        for var in
            ["KILN_CACHE_DIR", "XDG_CACHE_HOME", "SOURCE_DATE_EPOCH", "KILN_REGISTRY_USER", "KILN_REGISTRY_PASSWORD"]
        {
            c.env_remove(var);
        }
        c.env("PATH", path).env("HOME", dir.join("home")).env("CARGO_HOME", cargo_home());
        c.env("RUSTUP_HOME", rustup_home()).envs(env).stdin(Stdio::null());
        c.output().unwrap_or_else(|e| panic!("cannot run bash: {e}"))
    }

    /// Runs GitHub job `name` for one matrix entry, its steps in order; returns its outputs.
    pub(super) fn github_job(&mut self, wf: &Value, name: &str, entry: &Entry) -> BTreeMap<String, String> {
        let job = &wf["jobs"][name];
        let steps = job["steps"].as_array().expect("steps");
        let checkout = steps.iter().any(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/checkout@")));
        let dir = self.job_dir(name, checkout);
        let temp = dir.join("temp");
        std::fs::create_dir(&temp).unwrap();
        let mut env = BTreeMap::from([
            ("GITHUB_SHA".to_string(), COMMIT.to_string()),
            ("RUNNER_TEMP".to_string(), temp.display().to_string()),
        ]);
        for (k, v) in [&wf["env"], &job["env"]].into_iter().filter_map(Value::as_object).flatten() {
            env.insert(k.clone(), self.value(k, v, entry));
        }
        let mut outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (n, step) in steps.iter().enumerate() {
            let label = format!("github {name} {}: {}", Value::from(entry.clone()), step["name"]);
            if step.get("uses").is_some() {
                self.github_action(step, &|e| with_value(entry, &temp, e), &dir.join("work"));
                continue;
            }
            // The runner's own kiln and toolchains stand in for these.
            if step["name"].as_str().is_some_and(|s| s.starts_with("Install ")) {
                continue;
            }
            let mut env = env.clone();
            for (k, v) in step["env"].as_object().into_iter().flatten() {
                env.insert(k.clone(), self.value(k, v, entry));
            }
            let output = dir.join(format!("output-{n}"));
            std::fs::write(&output, "").unwrap();
            env.insert("GITHUB_OUTPUT".into(), output.display().to_string());
            let o = self.bash(&dir, n, &env, text(&step["run"]));
            assert!(o.status.success(), "{label}: {:?}\n{}\n{}", o.status, stdout(&o), stderr(&o));
            if let Some(id) = step["id"].as_str() {
                let written = std::fs::read_to_string(&output).unwrap();
                let pairs = written.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.into(), v.into()));
                outputs.insert(id.into(), pairs.collect());
            }
        }
        let step_output = |e: &str| match e.split('.').collect::<Vec<_>>()[..] {
            ["steps", id, "outputs", key] => outputs.get(id)?.get(key).cloned(),
            _ => None,
        };
        job["outputs"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), expand(text(v), step_output)))
            .collect()
    }

    /// What the actions a step uses do here: the working copy is the checkout, each job starts
    /// without a cache, as on a new runner, and artifacts are files under `artifacts/NAME/`.
    fn github_action(&self, step: &Value, lookup: &dyn Fn(&str) -> Option<String>, work: &Path) {
        let with = |key: &str| step["with"][key].as_str().map(|v| expand(v, lookup));
        let artifacts = self.root.path().join("artifacts");
        let action = text(&step["uses"]);
        match action.split('@').next().unwrap_or_default() {
            "actions/checkout" | "actions/cache" => {}
            "actions/upload-artifact" => {
                let name = with("name").expect("an artifact's name");
                let from = work.join(with("path").expect("an artifact's path"));
                assert!(!artifacts.join(&name).exists(), "two artifacts named {name}");
                copy_tree(&from, &artifacts.join(&name).join(from.file_name().unwrap()));
            }
            "actions/download-artifact" => {
                let into = work.join(with("path").unwrap_or_else(|| ".".into()));
                let names: Vec<String> = match (with("name"), with("pattern")) {
                    (Some(name), _) => vec![name],
                    (None, Some(pattern)) => {
                        let prefix = pattern.strip_suffix('*').expect("a pattern NAME*");
                        let mut all: Vec<String> = std::fs::read_dir(&artifacts)
                            .unwrap()
                            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                            .filter(|n| n.starts_with(prefix))
                            .collect();
                        all.sort();
                        all
                    }
                    (None, None) => panic!("download-artifact names no artifact: {step}"),
                };
                assert!(!names.is_empty(), "no artifact to download: {step}");
                let merged = with("name").is_some() || step["with"]["merge-multiple"] == true;
                for name in names {
                    copy_tree(&artifacts.join(&name), &if merged { into.clone() } else { into.join(&name) });
                }
            }
            other => panic!("the test does not emulate {other}"),
        }
    }

    /// Runs GitLab job `name` for one matrix entry, given the directories holding the artifacts
    /// of the earlier stages' jobs (GitLab hands a job all of them); returns the script's
    /// output and the directory holding this job's artifacts.
    pub(super) fn gitlab_job(
        &mut self,
        wf: &Value,
        name: &str,
        entry: &Entry,
        earlier: &[PathBuf],
    ) -> (Output, PathBuf) {
        let job = &wf[name];
        let dir = self.job_dir(name, true);
        let work = dir.join("work");
        std::fs::copy(repo_root().join(GITLAB), work.join(".gitlab-ci.yml")).unwrap();
        for artifacts in earlier {
            copy_tree(artifacts, &work);
        }
        let mut env = BTreeMap::from([("CI_COMMIT_SHA".to_string(), COMMIT.to_string())]);
        for (k, v) in object(&wf["variables"]).iter().chain(job["variables"].as_object().into_iter().flatten()) {
            env.insert(k.clone(), self.value(k, v, entry));
        }
        env.extend(entry.iter().map(|(k, v)| (k.clone(), text(v).to_string())));
        // before_script installs kiln and the toolchains, which this machine has, and only that.
        let setup: Vec<String> = [".install-kiln", ".install-toolchains"].iter().flat_map(|k| lines(&wf[*k])).collect();
        assert!(
            lines(&job["before_script"]).iter().all(|l| setup.contains(l)),
            "{name}: before_script does more than install"
        );
        let o = self.bash(&dir, 0, &env, &lines(&job["script"]).join("\n"));
        let keep = dir.join("artifacts");
        if o.status.success() {
            for p in job["artifacts"]["paths"].as_array().into_iter().flatten() {
                let p = text(p).trim_end_matches('/');
                copy_tree(&work.join(p), &keep.join(p));
            }
        }
        (o, keep)
    }

    /// Runs the GitLab pipeline: its stages in order, each job once per entry of its matrix.
    pub(super) fn gitlab_pipeline(&mut self, wf: &Value) {
        let mut earlier = Vec::new();
        for stage in wf["stages"].as_array().expect("stages") {
            let mut this_stage = Vec::new();
            for (name, job) in gitlab_jobs(wf).into_iter().filter(|(_, j)| j["stage"] == *stage) {
                for entry in gitlab_matrix(job) {
                    let (o, artifacts) = self.gitlab_job(wf, name, &entry, &earlier);
                    let label = format!("gitlab {name} {}", Value::from(entry));
                    assert!(o.status.success(), "{label}: {:?}\n{}\n{}", o.status, stdout(&o), stderr(&o));
                    this_stage.push(artifacts);
                }
            }
            earlier.extend(this_stage);
        }
    }
}

/// The entries of a GitLab job's `parallel: matrix:` (each variable's values multiplied out),
/// or one empty entry.
pub(super) fn gitlab_matrix(job: &Value) -> Vec<Entry> {
    let Some(items) = job["parallel"]["matrix"].as_array() else {
        return vec![Entry::new()];
    };
    let mut out = Vec::new();
    for item in items {
        let mut entries = vec![Entry::new()];
        for (k, values) in object(item) {
            let values = match values {
                Value::Array(v) => v.clone(),
                v => vec![v.clone()],
            };
            entries = entries
                .iter()
                .flat_map(|e| values.iter().map(|v| [(k.clone(), v.clone())].into_iter().chain(e.clone()).collect()))
                .collect();
        }
        out.extend(entries);
    }
    out
}
