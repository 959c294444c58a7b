//! One docked instance: WebSocket messages in, assembled into transports
//! for the fleet; pings, queued transports (UPDATE, STATS requests) and
//! the close out. One task owns the stream and `select!`s over the three,
//! so a session costs a task, a small read buffer and a queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fleet::Outgoing;
use super::frame::Assembler;
use super::token::InstanceId;
use super::ws::{OpCode, WsError, WsStream};
use super::Hangar;
use crate::metrics::figures::Disconnect;

/// Transports waiting to go out to one instance.
const QUEUE: usize = 8;

/// How many ping intervals of silence mean the instance is gone (it
/// answers every ping with a pong).
const SILENT_PINGS: u32 = 3;

pub async fn run<S>(
    hangar: Arc<Hangar>,
    id: InstanceId,
    peer: SocketAddr,
    mut ws: WsStream<S>,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let fleet = hangar.fleet.clone();
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let generation = fleet.docked(&id, peer, tx);
    let figures = &crate::metrics::figures().hangar;
    figures.docked();
    tracing::debug!(instance = %id, "docked from {peer}");
    let every = hangar.settings.ping;
    let write_timeout = every * SILENT_PINGS;
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    let mut assembler = Assembler::new(hangar.settings.max_transport);
    let (cause, why): (Disconnect, String) = loop {
        tokio::select! {
            frame = ws.read_frame() => {
                let frame = match frame {
                    Ok(f) => f,
                    Err(WsError::Closed) => break (Disconnect::Closed, "connection closed".into()),
                    Err(e) => {
                        tracing::warn!(instance = %id, "closing the dock from {peer}: {e}");
                        let code = if matches!(e, WsError::TooLarge { .. }) { 1009 } else { 1002 };
                        let _ = ws.close(code, "protocol error").await;
                        let cause = if matches!(e, WsError::Io(_)) { Disconnect::Closed } else { Disconnect::Protocol };
                        break (cause, e.to_string());
                    }
                };
                heard = Instant::now();
                match frame.opcode {
                    OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                        match assembler.push(&frame.payload) {
                            Ok(transports) => {
                                for t in transports {
                                    figures.received(t.code.as_u8(), t.payload.len());
                                    fleet.received(&id, t);
                                }
                            }
                            Err(e) => {
                                tracing::warn!(instance = %id, "closing the dock from {peer}: {e}");
                                let _ = ws.close(1009, "bad transport").await;
                                break (Disconnect::Protocol, e.to_string());
                            }
                        }
                    }
                    OpCode::Ping => {
                        if let Err(e) = send(&mut ws, OpCode::Pong, &frame.payload, write_timeout).await {
                            break (Disconnect::Write, e.to_string());
                        }
                    }
                    OpCode::Pong => {}
                    OpCode::Close => {
                        let _ = ws.close(1000, "").await;
                        break (Disconnect::Closed, "closed by the instance".into());
                    }
                }
            }
            out = rx.recv() => match out {
                Some(Outgoing::Transport(bytes)) => {
                    if let Err(e) = send(&mut ws, OpCode::Binary, &bytes, write_timeout).await {
                        break (Disconnect::Write, e.to_string());
                    }
                }
                Some(Outgoing::Close(why)) => {
                    let _ = ws.close(1000, why).await;
                    break (Disconnect::Replaced, why.into());
                }
                None => break (Disconnect::Replaced, "the session was dropped".into()),
            },
            _ = ping.tick() => {
                if heard.elapsed() > every * SILENT_PINGS {
                    let _ = ws.close(1001, "heartbeat lost").await;
                    break (Disconnect::Heartbeat, format!("heartbeat lost: nothing heard for {}s", heard.elapsed().as_secs()));
                }
                if let Err(e) = send(&mut ws, OpCode::Ping, &[], write_timeout).await {
                    break (Disconnect::Write, e.to_string());
                }
            }
            _ = stop.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(1001, "server stopping")).await;
                break (Disconnect::ServerStop, "the server stopped".into());
            }
        }
    };
    figures.disconnected(cause);
    tracing::debug!(instance = %id, "undocked: {why}");
    fleet.undocked(&id, generation, &why);
}

/// A send that gives up when the instance stops reading (its TCP window
/// stays shut), so that a stuck peer cannot hold the session forever.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WsStream<S>,
    op: OpCode,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), WsError> {
    match tokio::time::timeout(timeout, ws.send(op, bytes)).await {
        Ok(r) => r,
        Err(_) => Err(WsError::Protocol("the instance stopped reading".into())),
    }
}
