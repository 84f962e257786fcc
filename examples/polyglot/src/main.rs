//! The Rust program of the polyglot example: prints where it runs and a checksum computed the
//! same way on every platform.

fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(2_166_136_261u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(16_777_619))
}

fn main() {
    println!("api (Rust) on {}: fnv1a(kiln)={:08x}", std::env::consts::ARCH, fnv1a(b"kiln"));
}
