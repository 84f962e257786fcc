//! Progress on the terminal: a bar on a terminal, plain lines otherwise, nothing with `--quiet`.
//! The library only talks to the [`Progress`] trait, so tests and CI logs see plain text.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln::progress::{Progress, Quiet};
use std::io::IsTerminal;
use std::sync::Mutex;

/// Picks the reporter for the current stderr.
pub(crate) fn for_terminal(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Quiet)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bar { bar: Mutex::new(None) })
    } else {
        Box::new(Lines)
    }
}

/// One line on stderr per event, for logs.
struct Lines;

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
    fn start_transfer(&self, blobs: u64) {
        eprintln!("kiln: {blobs} blob(s) to check");
    }
    fn blob_done(&self, outcome: &str, digest: &str, bytes: u64) {
        eprintln!("kiln: blob {digest} {outcome} ({bytes} bytes)");
    }
}

/// A bar of the layers written (or blobs moved), with notes printed above it.
struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bar {
    fn begin(&self, count: u64, unit: &str) {
        let bar = ProgressBar::with_draw_target(Some(count), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template(&format!("{{spinner}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}"))
        {
            bar.set_style(style.progress_chars("=> "));
        }
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(bar);
        }
    }
}

impl Progress for Bar {
    fn start(&self, layers: u64) {
        self.begin(layers, "layers");
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
    fn start_transfer(&self, blobs: u64) {
        self.begin(blobs, "blobs");
    }
    fn blob_done(&self, outcome: &str, digest: &str, _bytes: u64) {
        self.layer_done(&format!("{outcome} {}", digest.get(..19).unwrap_or(digest)), 0);
    }
}
