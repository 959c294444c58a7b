//! A child process (a server, a sim) killed and reaped when dropped, so
//! that none outlives its bench, however the bench ends.

use std::process::Child;

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
