fn main() {
    let d = ring::digest::digest(&ring::digest::SHA256, b"kiln");
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    println!("ring sha256(kiln) = {hex}");
}
