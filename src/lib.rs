//! jetpack: IncludeOS unikernel management and a jail runtime on FreeBSD
//! jails and ZFS clones (namespaces and zfs-fuse or directories on Linux).
//! The layers of docs/ARCHITECTURE.md are the modules: `cli` on top, the
//! host `runtime` (datasets and jails backends) below, `store` and `config`
//! beside it.

pub mod cli;
pub mod config;
pub mod names;
pub mod runtime;
pub mod store;
