//! The server's figures: one registry that every layer counts into and that
//! every exporter reads. Layers count into `figures()` (atomics: a frame, a
//! request or a dock costs an increment, never a lock); a scrape turns the
//! counters and what is computed at that moment (the fleet's counts, the
//! instances' STATS, jobs, pods, blobs, the process) into a `Snapshot`, a
//! plain list of families and samples. `/metrics` encodes a snapshot with
//! `prometheus-client` (encode.rs); a pushing reporter (InfluxDB line
//! protocol, issue 18 item 4) reads the same snapshot.
//!
//! - `figures`: the counters and histograms kept while the server runs
//! - `snapshot`: the neutral form of one scrape
//! - `collect`: what a scrape computes from the layers (fleet, store, blobs)
//! - `instances`: instance STATS flattened into bounded gauges
//! - `mds`: the metadata service's figures, asked over its control socket
//! - `process`: CPU, memory and descriptors of this process
//! - `encode`: a snapshot as Prometheus text 0.0.4 or OpenMetrics
//! - `influx`: the InfluxDB reporter (STATS and the figures, pushed)

pub mod collect;
pub mod encode;
pub mod figures;
pub mod influx;
pub mod instances;
pub mod mds;
pub mod process;
pub mod snapshot;

pub use collect::{Scrape, Sources};
pub use encode::Format;
pub use figures::{figures, Figures};
pub use snapshot::{Family, Kind, Sample, Snapshot, Value};
