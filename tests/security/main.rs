//! The security suite: attacks from the outside against a real `jetpack
//! serve` (the release binary when the test command gives one through
//! JETPACK_BIN), each finding of the hardening review as a test that
//! failed before it was fixed. Each area is one module.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod files;
mod inputs;
mod listeners;
mod logins;
