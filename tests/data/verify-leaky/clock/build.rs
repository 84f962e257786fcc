// Writes the time the build script ran into the program: a build that is not reproducible.
fn main() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{out}/stamp.rs"), format!("pub const BUILT_AT: u128 = {now};\n")).expect("write stamp.rs");
}
