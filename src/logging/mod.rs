//! Owns the process's logging: tracing's subscriber set up once, writing
//! every event escaped to stderr and into the ring of recent lines that
//! `GET /v1/log` reads (`ring`). A leaf: the server calls `init` at start
//! and hands the ring to the API.

pub mod ring;

use std::sync::Arc;

pub use ring::LogRing;
use ring::RingWriter;

/// Sets up logging into stderr and the ring `/v1/log` reads.
pub fn init(verbose: bool, lines: usize) -> Arc<LogRing> {
    use tracing_subscriber::EnvFilter;
    let ring = LogRing::new(lines);
    let filter = EnvFilter::try_from_env("JETPACK_LOG").unwrap_or_else(|_| {
        EnvFilter::new(if verbose {
            "jetpack=debug,info"
        } else {
            "info"
        })
    });
    // A subscriber already set (a test harness, a second start in one
    // process) keeps logging; ours would only duplicate it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(RingWriter(ring.clone()))
        .try_init();
    ring
}
