//! Uplink transports (spec/uplink.md 4): a 5-byte header (code, payload
//! length as u32 little-endian) and the payload, carried by WebSocket
//! messages. One transport may span several messages; the first holds the
//! whole header. Payloads are bytes, never checked for UTF-8.
//!
//! `Assembler` is pure (no I/O) so that it can be unit-tested and fuzzed:
//! it never allocates more than what has arrived, whatever length a header
//! announces.

/// Transport codes. Unknown codes are kept, not refused: a newer instance
/// may send something we do not know, and the spec says to log and ignore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ident,
    Log,
    Update,
    AppData,
    Panic,
    Stats,
    Uplink,
    Error,
    Unknown(u8),
}

impl Code {
    pub fn from_u8(b: u8) -> Code {
        match b {
            1 => Code::Ident,
            2 => Code::Log,
            5 => Code::Update,
            6 => Code::AppData,
            7 => Code::Panic,
            8 => Code::Stats,
            9 => Code::Uplink,
            255 => Code::Error,
            other => Code::Unknown(other),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Code::Ident => 1,
            Code::Log => 2,
            Code::Update => 5,
            Code::AppData => 6,
            Code::Panic => 7,
            Code::Stats => 8,
            Code::Uplink => 9,
            Code::Error => 255,
            Code::Unknown(b) => b,
        }
    }
}

pub const HEADER_LEN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    pub code: Code,
    pub payload: Vec<u8>,
}

/// A transport's header: its code, then its payload's length (u32 LE).
fn header(code: Code, length: u32) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = length.to_le_bytes();
    [code.as_u8(), a, b, c, d]
}

/// Header and payload of one transport, ready to be one WebSocket message.
pub fn encode(code: Code, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header(code, payload.len() as u32));
    out.extend_from_slice(payload);
    out
}

/// A transport whose payload is all of `source`, read straight in after
/// the header (an UPDATE's image is not copied a second time);
/// `size_hint` is the expected payload length.
pub fn read_transport(
    code: Code,
    source: &mut impl std::io::Read,
    size_hint: usize,
) -> std::io::Result<Vec<u8>> {
    // The length is known only once all is read: a placeholder until then.
    let mut out = Vec::with_capacity(HEADER_LEN + size_hint);
    out.extend_from_slice(&header(code, 0));
    source.read_to_end(&mut out)?;
    let length = u32::try_from(out.len() - HEADER_LEN).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a transport's payload must be under 4 GiB",
        )
    })?;
    out[..HEADER_LEN].copy_from_slice(&header(code, length));
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a message of {0} byte(s) starts a transport without its whole 5-byte header")]
    TruncatedHeader(usize),
    #[error("a transport of {announced} bytes is larger than uplink.maxtransport ({cap})")]
    TooLarge { announced: u32, cap: u32 },
}

struct Partial {
    code: Code,
    length: usize,
    payload: Vec<u8>,
}

/// Turns the payloads of WebSocket messages, in order, into transports.
pub struct Assembler {
    cap: u32,
    partial: Option<Partial>,
}

/// The first allocation for a payload: large transports grow as their
/// bytes arrive, so a forged length costs nothing.
const FIRST_CHUNK: usize = 64 * 1024;

impl Assembler {
    pub fn new(cap: u32) -> Assembler {
        Assembler { cap, partial: None }
    }

    /// Whether a transport is half received.
    pub fn in_progress(&self) -> bool {
        self.partial.is_some()
    }

