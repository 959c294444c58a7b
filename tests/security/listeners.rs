//! Security tests: listeners.

#[allow(unused_imports)]
use crate::common;
