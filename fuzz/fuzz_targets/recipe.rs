//! The recipe decoder on arbitrary bytes: parsing, collecting problems and rendering them must
//! never panic, overflow the stack or take long, whatever the text.
#![no_main]

#[path = "render.rs"]
mod render;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    render::keep_last(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = kiln::recipe::parse("kiln.kdl", text) {
        let _ = render::render(&e);
    }
});
