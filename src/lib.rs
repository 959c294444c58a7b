//! jetpack: IncludeOS unikernel management and a jail runtime on FreeBSD
//! jails and ZFS clones (namespaces and zfs-fuse or directories on Linux).
//! The layers of docs/ARCHITECTURE.md are the modules: `cli` and `api` on
//! top (`server` runs the API, `client` calls it), `catalog` and `jobs`
//! below them, the host `runtime` (datasets and jails backends) beside,
//! `access` (users, TLS identity, login rules) and `logging` as leaves,
//! `store` and `config` under everything.

pub mod access;
pub mod api;
pub mod bootfiles;
pub mod build;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod disks;
pub mod events;
pub mod files;
pub mod hangar;
pub mod hosts;
pub mod hypervisor;
pub mod jobs;
pub mod launch;
pub mod logging;
pub mod mds;
pub mod metrics;
pub mod model;
pub mod nacl;
pub mod names;
pub mod net;
pub mod netboot;
pub mod runtime;
pub mod server;
pub mod sim;
pub mod store;
pub mod throttle;
