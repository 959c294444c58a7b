//! `jetpack sim` fleets for the tests that need docked instances on a real
//! server: the command aimed at the server's hangar with the default
//! uplink's token, a guard that ends a child process with the test, and
//! the ids a seeded sim gives its instances.

use std::process::{Child, Command};

use super::server::TestServer;
use super::JETPACK;

/// A child process (a sim, a stream reader) killed and reaped when
/// dropped, so none outlives its test.
pub struct Killed(pub Child);

impl Killed {
    pub fn spawn(cmd: &mut Command) -> Killed {
        Killed(cmd.spawn().expect("starting a child process"))
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The default uplink's token.
pub fn uplink_token(server: &TestServer) -> String {
    let (status, list) = server.json(&[], "/v1/uplinks");
    assert_eq!(status, 200, "{list}");
    list[0]["token"]
        .as_str()
        .expect("the default uplink's token")
        .to_string()
}

/// `jetpack sim --url ... --token ...` for this server's hangar (`tls`:
/// the hangar's scheme); the caller adds the fleet's flags and its stdio.
pub fn sim_command(server: &TestServer, tls: bool) -> Command {
    let scheme = if tls { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{}", server.uplink_port);
    let mut cmd = Command::new(JETPACK);
    cmd.args(["sim", "--url", &url, "--token", &uplink_token(server)]);
    cmd
}

/// The ids `jetpack sim --seed SEED` gives its instances.
pub fn sim_id(seed: &str, index: usize) -> String {
    use sha1::{Digest, Sha1};
    hex::encode(Sha1::digest(format!("{seed}-{index}").as_bytes()))[..32].to_string()
}
