//! The accept both listeners (the API, the hangar) run: take a connection,
//! admit it through the listener's gate (one over a cap is closed here,
//! before any TLS or HTTP work), set TCP_NODELAY (both speak small
//! request/response exchanges that Nagle would delay), and survive accept
//! errors without a busy loop or a flood of log lines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::{ConnGate, ConnPermit, Occasional};

/// How long to pause after an accept error: most often the descriptor
/// table is full and the pending connection stays in the backlog, so
/// retrying at once would spin.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How often an accept error is worth a log line.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A connection let in: its stream, its peer, and its place at the gate
/// (given back when the permit is dropped).
pub struct Admitted {
    pub tcp: TcpStream,
    pub peer: SocketAddr,
    pub permit: ConnPermit,
}

/// A listening socket with the gate that bounds its connections.
pub struct GatedListener {
    listener: TcpListener,
    gate: Arc<ConnGate>,
    errors: Occasional,
}

impl GatedListener {
    /// Log lines name the listener as the gate does (`ConnGate::new`).
    pub fn new(listener: TcpListener, gate: Arc<ConnGate>) -> GatedListener {
        GatedListener {
            listener,
            gate,
            errors: Occasional::new(ERROR_LOG_INTERVAL),
        }
    }

    /// The next connection the gate admits. Cancel-safe (for `select!`):
    /// nothing is awaited between a connection's accept and its admission.
    pub async fn accept(&self) -> Admitted {
        loop {
            let (tcp, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    if let Some(quiet) = self.errors.tick() {
                        tracing::error!(
                            "{}: accept: {e} ({quiet} more accept error(s) not logged since the last line)",
                            self.gate.name()
                        );
                    }
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            };
            // Over a cap: dropped (closed) here; the gate counted and
            // logged it.
            let Ok(permit) = self.gate.admit(peer.ip()) else {
                continue;
            };
            // Best effort: a socket that refuses it still works, only
            // with Nagle's delays.
            let _ = tcp.set_nodelay(true);
            return Admitted { tcp, peer, permit };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn admits_up_to_the_gate_and_closes_the_rest_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gate = ConnGate::new("test", 1, 1, false);
        let gated = GatedListener::new(listener, gate.clone());
        let _first = TcpStream::connect(addr).await.unwrap();
        let admitted = gated.accept().await;
        assert!(admitted.tcp.nodelay().unwrap());
        assert_eq!(gate.open(), 1);
        let mut refused = TcpStream::connect(addr).await.unwrap();
        let third = TcpStream::connect(addr);
        // The second connection is refused (closed) while the first holds
        // the only place; the accept goes on waiting for one it can admit.
        let waiting = tokio::time::timeout(Duration::from_millis(200), gated.accept()).await;
        assert!(waiting.is_err());
        let mut buf = [0u8; 1];
        assert_eq!(refused.read(&mut buf).await.unwrap(), 0, "closed");
        assert_eq!(gate.refused(), 1);
        drop(admitted);
        let _third = third.await.unwrap();
        let next = gated.accept().await;
        assert_eq!(next.peer.ip(), addr.ip());
    }
}
