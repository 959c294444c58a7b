//! The hangar's input path on arbitrary bytes: WebSocket frames parsed
//! from a stream cut at arbitrary points, their payloads assembled into
//! transports. Nothing may panic, hang or allocate past the caps.
#![no_main]

use bytes::BytesMut;
use jetpack::hangar::frame::Assembler;
use jetpack::hangar::ws::parse_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    // The first byte chooses how the stream is cut into reads.
    let step = 1 + cut as usize;
    let mut buf = BytesMut::new();
    let mut assembler = Assembler::new(4096);
    for chunk in data.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match parse_frame(&mut buf, 8192) {
                Ok(Some(frame)) => {
                    if assembler.push(&frame.payload).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
