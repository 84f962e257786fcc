fn main() {
    let text = "kiln ".repeat(1000);
    let packed = zstd::encode_all(text.as_bytes(), 19).expect("compress");
    let back = zstd::decode_all(&packed[..]).expect("decompress");
    assert_eq!(back, text.as_bytes());
    println!("zstd {} bytes -> {} bytes and back", text.len(), packed.len());
}
