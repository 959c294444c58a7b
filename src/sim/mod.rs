//! `jetpack sim`: simulated IncludeOS instances that speak the uplink
//! protocol byte for byte as the IncludeOS client does (spec/uplink.md),
//! for tests, benchmarks and users' own load tests of a hangar.

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Usage(String),
}

/// `jetpack sim` options.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// The hangar's URL, as an image's uplink `url` (http://host:port or https://...)
    #[arg(long)]
    pub url: String,
    /// The uplink token instances authenticate with
    #[arg(long)]
    pub token: String,
    /// How many instances
    #[arg(long, default_value_t = 1)]
    pub count: usize,
}

/// Runs the simulated instances; returns the exit code.
pub fn run(_args: SimArgs) -> Result<i32, SimError> {
    Err(SimError::Usage("the simulator is not built yet".into()))
}
