//! Security tests: inputs.

#[allow(unused_imports)]
use crate::common;
