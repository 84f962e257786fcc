include!(concat!(env!("OUT_DIR"), "/stamp.rs"));

fn main() {
    println!("built at {BUILT_AT} ns after 1970");
}
