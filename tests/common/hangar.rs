//! A hand-driven uplink client for hangar tests: auth and dock as raw
//! HTTP over TCP, then WebSocket frames of our choosing (including what a
//! well-behaved instance never sends), with pings answered in the
//! background unless told to play dead.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use jetpack::hangar::frame::{encode, Code};
use jetpack::hangar::ws::{self, OpCode, Role, WsStream};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

/// Whether an instance (as `GET /v1/instances/{id}` shows it) is docked
/// and has said who it is: an instance docks first and sends IDENT and
/// UPLINK in its first transports, so for a moment it is connected and
/// still nameless.
pub fn is_identified(instance: &serde_json::Value) -> bool {
    instance["status"] == "connected"
        && !instance["ident"].is_null()
        && !instance["uplinkUrl"].is_null()
}

async fn connect(port: u16, from: Option<IpAddr>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(ip) = from {
        socket
            .bind(SocketAddr::new(ip, 0))
            .expect("binding the source address");
    }
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connecting to the hangar")
}

/// Sends raw request bytes; returns the status and body.
pub async fn request(port: u16, from: Option<IpAddr>, bytes: &[u8]) -> (u16, Vec<u8>) {
    let mut tcp = connect(port, from).await;
    tcp.write_all(bytes).await.expect("writing");
    let mut buf = BytesMut::new();
    match ws::read_response(&mut tcp, &mut buf, 1 << 16).await {
        Ok((head, body)) => (head.status, body),
        Err(e) => panic!("no HTTP answer: {e}"),
    }
}

pub fn auth_request(id: &str, key: &str) -> Vec<u8> {
    let body = format!(r#"{{ "id": "{id}", "key": "{key}"}}"#);
    format!(
        "POST /auth HTTP/1.1\r\nHost: hangar\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `POST /auth` as an instance does: (status, body = the session token).
pub async fn auth(port: u16, from: Option<IpAddr>, id: &str, key: &str) -> (u16, String) {
    let (status, body) = request(port, from, &auth_request(id, key)).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `GET /dock`: the WebSocket, or the status that refused it.
pub async fn dock(port: u16, token: Option<&str>) -> Result<WsStream<TcpStream>, u16> {
    let mut tcp = connect(port, None).await;
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let mut req = format!(
        "GET /dock HTTP/1.1\r\nHost: hangar\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).await.expect("writing");
    let mut buf = BytesMut::new();
    let (head, _) = ws::read_response(&mut tcp, &mut buf, 1 << 16)
        .await
        .expect("an answer to the upgrade");
    if head.status != 101 {
        return Err(head.status);
    }
    assert_eq!(
        head.header("sec-websocket-accept"),
        Some(ws::accept_key(key).as_str())
    );
    Ok(WsStream::new(tcp, Role::Client, 1 << 24, &buf))
}

/// A docked raw instance: frames go out as asked, pings are answered
/// (unless `silent`), everything else that comes in is kept.
pub struct RawInstance {
    out: mpsc::Sender<Vec<u8>>,
    pub incoming: mpsc::Receiver<(OpCode, Vec<u8>)>,
}

impl RawInstance {
    pub async fn dock(port: u16, id: &str, key: &str, silent: bool) -> RawInstance {
        let (status, token) = auth(port, None, id, key).await;
        assert_eq!(status, 200, "auth: {token}");
        let mut ws = dock(port, Some(&token)).await.expect("dock");
        let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
        let (in_tx, incoming) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    frame = ws.read_frame() => match frame {
                        Ok(f) if f.opcode == OpCode::Ping => {
                            if !silent && ws.send(OpCode::Pong, &f.payload).await.is_err() {
                                break;
                            }
                        }
                        Ok(f) => {
                            let closing = f.opcode == OpCode::Close;
                            let _ = in_tx.send((f.opcode, f.payload.to_vec())).await;
                            if closing {
                                break;
                            }
                        }
                        Err(_) => {
                            let _ = in_tx.send((OpCode::Close, Vec::new())).await;
                            break;
                        }
                    },
                    msg = out_rx.recv() => match msg {
                        Some(bytes) => {
                            if ws.send(OpCode::Text, &bytes).await.is_err() {
                                break;
                            }
                        }
                        None => {
                            let _ = ws.close(1000, "").await;
                            break;
                        }
                    },
                }
            }
        });
        RawInstance { out, incoming }
    }

    /// Sends one WebSocket TEXT message holding `bytes` as they are.
    pub async fn message(&self, bytes: Vec<u8>) {
        let _ = self.out.send(bytes).await;
    }

    pub async fn transport(&self, code: Code, payload: &[u8]) {
        self.message(encode(code, payload)).await;
    }

    /// Waits for the hangar to close this dock; returns the close frame's
    /// status code (None: the connection just ended).
    pub async fn closed(&mut self, within: Duration) -> Option<Option<u16>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Err(_) => return None,
                Ok(None) => return Some(None),
                Ok(Some((OpCode::Close, payload))) => {
                    return Some(
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
                    )
                }
                Ok(Some(_)) => {}
            }
        }
    }
}
