include!(concat!(env!("OUT_DIR"), "/mode.rs"));

fn main() {
    println!("data.txt had mode {MODE:o} when this was built");
}
