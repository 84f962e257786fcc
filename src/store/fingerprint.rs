//! File digests remembered by what `stat` says of each file, so that a build with nothing
//! changed does not read its sources again (git's index and ninja's log do the same).
//!
//! An entry holds a file's sha256 with its size, modification and change times (in
//! nanoseconds), inode and device; a file whose metadata all match is taken to hold the bytes
//! it held. Writing a file sets its change time, which nothing but the clock can set, so even
//! a change that keeps the size and puts the old modification time back is seen. A file
//! system's clock has a granularity, though: a file changed in the same tick it was hashed in
//! could keep every time. So a file whose modification or change time is less than
//! [`GRANULARITY`] before the moment it was read is not remembered (git's "racily clean"),
//! and is hashed again next time.
//!
//! The entries live in kiln's cache, one file per recipe directory, written beside and
//! renamed; anything unreadable in it is a miss. `kiln verify` builds with an empty cache, so
//! what it checks never rests on an entry.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How close to the moment it was read a file's times may be and still be remembered.
pub const GRANULARITY: Duration = Duration::from_secs(2);

const HEADER: &str = "kiln fingerprints 1\n";

/// What `stat` says of a file, as far as its contents go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    pub dev: u64,
}

impl Stat {
    pub fn of(m: &std::fs::Metadata) -> Stat {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stat {
            size: m.len(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        }
    }

    /// Whether a file with these times, read at `read_ns`, could still change unseen.
    pub fn racy(&self, read_ns: i128) -> bool {
        let guard = read_ns - GRANULARITY.as_nanos() as i128;
        self.mtime_ns >= guard || self.ctime_ns >= guard
    }
}

#[derive(Debug, Clone)]
struct Entry {
    stat: Stat,
    sha256: String,
}

/// The remembered digests of one recipe directory's files (and of any other file kiln hashes
/// for it, such as its own executable).
#[derive(Debug, Default)]
pub struct Fingerprints {
    /// Where the entries are kept; `None` remembers nothing.
    file: Option<PathBuf>,
    /// What relative paths are relative to.
    cwd: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The entries read from the file and not used yet (each moves to `used` when it is).
    loaded: HashMap<PathBuf, Entry>,
    /// The entries this run used or made: the ones written back.
    used: HashMap<PathBuf, Entry>,
    changed: bool,
}

fn now_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
}

impl Fingerprints {
    /// The entries kept in `cache` for the recipe directory `root`; relative paths given later
    /// are relative to `cwd`.
    pub fn open(cache: &Path, root: &Path, cwd: &Path) -> Fingerprints {
        let scope = std::fs::canonicalize(cwd.join(root)).unwrap_or_else(|_| cwd.join(root));
        let name = crate::oci::digest::sha256_hex(scope.as_os_str().as_encoded_bytes());
        let file = cache.join("fingerprints").join(&name[..32]);
        let loaded = std::fs::read_to_string(&file).map(|t| parse(&t)).unwrap_or_default();
        let state = State { loaded, ..State::default() };
        Fingerprints { file: Some(file), cwd: cwd.to_path_buf(), state: Mutex::new(state) }
    }

    /// The file's sha256 and size: remembered when its metadata match an entry, else read.
    pub fn sha256(&self, path: &Path) -> io::Result<(String, u64)> {
        let key = if path.is_absolute() { path.to_path_buf() } else { self.cwd.join(path) };
        let stat = Stat::of(&std::fs::metadata(path)?);
        if self.file.is_some()
            && let Ok(mut s) = self.state.lock()
        {
            if let Some(e) = s.used.get(&key).filter(|e| e.stat == stat) {
                return Ok((e.sha256.clone(), stat.size));
            }
            match s.loaded.remove(&key) {
                Some(e) if e.stat == stat => {
                    let sha = e.sha256.clone();
                    s.used.insert(key, e);
                    return Ok((sha, stat.size));
                }
                Some(_) => s.changed = true,
                None => {}
            }
        }
        let read_at = now_ns();
        let file = std::fs::File::open(path)?;
        let (sha, size) = crate::oci::digest::sha256_reader(&file)?;
        // Remembered only when nothing changed while it was read and it cannot change unseen.
        let after = Stat::of(&file.metadata()?);
        if self.file.is_some() && after == stat && size == stat.size && !stat.racy(read_at) {
            let plain = key.to_str().is_some_and(|k| !k.contains('\n'));
            if plain && let Ok(mut s) = self.state.lock() {
                s.used.insert(key, Entry { stat, sha256: sha.clone() });
                s.changed = true;
            }
        }
        Ok((sha, size))
    }

