//! The metadata service's keys (`mds.*`): its port, the user it runs as,
//! and its two keys (hex, as written: `mds::Keys` checks them where they
//! are used).

use super::values::Values;
use super::ConfigError;

/// This section's fields of `Config`, under the same names.
pub(super) struct Mds {
    pub mds_port: u16,
    pub mds_user: String,
    pub mds_signing_key: String,
    pub mds_token_key: String,
}

pub(super) fn read(v: &Values) -> Result<Mds, ConfigError> {
    Ok(Mds {
        mds_port: v.port("mds.port")?,
        mds_user: v.str("mds.user").to_string(),
        mds_signing_key: v.str("mds.signing-key").to_string(),
        mds_token_key: v.str("mds.token-key").to_string(),
    })
}
