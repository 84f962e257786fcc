//! Progress reporting: the stages report through the [`Progress`] trait and never print; the
//! command line picks a reporter for the terminal (a bar, plain lines or nothing).

pub trait Progress: Sync {
    /// The build is about to write `layers` distinct layers.
    fn start(&self, layers: u64);
    /// One layer is written (`bytes` compressed).
    fn layer_done(&self, name: &str, bytes: u64);
    fn note(&self, msg: &str);
    fn finish(&self);
    /// A push or pull is about to move `blobs` blobs.
    fn start_transfer(&self, blobs: u64) {
        self.start(blobs);
    }
    /// One blob is done: `outcome` says how (uploaded, mounted, present, fetched).
    fn blob_done(&self, outcome: &str, digest: &str, bytes: u64) {
        self.layer_done(&format!("{outcome} {digest}"), bytes);
    }
}

/// Reports nothing: `--quiet`, and work whose progress nobody watches (staging, locks).
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: u64) {}
    fn layer_done(&self, _: &str, _: u64) {}
    fn note(&self, _: &str) {}
    fn finish(&self) {}
}