    /// Writes the entries this run used back, when they differ from what was read. Best
    /// effort: a cache that cannot be written costs time on the next build, never a failed one.
    pub fn save(&self) {
        let Some(file) = &self.file else { return };
        let Ok(s) = self.state.lock() else { return };
        if !s.changed && s.loaded.is_empty() {
            return;
        }
        let mut text = String::from(HEADER);
        let sorted: BTreeMap<&PathBuf, &Entry> = s.used.iter().collect();
        for (path, e) in sorted {
            let Some(p) = path.to_str() else { continue };
            let st = e.stat;
            let _ =
                writeln!(text, "{} {} {} {} {} {} {p}", e.sha256, st.size, st.mtime_ns, st.ctime_ns, st.ino, st.dev);
        }
        let Some(dir) = file.parent() else { return };
        if std::fs::create_dir_all(dir).is_ok()
            && let Ok(tmp) = tempfile::NamedTempFile::new_in(dir)
            && std::fs::write(tmp.path(), text).is_ok()
        {
            let _ = tmp.persist(file);
        }
    }
}

/// The entries of a fingerprints file; a line that does not read is left out.
fn parse(text: &str) -> HashMap<PathBuf, Entry> {
    let Some(body) = text.strip_prefix(HEADER) else { return HashMap::new() };
    body.lines()
        .filter_map(|line| {
            let mut f = line.splitn(7, ' ');
            let sha256 = f.next().filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))?.to_string();
            let stat = Stat {
                size: f.next()?.parse().ok()?,
                mtime_ns: f.next()?.parse().ok()?,
                ctime_ns: f.next()?.parse().ok()?,
                ino: f.next()?.parse().ok()?,
                dev: f.next()?.parse().ok()?,
            };
            let path = PathBuf::from(f.next()?);
            path.is_absolute().then_some((path, Entry { stat, sha256 }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_times(p: &Path, secs_ago: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs_ago);
        std::fs::File::options().write(true).open(p).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn a_file_is_read_again_only_when_its_metadata_change() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, root) = (dir.path().join("cache"), dir.path().join("root"));
        std::fs::create_dir_all(&root).unwrap();
        let f = root.join("a.txt");
        std::fs::write(&f, "one").unwrap();
        let first = Fingerprints::open(&cache, &root, &root);
        let (sha, size) = first.sha256(&f).unwrap();
        assert_eq!((sha.as_str(), size), (crate::oci::digest::sha256_hex(b"one").as_str(), 3));
        first.save();
        // Just written: too recent to be remembered.
        assert!(Fingerprints::open(&cache, &root, &root).state.lock().unwrap().loaded.is_empty());
        // Known to be older than the granularity, it is remembered...
        set_times(&f, 60);
        let fp = Fingerprints::open(&cache, &root, &root);
        let ctime = Stat::of(&std::fs::metadata(&f).unwrap()).ctime_ns;
        if Stat::of(&std::fs::metadata(&f).unwrap()).racy(now_ns()) {
            // The change time just moved with set_modified: wait out the granularity.
            std::thread::sleep(GRANULARITY + Duration::from_millis(50));
        }
        fp.sha256(&f).unwrap();
        fp.save();
        let fp = Fingerprints::open(&cache, &root, &root);
        assert_eq!(fp.state.lock().unwrap().loaded.len(), 1);
        // ...and an entry is believed while the metadata match: plant another digest to see it.
        let planted = "0".repeat(64);
        fp.state.lock().unwrap().loaded.values_mut().for_each(|e| e.sha256 = planted.clone());
        assert_eq!(fp.sha256(&f).unwrap().0, planted);
        assert_eq!(fp.sha256(&f).unwrap().0, planted, "a second look in the same run");
        // A change of the same size with the old modification time put back: the change time moved.
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        std::fs::write(&f, "two").unwrap();
        std::fs::File::options().write(true).open(&f).unwrap().set_modified(mtime).unwrap();
        assert_ne!(Stat::of(&std::fs::metadata(&f).unwrap()).ctime_ns, ctime);
        assert_eq!(fp.sha256(&f).unwrap().0, crate::oci::digest::sha256_hex(b"two"));
    }

    #[test]
    fn times_within_the_granularity_of_the_read_are_racy() {
        let s = |m: i128, c: i128| Stat { size: 1, mtime_ns: m, ctime_ns: c, ino: 1, dev: 1 };
        let g = GRANULARITY.as_nanos() as i128;
        let read = 1_000 * g;
        assert!(!s(read - g - 1, read - g - 1).racy(read));
        assert!(s(read - g, read - 2 * g).racy(read), "modified within the granularity");
        assert!(s(read - 2 * g, read - 1).racy(read), "changed within the granularity");
        assert!(s(read + 5, read + 5).racy(read), "times ahead of the clock");
    }

    #[test]
    fn a_damaged_file_remembers_nothing() {
        for text in ["", "kiln fingerprints 0\n", "kiln fingerprints 1\nzz 1 2 3 4 5 /a\n", "kiln fingerprints 1\n"] {
            assert!(parse(text).is_empty(), "{text:?}");
        }
        let good = format!("{HEADER}{} 1 2 3 4 5 /a b\n{} 1 2 3 4 5 rel\n", "a".repeat(64), "b".repeat(64));
        let p = parse(&good);
        assert_eq!(p.keys().collect::<Vec<_>>(), vec![Path::new("/a b")]);
    }
}
