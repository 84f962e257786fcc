//! Prints where it runs: the architecture it was compiled for and a little arithmetic
//! formatted by two crates.io dependencies.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "kiln".to_string());
    let mut ints = itoa::Buffer::new();
    let mut floats = ryu::Buffer::new();
    let bits = ints.format(usize::BITS).to_string();
    println!("hello from {name} on {} ({bits}-bit)", std::env::consts::ARCH);
    println!("pi to ryu: {}", floats.format(std::f64::consts::PI));
}
