//! Progress reporting: a bar on a terminal, plain lines otherwise, nothing with `--quiet`.
//! The build only talks to the [`Progress`] trait, so tests and CI logs see plain text.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

pub trait Progress: Sync {
    /// The build is about to write `layers` distinct layers.
    fn start(&self, layers: u64);
    /// One layer is written (`bytes` compressed).
    fn layer_done(&self, name: &str, bytes: u64);
    fn note(&self, msg: &str);
    fn finish(&self);
}

/// Picks the reporter for the current stderr.
pub fn for_terminal(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Quiet)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bar { bar: Mutex::new(None) })
    } else {
        Box::new(Lines)
    }
}

pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: u64) {}
    fn layer_done(&self, _: &str, _: u64) {}
    fn note(&self, _: &str) {}
    fn finish(&self) {}
}

pub struct Lines;

impl Progress for Lines {
    fn start(&self, layers: u64) {
        eprintln!("kiln: writing {layers} layer(s)");
    }
    fn layer_done(&self, name: &str, bytes: u64) {
        eprintln!("kiln: wrote layer {name} ({bytes} bytes)");
    }
    fn note(&self, msg: &str) {
        eprintln!("kiln: {msg}");
    }
    fn finish(&self) {}
}

pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bar {
    fn start(&self, layers: u64) {
        let bar = ProgressBar::with_draw_target(Some(layers), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} layers  {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(bar);
        }
    }
    fn layer_done(&self, name: &str, _bytes: u64) {
        if let Ok(b) = self.bar.lock()
            && let Some(bar) = b.as_ref()
        {
            bar.set_message(name.to_string());
            bar.inc(1);
        }
    }
    fn note(&self, msg: &str) {
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.println(msg),
            None => eprintln!("{msg}"),
        }
    }
    fn finish(&self) {
        if let Ok(b) = self.bar.lock()
            && let Some(bar) = b.as_ref()
        {
            bar.finish_and_clear();
        }
    }
}
