//! Security tests: logins.

#[allow(unused_imports)]
use crate::common;
