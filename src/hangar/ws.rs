//! The WebSocket layer of the uplink (RFC 6455), written for what IncludeOS
//! does rather than what browsers do: TEXT frames are bytes (no UTF-8
//! check: transports' headers and payloads are binary, spec/uplink.md 4),
//! no extensions, no subprotocols. Both ends live here: the hangar is the
//! server (unmasked frames out, masked or not in), the simulator and the
//! tests are clients (masked frames out). Also the little HTTP/1.1 both
//! need around the upgrade: reading a head with a size cap.
//!
//! Reads are cancel-safe (bytes are buffered in the stream until a whole
//! frame is there), so a session can `select!` over reading, its outgoing
//! queue and its ping timer.

use base64::Engine;
use bytes::{Buf, BytesMut};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_u8(b: u8) -> Option<OpCode> {
        Some(match b {
            0 => OpCode::Continuation,
            1 => OpCode::Text,
            2 => OpCode::Binary,
            8 => OpCode::Close,
            9 => OpCode::Ping,
            10 => OpCode::Pong,
            _ => return None,
        })
    }

    fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0,
            OpCode::Text => 1,
            OpCode::Binary => 2,
            OpCode::Close => 8,
            OpCode::Ping => 9,
            OpCode::Pong => 10,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: OpCode,
    pub payload: BytesMut,
}

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("WebSocket protocol error: {0}")]
    Protocol(String),
    #[error("a WebSocket frame of {announced} bytes is larger than the limit ({limit})")]
    TooLarge { announced: u64, limit: usize },
    #[error("HTTP head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("malformed HTTP: {0}")]
    Http(String),
}

fn protocol(why: impl Into<String>) -> WsError {
    WsError::Protocol(why.into())
}

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// Parses one frame from the front of `buf`, unmasking it in place.
/// `Ok(None)`: more bytes are needed. Pure, for tests and the fuzzer.
pub fn parse_frame(buf: &mut BytesMut, limit: usize) -> Result<Option<Frame>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(protocol("reserved bits set (no extension was negotiated)"));
    }
    let opcode = OpCode::from_u8(b0 & 0x0f)
        .ok_or_else(|| protocol(format!("unknown opcode {}", b0 & 0x0f)))?;
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (n as u64, 2),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err(protocol(
            "a control frame must be whole and at most 125 bytes",
        ));
    }
    if len > limit as u64 {
        return Err(WsError::TooLarge {
            announced: len,
            limit,
        });
    }
    let mask = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    let len = len as usize;
    if buf.len() < at + len {
        buf.reserve(at + len - buf.len());
        return Ok(None);
    }
    buf.advance(at);
    let mut payload = buf.split_to(len);
    if let Some(m) = mask {
        apply_mask(&mut payload, m);
    }
    Ok(Some(Frame {
        fin,
        opcode,
        payload,
    }))
}

