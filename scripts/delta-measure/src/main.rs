//! Sizes and times of binary deltas between two layer tars: zstd --patch-from (as kiln makes
//! them), bsdiff (raw, then compressed with zstd -19) and qbsdiff (classic BSDIFF40, bzip2).
use std::io::{Read, Write};
use std::time::Instant;

fn zstd_patch(old: &[u8], new: &[u8]) -> Vec<u8> {
    use zstd::stream::raw::CParameter;
    let span = (old.len() + new.len()).max(1 << 20) as u64;
    let wlog = (64 - span.leading_zeros()).clamp(20, 31);
    let mut z = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 19, old).unwrap();
    z.set_parameter(CParameter::WindowLog(wlog)).unwrap();
    z.set_parameter(CParameter::EnableLongDistanceMatching(true)).unwrap();
    z.set_pledged_src_size(Some(new.len() as u64)).unwrap();
    z.write_all(new).unwrap();
    z.finish().unwrap()
}

fn zstd_apply(old: &[u8], patch: &[u8]) -> Vec<u8> {
    let mut d = zstd::stream::read::Decoder::with_ref_prefix(patch, old).unwrap();
    d.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(31)).unwrap();
    let mut out = Vec::new();
    d.read_to_end(&mut out).unwrap();
    out
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let old = std::fs::read(&args[1]).unwrap();
    let new = std::fs::read(&args[2]).unwrap();
    let label = args.get(3).cloned().unwrap_or_default();
    let (z, zt) = timed(|| zstd_patch(&old, &new));
    let (back, za) = timed(|| zstd_apply(&old, &z));
    assert!(back == new, "zstd patch does not rebuild");
    let (raw, bt) = timed(|| {
        let mut p = Vec::new();
        bsdiff::diff(&old, &new, &mut p).unwrap();
        p
    });
    let (bz, bzt) = timed(|| zstd::bulk::compress(&raw, 19).unwrap());
    let (back, ba) = timed(|| {
        let raw = zstd::bulk::decompress(&bz, 64 << 20).unwrap();
        let mut out = Vec::new();
        bsdiff::patch(&old, &mut raw.as_slice(), &mut out).unwrap();
        out
    });
    assert!(back == new, "bsdiff patch does not rebuild");
    let (q, qt) = timed(|| {
        let mut p = Vec::new();
        qbsdiff::Bsdiff::new(&old, &new).compare(std::io::Cursor::new(&mut p)).unwrap();
        p
    });
    let (back, qa) = timed(|| {
        let mut out = Vec::new();
        qbsdiff::Bspatch::new(&q).unwrap().apply(&old, std::io::Cursor::new(&mut out)).unwrap();
        out
    });
    assert!(back == new, "qbsdiff patch does not rebuild");
    println!(
        "{label}: tar {} -> {} B | zstd --patch-from {} B ({zt:.0} ms, apply {za:.1} ms) | bsdiff+zstd {} B ({:.0} ms, apply {ba:.1} ms) | qbsdiff (bzip2) {} B ({qt:.0} ms, apply {qa:.1} ms)",
        old.len(), new.len(), z.len(), bz.len(), bt + bzt, q.len()
    );
}
