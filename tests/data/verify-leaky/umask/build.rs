// Writes the mode data.txt has in this checkout into the program: a git clone under umask 077
// gives 0600 where one under 022 gives 0644.
use std::os::unix::fs::PermissionsExt;

fn main() {
    println!("cargo:rerun-if-changed=data.txt");
    let mode = std::fs::metadata("data.txt").expect("data.txt").permissions().mode() & 0o777;
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{out}/mode.rs"), format!("pub const MODE: u32 = {mode:#o};\n")).expect("write mode.rs");
}