    /// Feeds one message; returns the transports it completed. A message
    /// that completes a transport and has bytes left starts the next one
    /// (the instance never does this, but nothing is lost if a peer does).
    pub fn push(&mut self, mut message: &[u8]) -> Result<Vec<Transport>, FrameError> {
        let mut done = Vec::new();
        loop {
            let mut partial = match self.partial.take() {
                Some(p) => p,
                None => {
                    if message.len() < HEADER_LEN {
                        return Err(FrameError::TruncatedHeader(message.len()));
                    }
                    let code = Code::from_u8(message[0]);
                    let announced =
                        u32::from_le_bytes([message[1], message[2], message[3], message[4]]);
                    if announced > self.cap {
                        return Err(FrameError::TooLarge {
                            announced,
                            cap: self.cap,
                        });
                    }
                    message = &message[HEADER_LEN..];
                    let length = announced as usize;
                    Partial {
                        code,
                        length,
                        payload: Vec::with_capacity(length.min(message.len().max(FIRST_CHUNK))),
                    }
                }
            };
            let take = (partial.length - partial.payload.len()).min(message.len());
            partial.payload.extend_from_slice(&message[..take]);
            message = &message[take..];
            if partial.payload.len() < partial.length {
                self.partial = Some(partial);
                return Ok(done);
            }
            done.push(Transport {
                code: partial.code,
                payload: partial.payload,
            });
            if message.is_empty() {
                return Ok(done);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(Code::from_u8(b).as_u8(), b);
        }
        assert_eq!(Code::from_u8(1), Code::Ident);
        assert_eq!(Code::from_u8(255), Code::Error);
        assert_eq!(Code::from_u8(3), Code::Unknown(3));
    }

    #[test]
    fn a_transport_in_one_message() {
        let msg = encode(Code::Log, b"hello\xff\xfe");
        assert_eq!(&msg[..5], &[2, 7, 0, 0, 0]);
        let mut a = Assembler::new(1024);
        let t = a.push(&msg).unwrap();
        assert_eq!(
            t,
            vec![Transport {
                code: Code::Log,
                payload: b"hello\xff\xfe".to_vec()
            }]
        );
        assert!(!a.in_progress());
    }

    #[test]
    fn zero_length_payloads_complete_at_once() {
        let mut a = Assembler::new(16);
        let t = a.push(&encode(Code::Stats, b"")).unwrap();
        assert_eq!(t.len(), 1);
        assert!(t[0].payload.is_empty());
    }

    #[test]
    fn a_transport_read_from_a_source_is_the_encoded_one() {
        let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        // A wrong hint changes nothing: the length is what was read.
        for hint in [0, 10, payload.len()] {
            let read = read_transport(Code::Update, &mut &payload[..], hint).unwrap();
            assert_eq!(read, encode(Code::Update, &payload));
        }
        let empty = read_transport(Code::Update, &mut &b""[..], 100).unwrap();
        assert_eq!(empty, encode(Code::Update, b""));
    }

    #[test]
    fn a_transport_split_over_messages() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let msg = encode(Code::Update, &payload);
        let mut a = Assembler::new(1 << 20);
        assert!(a.push(&msg[..5]).unwrap().is_empty());
        assert!(a.in_progress());
        assert!(a.push(&msg[5..4000]).unwrap().is_empty());
        assert!(a.push(&[]).unwrap().is_empty());
        let t = a.push(&msg[4000..]).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].payload, payload);
        assert!(!a.in_progress());
    }

    #[test]
    fn the_rest_of_a_message_starts_the_next_transport() {
        let mut msg = encode(Code::Ident, b"{}");
        msg.extend(encode(Code::Uplink, b"[1]"));
        let t = Assembler::new(64).push(&msg).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].code, Code::Uplink);
    }

    #[test]
    fn headers_that_are_not_utf8_are_just_lengths() {
        // Length 0x80: the header bytes are not valid UTF-8.
        let payload = vec![b'{'; 0x80];
        let msg = encode(Code::Ident, &payload);
        assert!(std::str::from_utf8(&msg).is_err());
        let t = Assembler::new(1024).push(&msg).unwrap();
        assert_eq!(t[0].payload.len(), 0x80);
    }

    #[test]
    fn truncated_headers_and_oversized_lengths_are_refused() {
        let mut a = Assembler::new(1000);
        assert_eq!(a.push(&[1, 2, 0]), Err(FrameError::TruncatedHeader(3)));
        assert_eq!(a.push(&[]), Err(FrameError::TruncatedHeader(0)));
        // 4 GiB announced: refused before anything is allocated.
        assert_eq!(
            a.push(&[2, 0xff, 0xff, 0xff, 0xff, b'x']),
            Err(FrameError::TooLarge {
                announced: u32::MAX,
                cap: 1000
            })
        );
        // At the cap exactly is fine.
        let mut msg = vec![2];
        msg.extend(1000u32.to_le_bytes());
        assert!(a.push(&msg).unwrap().is_empty());
        assert!(a.push(&[0; 1000]).unwrap().len() == 1);
    }

    #[test]
    fn a_forged_length_allocates_only_what_arrived() {
        let mut a = Assembler::new(u32::MAX);
        let mut msg = vec![2];
        msg.extend(u32::MAX.to_le_bytes());
        msg.extend(b"abc");
        assert!(a.push(&msg).unwrap().is_empty());
        let cap = a.partial.as_ref().unwrap().payload.capacity();
        assert!(cap <= FIRST_CHUNK, "{cap}");
    }
}
