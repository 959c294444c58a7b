//! `jetpack serve`: the server process. It owns first start (TLS identity,
//! the first user, the default uplink), logging, the listeners and their
//! life: SIGTERM drains, SIGHUP reloads users and certificates.
//! Pieces that are not HTTP (users, TLS files, the log ring) live here too,
//! for the CLI's `user` commands share them.

pub mod logring;
pub mod tls;
pub mod users;
