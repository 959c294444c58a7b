//! Security tests: files.

#[allow(unused_imports)]
use crate::common;
