//! The bounds a listener puts on its clients (`server.timeout.*`,
//! `*.maxconns*`) and on failed logins (`server.login.*`): typed here so
//! that the API, the hangar and their tests read one shape.

use std::time::Duration;

/// What one listener allows its connections.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnLimits {
    /// From accept to the end of the TLS handshake.
    pub handshake: Duration,
    /// From a request's first byte to the end of its head.
    pub head: Duration,
    /// Between requests on a keep-alive connection.
    pub idle: Duration,
    /// Longest wait for the next piece of a request body, and the time
    /// after which `min_body_rate` applies.
    pub body_stall: Duration,
    /// Bytes per second a body must average once it ran `body_stall`.
    pub min_body_rate: u64,
    /// Connections at once; None: derived from the descriptor limit.
    pub max_conns: Option<usize>,
    pub max_conns_per_ip: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            handshake: Duration::from_secs(10),
            head: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body_stall: Duration::from_secs(30),
            min_body_rate: 1024,
            max_conns: None,
            max_conns_per_ip: 64,
        }
    }
}

/// How failed logins are throttled and how much bcrypt may run at once.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginLimits {
    /// Failures per second refilled per source address and per user name.
    pub fail_rate: f64,
    /// Failures allowed at once before the rate applies.
    pub fail_burst: f64,
    /// bcrypt verifications at once; None: half the cores, at least 1.
    pub workers: Option<usize>,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            fail_rate: 1.0,
            fail_burst: 10.0,
            workers: None,
        }
    }
}