/// XORs the mask in, eight bytes at a time: every byte an instance sends
/// passes through here.
fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // Chunks of eight keep the mask's phase: the tail starts at index 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A frame's head (FIN, opcode, length, and the mask from a client) for
/// a payload of `len` bytes: the buffer and how much of it is used.
fn frame_head(role: Role, opcode: OpCode, len: usize, mask: [u8; 4]) -> ([u8; 14], usize) {
    let mut head = [0u8; 14];
    head[0] = 0x80 | opcode.as_u8();
    let mask_bit = if role == Role::Client { 0x80 } else { 0 };
    let mut used = match len {
        n if n < 126 => {
            head[1] = mask_bit | n as u8;
            2
        }
        n if n <= u16::MAX as usize => {
            head[1] = mask_bit | 126;
            head[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            4
        }
        n => {
            head[1] = mask_bit | 127;
            head[2..10].copy_from_slice(&(n as u64).to_be_bytes());
            10
        }
    };
    if role == Role::Client {
        head[used..used + 4].copy_from_slice(&mask);
        used += 4;
    }
    (head, used)
}

/// The bytes of one frame: unmasked from a server, masked from a client.
pub fn encode_frame(role: Role, opcode: OpCode, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let (head, used) = frame_head(role, opcode, payload.len(), mask);
    let mut out = Vec::with_capacity(used + payload.len());
    out.extend_from_slice(&head[..used]);
    out.extend_from_slice(payload);
    if role == Role::Client {
        apply_mask(&mut out[used..], mask);
    }
    out
}

/// A WebSocket over any byte stream (TCP, TLS).
pub struct WsStream<S> {
    io: S,
    buf: BytesMut,
    role: Role,
    limit: usize,
    mask_state: u64,
}

/// What a read buffer starts with, and is cut back to after a large frame:
/// most uplink messages are small, and 20,000 sessions each keeping a
/// megabyte around would be 20 GB.
const READ_BUF: usize = 4096;

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// `leftover`: bytes already read past the HTTP head.
    pub fn new(io: S, role: Role, limit: usize, leftover: &[u8]) -> WsStream<S> {
        let mut buf = BytesMut::with_capacity(READ_BUF.max(leftover.len()));
        buf.extend_from_slice(leftover);
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        WsStream {
            io,
            buf,
            role,
            limit,
            mask_state: u64::from_le_bytes(seed) | 1,
        }
    }

    /// The next frame. Cancel-safe: a read cut short loses nothing.
    pub async fn read_frame(&mut self) -> Result<Frame, WsError> {
        loop {
            if let Some(frame) = parse_frame(&mut self.buf, self.limit)? {
                if self.buf.is_empty() && self.buf.capacity() > 16 * READ_BUF {
                    self.buf = BytesMut::with_capacity(READ_BUF);
                }
                return Ok(frame);
            }
            if self.buf.capacity() == self.buf.len() {
                self.buf.reserve(READ_BUF);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(WsError::Closed);
            }
        }
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift: masks need only be unpredictable to the path, not secret.
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state = x;
        (x as u32).to_le_bytes()
    }

    pub async fn send(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), WsError> {
        match self.role {
            // Unmasked, the payload goes out as it is: an UPDATE's image
            // (megabytes) is not copied once more into a frame.
            Role::Server => {
                let (head, used) = frame_head(Role::Server, opcode, payload.len(), [0; 4]);
                self.io.write_all(&head[..used]).await?;
                self.io.write_all(payload).await?;
            }
            Role::Client => {
                let mask = self.next_mask();
                let bytes = encode_frame(Role::Client, opcode, payload, mask);
                self.io.write_all(&bytes).await?;
            }
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Sends a close frame with `code` and ends the stream.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), WsError> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend(reason.bytes().take(120));
        self.send(OpCode::Close, &payload).await?;
        self.io.shutdown().await?;
        Ok(())
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }
}

/// Reads an HTTP head (up to the blank line) into `buf`; returns its
/// length. Bytes after it stay in `buf`.
pub async fn read_head<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    limit: usize,
) -> Result<usize, WsError> {
    let mut scanned = 0;
    loop {
        if let Some(i) = buf[scanned..].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(scanned + i + 4);
        }
        scanned = buf.len().saturating_sub(3);
        if buf.len() >= limit {
            return Err(WsError::HeadTooLarge(limit));
        }
        buf.reserve(1024);
        if io.read_buf(buf).await? == 0 {
            return Err(WsError::Closed);
        }
    }
}

/// Reads exactly `len` body bytes after a head, `buf` holding what came
/// with it.
pub async fn read_body<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    len: usize,
) -> Result<Vec<u8>, WsError> {
    while buf.len() < len {
        buf.reserve(len - buf.len());
        if io.read_buf(buf).await? == 0 {
            return Err(WsError::Closed);
        }
    }
    Ok(buf.split_to(len).to_vec())
}

/// A header's value, by case-insensitive name.
pub fn header<'a>(headers: &[httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn lists(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether a request's comma-separated header lists `token`.
pub fn header_has(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .any(|v| lists(v, token))
}

/// A response head as the client side reads it.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the comma-separated header `name` lists `token`.
    pub fn has(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| lists(v, token))
    }
}

