//! kiln's integration tests, as one test binary: each file of `tests/it/` is a module, so the
//! suite links once after a change to the library instead of once per file.
//!
//! Run one module with `cargo test --test it cli::`, one test with
//! `cargo test --test it cli::init_adds_out_to_the_gitignore_once`.
//!
//! The modules share one process and run on the harness's threads side by side: a test must
//! not change process-wide state (environment, current directory, umask, signal dispositions)
//! and must not claim a fixed name outside its own temporary directories. Set a child's
//! environment or directory on its `Command` instead, and make names unique per call (see
//! `common::runc_run`). A time budget counts the CPU time of the process it is about
//! (`common::output_and_cpu_time`): wall time also counts whatever runs beside the test.

mod common;

mod attestations;
mod c_crates;
mod ci_files;
mod cli;
mod compiled;
mod crash;
mod deltas;
mod distroless;
mod docs;
mod fast;
mod golden;
mod hostile_layouts;
mod languages;
mod layout_tools;
mod module_cycles;
mod plan_file;
mod plan_snapshot;
mod recipe_errors;
mod registry;
mod reproducible;
mod runtimes;
mod rust_cross;
mod security;
mod servers;
mod shards;
mod sharing;
mod signatures;
mod suite;
mod updates;
mod verify;
