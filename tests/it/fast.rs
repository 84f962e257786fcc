//! What makes rebuilds fast never changes what they write: remembered file digests
//! (fingerprints), the stamp that lets a build with nothing changed return at once, and the
//! parallel encoders, whose bytes do not depend on how many cores there are.

use crate::common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64"
}
image "fast" {
    base "scratch"
    copy "data/" "/srv/data/"
    copy "big.bin" "/srv/big.bin"
    entrypoint "/bin/true"
}
"#;

/// Three MiB of text and bytes: more than one gzip block.
fn big() -> Vec<u8> {
    let mut x: u32 = 7;
    (0..3 * 1024 * 1024 + 5)
        .map(|i| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            if i % 3 == 0 { b"kiln "[i % 5] } else { (x >> 16) as u8 }
        })
        .collect()
}

fn project() -> Fixture {
    let f = Fixture::new();
    f.recipe(RECIPE);
    for i in 0..40 {
        f.write(&format!("data/d{}/f{i}.txt", i % 4), format!("file {i}\n").repeat(50 + i));
    }
    f.write("big.bin", big());
    f
}

/// `kiln build` of `f` into `out` with the cache `cache`; the index digest.
fn build_into(f: &Fixture, out: &Path, cache: &Path) -> String {
    let o = kiln()
        .current_dir(f.path())
        .env("KILN_CACHE_DIR", cache)
        .args(["build", "-q", "--json", "--out"])
        .arg(out)
        .output()
        .unwrap();
    summary(&o)["index_digest"].as_str().unwrap().to_string()
}

/// The digest a first build with an empty cache gives for `f` as it is now.
fn cold(f: &Fixture) -> String {
    let (cache, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_into(f, &out.path().join("out"), cache.path())
}

/// Waits out the granularity within which kiln does not remember a file it just read.
fn settle() {
    std::thread::sleep(Duration::from_millis(2100));
}

fn set_mtime(p: &Path, t: SystemTime) {
    std::fs::File::options().write(true).open(p).unwrap().set_modified(t).unwrap();
}

#[test]
fn remembered_digests_and_the_up_to_date_check_never_change_an_output() {
    let f = project();
    let (cache, out) = (f.cache_path().to_path_buf(), f.out());
    settle();
    let first = build_into(&f, &out, &cache);
    assert_eq!(first, cold(&f));
    assert!(std::fs::read_dir(cache.join("fingerprints")).unwrap().next().is_some(), "no fingerprints kept");

    // Nothing changed: the layout is left as it is, not written again.
    let index = out.join("index.json");
    let before = std::fs::metadata(&index).unwrap();
    assert_eq!(build_into(&f, &out, &cache), first);
    let after = std::fs::metadata(&index).unwrap();
    assert_eq!((before.ino(), before.mtime_nsec()), (after.ino(), after.mtime_nsec()), "index.json was rewritten");

    // Touched, not changed: the same bytes.
    let file = f.path().join("data/d1/f1.txt");
    set_mtime(&file, SystemTime::now() - Duration::from_secs(3600));
    assert_eq!(build_into(&f, &out, &cache), first);

    // Changed, with the same size and the old modification time put back: seen, and the
    // result is what a build with an empty cache makes of the new contents.
    settle();
    assert_eq!(build_into(&f, &out, &cache), first);
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let old = std::fs::read(&file).unwrap();
    let mut new = old.clone();
    new[0] ^= 0x20;
    std::fs::write(&file, &new).unwrap();
    set_mtime(&file, mtime);
    let changed = build_into(&f, &out, &cache);
    assert_ne!(changed, first, "a same-size, same-mtime change went unseen");
    assert_eq!(changed, cold(&f));

    // A layout missing a blob, or a stamp or fingerprints file damaged, is built again.
    let blobs = out.join("blobs/sha256");
    let victim = std::fs::read_dir(&blobs).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(&victim).unwrap();
    assert_eq!(build_into(&f, &out, &cache), changed);
    assert!(victim.is_file(), "the missing blob was not written again");
    // A blob overwritten with other bytes of its size (as a checkout of a committed layout
    // would leave it) is not taken for the one kiln wrote.
    let good = std::fs::read(&victim).unwrap();
    std::fs::remove_file(&victim).unwrap();
    std::fs::write(&victim, vec![b'x'; good.len()]).unwrap();
    assert_eq!(build_into(&f, &out, &cache), changed);
    assert!(std::fs::read(&victim).unwrap() == good, "the overwritten blob was not written again");
    for dir in ["builds", "fingerprints"] {
        for e in std::fs::read_dir(cache.join(dir)).unwrap() {
            std::fs::write(e.unwrap().path(), "not what kiln wrote\n").unwrap();
        }
    }
    assert_eq!(build_into(&f, &out, &cache), changed);
    assert_eq!(skopeo_raw(&out, "fast")["manifests"].as_array().unwrap().len(), 2, "skopeo reads the layout");
}

#[test]
fn one_core_and_every_core_write_the_same_layers() {
    let f = project();
    let zstd = RECIPE.replace("defaults {", "defaults {\n    compression \"zstd\" level=3");
    for recipe in [RECIPE.to_string(), zstd] {
        f.recipe(&recipe);
        let all = cold(&f);
        let (cache, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let o = Command::new(require("taskset"))
            .args(["--cpu-list", "0"])
            .arg(env!("CARGO_BIN_EXE_kiln"))
            .current_dir(f.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .env("KILN_CACHE_DIR", cache.path())
            .args(["build", "-q", "--json", "--out"])
            .arg(out.path().join("out"))
            .output()
            .unwrap();
        assert_eq!(summary(&o)["index_digest"].as_str().unwrap(), all, "{recipe}");
    }
    // skopeo reads the gzip layers of one 3 MiB file cut in blocks.
    f.recipe(RECIPE);
    let out = tempfile::tempdir().unwrap();
    build_into(&f, &out.path().join("out"), f.cache_path());
    let dest = tempfile::tempdir().unwrap();
    let single = single_platform(&out.path().join("out"), "fast", "amd64", None, &dest.path().join("l"));
    let bundle = umoci_unpack(&single, "fast", &dest.path().join("bundle"));
    assert!(std::fs::read(bundle.join("rootfs/srv/big.bin")).unwrap() == big(), "umoci unpacked other bytes");
}

#[test]
fn an_image_made_with_the_stream_encoder_builds_again_with_it() {
    let f = project();
    f.recipe(&RECIPE.replace("defaults {", "defaults {\n    compression \"gzip\" level=6 encoder=\"stream\""));
    let stream = cold(&f);
    f.recipe(RECIPE);
    let parallel = cold(&f);
    assert_ne!(stream, parallel, "the encoders write other bytes");
    // The recipe names no encoder; --compression gzip;level=6 rebuilds the stream-encoded image.
    let (cache, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = kiln()
        .current_dir(f.path())
        .env("KILN_CACHE_DIR", cache.path())
        .args(["build", "-q", "--json", "--compression", "gzip;level=6", "--out"])
        .arg(out.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(summary(&o)["index_digest"].as_str().unwrap(), stream);
    let raw = skopeo_raw(&out.path().join("out"), "fast");
    assert_eq!(raw["annotations"]["dev.kiln.compression"], "gzip;level=6");
    let bad = kiln()
        .current_dir(f.path())
        .env("KILN_CACHE_DIR", cache.path())
        .args(["build", "-q", "--compression", "gzip;level=6;blocks=2MiB"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("kiln::cli::compression"), "{}", stderr(&bad));
}
