//! The hangar's request heads on arbitrary bytes: what an outsider sends
//! before any authentication. Routing a head (HTTP parse, methods, paths,
//! Content-Length, the WebSocket upgrade and bearer) must never panic,
//! and every verdict must respect the caps.
#![no_main]

use jetpack::hangar::listener::{route, Route, MAX_HEAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As the listener reads it: at most MAX_HEAD bytes, up to the blank line.
    let data = &data[..data.len().min(MAX_HEAD)];
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(data.len(), |i| i + 4);
    match route(&data[..end]) {
        Route::Auth { body_len, .. } => assert!(body_len <= 4096),
        // The bearer is passed on trimmed: no padding reaches the token check.
        Route::Dock { bearer, .. } => assert!(bearer.is_none_or(|b| b.trim() == b)),
        Route::Refuse { status, .. } => assert!((400..500).contains(&status)),
    }
});
