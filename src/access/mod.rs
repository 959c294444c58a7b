//! Who may use the API, with no HTTP in it: the users of the htpasswd file
//! and the cache of credentials already verified (`users`), the API's TLS
//! identity (`tls`), and the rules that bound what failed logins cost
//! (`logins`: throttles per address and per name, the bcrypt pool), and
//! the web console's sessions (`sessions`). The
//! API decodes requests and maps the verdicts to statuses; the server and
//! the CLI's `user` commands use the same pieces.

pub mod logins;
pub mod sessions;
pub mod tls;
pub mod users;