/// Reads a response head and its `Content-Length` body (client side).
pub async fn read_response<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    max_body: usize,
) -> Result<(ResponseHead, Vec<u8>), WsError> {
    let n = read_head(io, buf, 16 * 1024).await?;
    let head = {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        res.parse(&buf[..n])
            .map_err(|e| WsError::Http(e.to_string()))?;
        ResponseHead {
            status: res.code.unwrap_or(0),
            headers: res
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        }
    };
    buf.advance(n);
    let len = match head.header("content-length") {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| WsError::Http(format!("Content-Length {v:?}")))?,
        None => 0,
    };
    if len > max_body {
        return Err(WsError::Http(format!("a body of {len} bytes is too large")));
    }
    let body = if head.status == 101 {
        Vec::new()
    } else {
        read_body(io, buf, len).await?
    };
    Ok((head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_of_rfc_6455() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn masking_in_words_equals_masking_bytes() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut fast = data.clone();
            apply_mask(&mut fast, mask);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow, "{len}");
        }
    }

    #[test]
    fn masked_text_frames_with_binary_bytes_parse() {
        let payload = [1u8, 0x80, 0, 0, 0, 0xff, 0xfe];
        let bytes = encode_frame(Role::Client, OpCode::Text, &payload, [9, 8, 7, 6]);
        // Fed a byte at a time, nothing comes out until the frame is whole.
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = parse_frame(&mut buf, 1024).unwrap();
            if i + 1 < bytes.len() {
                assert!(got.is_none());
            } else {
                let f = got.unwrap();
                assert_eq!(f.opcode, OpCode::Text);
                assert!(f.fin);
                assert_eq!(&f.payload[..], &payload);
            }
        }
    }

    #[test]
    fn every_length_encoding_round_trips() {
        for len in [0usize, 125, 126, 65535, 65536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            for role in [Role::Client, Role::Server] {
                let mut buf =
                    BytesMut::from(&encode_frame(role, OpCode::Binary, &payload, [1, 2, 3, 4])[..]);
                let f = parse_frame(&mut buf, 1 << 20).unwrap().unwrap();
                assert_eq!(f.payload.len(), len);
                assert_eq!(&f.payload[..], &payload[..]);
                assert!(buf.is_empty());
            }
        }
    }

    #[test]
    fn bad_frames_are_refused() {
        let refuse = |bytes: &[u8], limit| parse_frame(&mut BytesMut::from(bytes), limit).is_err();
        assert!(refuse(&[0x81 | 0x40, 0], 10), "reserved bit");
        assert!(refuse(&[0x83, 0], 10), "opcode 3");
        assert!(refuse(&[0x09, 0], 10), "fragmented ping");
        assert!(refuse(&[0x89, 126, 0, 200], 1000), "long ping");
        assert!(refuse(
            &[0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            1 << 20
        ));
        // Over the limit: refused on the header alone.
        assert!(matches!(
            parse_frame(&mut BytesMut::from(&[0x82u8, 126, 0x10, 0][..]), 100),
            Err(WsError::TooLarge {
                announced: 4096,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn streams_exchange_frames_and_heads() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut client = WsStream::new(a, Role::Client, 1 << 20, &[]);
        let mut server = WsStream::new(b, Role::Server, 1 << 20, &[]);
        client
            .send(OpCode::Text, b"\x01\x02\x00\x00\x00hi")
            .await
            .unwrap();
        let f = server.read_frame().await.unwrap();
        assert_eq!(&f.payload[..], b"\x01\x02\x00\x00\x00hi");
        server.send(OpCode::Ping, b"").await.unwrap();
        assert_eq!(client.read_frame().await.unwrap().opcode, OpCode::Ping);
        server.close(1000, "bye").await.unwrap();
        let f = client.read_frame().await.unwrap();
        assert_eq!(f.opcode, OpCode::Close);
        assert!(matches!(client.read_frame().await, Err(WsError::Closed)));
    }

    #[tokio::test]
    async fn a_server_sends_every_length_as_the_client_reads_it() {
        for len in [0usize, 125, 126, 65535, 65536, 200_000] {
            let (a, b) = tokio::io::duplex(1 << 12);
            let mut client = WsStream::new(a, Role::Client, 1 << 20, &[]);
            let mut server = WsStream::new(b, Role::Server, 1 << 20, &[]);
            let payload: Vec<u8> = (0..len).map(|i| (i % 249) as u8).collect();
            let (sent, read) =
                tokio::join!(server.send(OpCode::Binary, &payload), client.read_frame());
            sent.unwrap();
            let f = read.unwrap();
            assert_eq!((f.opcode, f.payload.len()), (OpCode::Binary, len));
            assert_eq!(&f.payload[..], &payload[..]);
        }
    }

    #[tokio::test]
    async fn heads_have_a_size_cap() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&[b'x'; 9000]).await.unwrap();
        let mut buf = BytesMut::new();
        assert!(matches!(
            read_head(&mut b, &mut buf, 8192).await,
            Err(WsError::HeadTooLarge(8192))
        ));
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA")
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        let (head, body) = read_response(&mut b, &mut buf, 100).await.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(body, b"abc");
        assert_eq!(&buf[..], b"EXTRA");
    }
}
