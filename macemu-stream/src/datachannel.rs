//! The `input` DataChannel, sans-IO: browser binary messages → typed events, and the server → browser
//! per-frame metadata (the 113-byte PNG header and the 65-byte H.264 metadata). Little-endian throughout.

use thiserror::Error;

/// A message from the browser on the `input` DataChannel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClientEvent {
    /// Relative mouse motion (pointer lock).
    MouseMove { dx: i16, dy: i16, t: f64 },
    /// A mouse button: 0 left, 1 middle, 2 right.
    MouseButton { button: u8, down: bool, t: f64 },
    /// A key, as the browser's legacy `keyCode`.
    Key { key_code: u16, down: bool, t: f64 },
    /// Latency probe; `t1` is the browser's `performance.now()`.
    Ping { sequence: u32, t1: f64 },
    /// Absolute mouse position in frame pixels.
    MouseAbs { x: u16, y: u16, t: f64 },
    /// Mouse mode: false absolute, true relative.
    MouseMode { relative: bool },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ClientMessageError {
    #[error("empty DataChannel message")]
    Empty,
    #[error("unknown input message type {0}")]
    UnknownType(u8),
    #[error("input message type {kind} needs {want} bytes, got {got}")]
    Length { kind: u8, want: usize, got: usize },
    #[error("mouse button {0} is not 0, 1 or 2")]
    BadButton(u8),
    #[error("mouse mode {0} is not 0 or 1")]
    BadMouseMode(u8),
    #[error("timestamp is not a finite number")]
    BadTime,
}

/// Wire size of each message type, type byte included.
fn wire_len(kind: u8) -> Option<usize> {
    Some(match kind {
        1 => 1 + 2 + 2 + 8,
        2 => 1 + 1 + 1 + 8,
        3 => 1 + 2 + 1 + 8,
        4 => 1 + 4 + 8,
        5 => 1 + 2 + 2 + 8,
        6 => 1 + 1,
        _ => return None,
    })
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn f64_at(b: &[u8], o: usize) -> Result<f64, ClientMessageError> {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    let v = f64::from_le_bytes(a);
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ClientMessageError::BadTime)
    }
}

/// Parses one binary DataChannel message. The message must have exactly its type's length (browsers
/// deliver whole messages; trailing bytes mean a client speaking another protocol).
pub fn parse_client_message(b: &[u8]) -> Result<ClientEvent, ClientMessageError> {
    let &kind = b.first().ok_or(ClientMessageError::Empty)?;
    let want = wire_len(kind).ok_or(ClientMessageError::UnknownType(kind))?;
    if b.len() != want {
        return Err(ClientMessageError::Length {
            kind,
            want,
            got: b.len(),
        });
    }
    Ok(match kind {
        1 => ClientEvent::MouseMove {
            dx: u16_at(b, 1) as i16,
            dy: u16_at(b, 3) as i16,
            t: f64_at(b, 5)?,
        },
        2 => {
            if b[1] > 2 {
                return Err(ClientMessageError::BadButton(b[1]));
            }
            ClientEvent::MouseButton {
                button: b[1],
                down: b[2] != 0,
                t: f64_at(b, 3)?,
            }
        }
        3 => ClientEvent::Key {
            key_code: u16_at(b, 1),
            down: b[3] != 0,
            t: f64_at(b, 4)?,
        },
        4 => ClientEvent::Ping {
            sequence: u32::from_le_bytes([b[1], b[2], b[3], b[4]]),
            t1: f64_at(b, 5)?,
        },
        5 => ClientEvent::MouseAbs {
            x: u16_at(b, 1),
            y: u16_at(b, 3),
            t: f64_at(b, 5)?,
        },
        6 => match b[1] {
            0 => ClientEvent::MouseMode { relative: false },
            1 => ClientEvent::MouseMode { relative: true },
            m => return Err(ClientMessageError::BadMouseMode(m)),
        },
        _ => unreachable!("wire_len accepted only known types"),
    })
}

/// Encodes a client event the way the browser client does (used by tests and tools).
pub fn encode_client_event(e: &ClientEvent) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    match *e {
        ClientEvent::MouseMove { dx, dy, t } => {
            v.push(1);
            v.extend_from_slice(&dx.to_le_bytes());
            v.extend_from_slice(&dy.to_le_bytes());
            v.extend_from_slice(&t.to_le_bytes());
        }
        ClientEvent::MouseButton { button, down, t } => {
            v.extend_from_slice(&[2, button, down as u8]);
            v.extend_from_slice(&t.to_le_bytes());
        }
        ClientEvent::Key { key_code, down, t } => {
            v.push(3);
            v.extend_from_slice(&key_code.to_le_bytes());
            v.push(down as u8);
            v.extend_from_slice(&t.to_le_bytes());
        }
        ClientEvent::Ping { sequence, t1 } => {
            v.push(4);
            v.extend_from_slice(&sequence.to_le_bytes());
            v.extend_from_slice(&t1.to_le_bytes());
        }
        ClientEvent::MouseAbs { x, y, t } => {
            v.push(5);
            v.extend_from_slice(&x.to_le_bytes());
            v.extend_from_slice(&y.to_le_bytes());
            v.extend_from_slice(&t.to_le_bytes());
        }
        ClientEvent::MouseMode { relative } => v.extend_from_slice(&[6, relative as u8]),
    }
    v
}

/// The seven latency timestamps carried with every frame (see the protocol doc); all but t1 in µs
/// since the Unix epoch, on the wire in this order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PingEcho {
    pub sequence: u32,
    /// The browser's send time, ms.
    pub t1_browser_ms: u64,
    pub t2_server_us: u64,
    pub t3_emulator_us: u64,
    /// The emulator completed the frame carrying the echo.
    pub t4_frame_us: u64,
    /// The server read that frame.
    pub t5_server_read_us: u64,
    pub t6_encoded_us: u64,
    pub t7_sent_us: u64,
}

impl PingEcho {
    /// The stamps in wire order, t1 first.
    pub fn stamps(&self) -> [u64; 7] {
        [
            self.t1_browser_ms,
            self.t2_server_us,
            self.t3_emulator_us,
            self.t4_frame_us,
            self.t5_server_read_us,
            self.t6_encoded_us,
            self.t7_sent_us,
        ]
    }

    /// From `sequence` and the stamps in wire order.
    pub fn from_stamps(sequence: u32, t: [u64; 7]) -> PingEcho {
        let [t1_browser_ms, t2_server_us, t3_emulator_us, t4_frame_us, t5_server_read_us, t6_encoded_us, t7_sent_us] =
            t;
        PingEcho {
            sequence,
            t1_browser_ms,
            t2_server_us,
            t3_emulator_us,
            t4_frame_us,
            t5_server_read_us,
            t6_encoded_us,
            t7_sent_us,
        }
    }
}

/// Cursor state shown by the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub x: u16,
    pub y: u16,
    pub visible: bool,
}

/// Size of the PNG frame header.
pub const PNG_HEADER_LEN: usize = 113;
/// Size of the per-frame H.264 metadata message.
pub const H264_META_LEN: usize = 65;

/// Everything in the PNG header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PngHeader {
    /// Frame ready, ms since the Unix epoch.
    pub frame_ready_ms: u64,
    pub dirty_x: u32,
    pub dirty_y: u32,
    pub dirty_width: u32,
    pub dirty_height: u32,
    pub frame_width: u32,
    pub frame_height: u32,
    /// Send time, ms since the Unix epoch.
    pub send_ms: u64,
    pub cursor: Cursor,
    pub ping: PingEcho,
}

impl PngHeader {
    /// Writes the header followed by `png` into one message.
    pub fn encode_with(&self, png: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(PNG_HEADER_LEN + png.len());
        v.extend_from_slice(&self.frame_ready_ms.to_le_bytes());
        for f in [
            self.dirty_x,
            self.dirty_y,
            self.dirty_width,
            self.dirty_height,
            self.frame_width,
            self.frame_height,
        ] {
            v.extend_from_slice(&f.to_le_bytes());
        }
        v.extend_from_slice(&self.send_ms.to_le_bytes());
        encode_cursor_ping(&mut v, &self.cursor, &self.ping);
        v.extend_from_slice(&PNG_HEADER_RESERVED);
        debug_assert_eq!(v.len(), PNG_HEADER_LEN);
        v.extend_from_slice(png);
        v
    }
}

fn encode_cursor_ping(v: &mut Vec<u8>, c: &Cursor, p: &PingEcho) {
    v.extend_from_slice(&c.x.to_le_bytes());
    v.extend_from_slice(&c.y.to_le_bytes());
    v.push(c.visible as u8);
    v.extend_from_slice(&p.sequence.to_le_bytes());
    for t in p.stamps() {
        v.extend_from_slice(&t.to_le_bytes());
    }
}

/// Reads the cursor and ping fields in the layout `encode_cursor_ping` writes (`b` holds 61 bytes).
fn decode_cursor_ping(b: &[u8]) -> (Cursor, PingEcho) {
    let u64_at = |o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    let cursor = Cursor {
        x: u16_at(b, 0),
        y: u16_at(b, 2),
        visible: b[4] != 0,
    };
    let ping = PingEcho::from_stamps(
        u32::from_le_bytes([b[5], b[6], b[7], b[8]]),
        std::array::from_fn(|i| u64_at(9 + i * 8)),
    );
    (cursor, ping)
}

impl PngHeader {
    /// Client side: splits a PNG-mode message into its header and PNG bytes (`None`: too short).
    pub fn decode(b: &[u8]) -> Option<(PngHeader, &[u8])> {
        if b.len() < PNG_HEADER_LEN {
            return None;
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let (cursor, ping) = decode_cursor_ping(&b[40..40 + H264_META_LEN]);
        let h = PngHeader {
            frame_ready_ms: u64_at(0),
            dirty_x: u32_at(8),
            dirty_y: u32_at(12),
            dirty_width: u32_at(16),
            dirty_height: u32_at(20),
            frame_width: u32_at(24),
            frame_height: u32_at(28),
            send_ms: u64_at(32),
            cursor,
            ping,
        };
        Some((h, &b[PNG_HEADER_LEN..]))
    }
}

/// Client side: parses the 65-byte H.264 metadata message (`None`: any other length).
pub fn decode_h264_meta(b: &[u8]) -> Option<(Cursor, PingEcho)> {
    (b.len() == H264_META_LEN).then(|| decode_cursor_ping(b))
}

/// Bytes 105..113 of the PNG header: reserved, zero (the header keeps the original server's 113 bytes).
const PNG_HEADER_RESERVED: [u8; 8] = [0; 8];

/// The 65-byte metadata message sent alongside each H.264 frame.
pub fn encode_h264_meta(cursor: &Cursor, ping: &PingEcho) -> [u8; H264_META_LEN] {
    let mut v = Vec::with_capacity(H264_META_LEN);
    encode_cursor_ping(&mut v, cursor, ping);
    let mut out = [0u8; H264_META_LEN];
    out.copy_from_slice(&v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_type_from_hand_built_bytes() {
        let t = 1234.5f64.to_le_bytes();
        let mut m = vec![1, 0xFE, 0xFF, 0x05, 0x00];
        m.extend_from_slice(&t);
        assert_eq!(
            parse_client_message(&m),
            Ok(ClientEvent::MouseMove {
                dx: -2,
                dy: 5,
                t: 1234.5
            })
        );
        let mut m = vec![2, 2, 1];
        m.extend_from_slice(&t);
        assert_eq!(
            parse_client_message(&m),
            Ok(ClientEvent::MouseButton {
                button: 2,
                down: true,
                t: 1234.5
            })
        );
        let mut m = vec![3, 65, 0, 0];
        m.extend_from_slice(&t);
        assert_eq!(
            parse_client_message(&m),
            Ok(ClientEvent::Key {
                key_code: 65,
                down: false,
                t: 1234.5
            })
        );
        let mut m = vec![4, 0x78, 0x56, 0x34, 0x12];
        m.extend_from_slice(&t);
        assert_eq!(
            parse_client_message(&m),
            Ok(ClientEvent::Ping {
                sequence: 0x1234_5678,
                t1: 1234.5
            })
        );
        let mut m = vec![5, 0x00, 0x02, 0x56, 0x01];
        m.extend_from_slice(&t);
        assert_eq!(
            parse_client_message(&m),
            Ok(ClientEvent::MouseAbs {
                x: 512,
                y: 342,
                t: 1234.5
            })
        );
        assert_eq!(
            parse_client_message(&[6, 1]),
            Ok(ClientEvent::MouseMode { relative: true })
        );
    }

    #[test]
    fn encode_round_trips() {
        for e in [
            ClientEvent::MouseMove {
                dx: -300,
                dy: 7,
                t: 1.0,
            },
            ClientEvent::MouseButton {
                button: 1,
                down: false,
                t: 2.0,
            },
            ClientEvent::Key {
                key_code: 222,
                down: true,
                t: 3.0,
            },
            ClientEvent::Ping {
                sequence: 9,
                t1: 4.25,
            },
            ClientEvent::MouseAbs {
                x: 1919,
                y: 1079,
                t: 5.0,
            },
            ClientEvent::MouseMode { relative: false },
        ] {
            assert_eq!(parse_client_message(&encode_client_event(&e)), Ok(e));
        }
    }

    #[test]
    fn rejects_malformed_messages() {
        assert_eq!(parse_client_message(&[]), Err(ClientMessageError::Empty));
        assert_eq!(
            parse_client_message(&[9, 0]),
            Err(ClientMessageError::UnknownType(9))
        );
        assert_eq!(
            parse_client_message(&[3, 65, 0, 1]),
            Err(ClientMessageError::Length {
                kind: 3,
                want: 12,
                got: 4
            })
        );
        assert_eq!(
            parse_client_message(&[6, 1, 0]),
            Err(ClientMessageError::Length {
                kind: 6,
                want: 2,
                got: 3
            })
        );
        assert_eq!(
            parse_client_message(&[6, 7]),
            Err(ClientMessageError::BadMouseMode(7))
        );
        let mut m = vec![2, 3, 1];
        m.extend_from_slice(&0f64.to_le_bytes());
        assert_eq!(
            parse_client_message(&m),
            Err(ClientMessageError::BadButton(3))
        );
        let mut m = vec![1, 0, 0, 0, 0];
        m.extend_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(parse_client_message(&m), Err(ClientMessageError::BadTime));
    }

    fn u64_at(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }
    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }

    #[test]
    fn png_header_fields_at_the_documented_offsets() {
        let h = PngHeader {
            frame_ready_ms: 0x0102_0304_0506_0708,
            dirty_x: 11,
            dirty_y: 22,
            dirty_width: 33,
            dirty_height: 44,
            frame_width: 640,
            frame_height: 480,
            send_ms: 0x1112_1314_1516_1718,
            cursor: Cursor {
                x: 0x0123,
                y: 0x0456,
                visible: true,
            },
            ping: PingEcho::from_stamps(0xA1B2_C3D4, [101, 202, 303, 404, 505, 606, 707]),
        };
        let png = [0x89, b'P', b'N', b'G'];
        let m = h.encode_with(&png);
        assert_eq!(m.len(), 113 + 4);
        assert_eq!(u64_at(&m, 0), 0x0102_0304_0506_0708);
        assert_eq!(
            [
                u32_at(&m, 8),
                u32_at(&m, 12),
                u32_at(&m, 16),
                u32_at(&m, 20)
            ],
            [11, 22, 33, 44]
        );
        assert_eq!([u32_at(&m, 24), u32_at(&m, 28)], [640, 480]);
        assert_eq!(u64_at(&m, 32), 0x1112_1314_1516_1718);
        assert_eq!(u16::from_le_bytes([m[40], m[41]]), 0x0123);
        assert_eq!(u16::from_le_bytes([m[42], m[43]]), 0x0456);
        assert_eq!(m[44], 1);
        assert_eq!(u32_at(&m, 45), 0xA1B2_C3D4);
        for (i, want) in [101, 202, 303, 404, 505, 606, 707].into_iter().enumerate() {
            assert_eq!(u64_at(&m, 49 + 8 * i), want, "t{}", i + 1);
        }
        assert_eq!(&m[105..113], &[0; 8], "reserved");
        assert_eq!(&m[113..], &png);
    }

    #[test]
    fn h264_metadata_layout() {
        let m = encode_h264_meta(
            &Cursor {
                x: 500,
                y: 300,
                visible: false,
            },
            &PingEcho::from_stamps(7, [1, 2, 3, 4, 5, 6, 0xFFFF_FFFF_FFFF]),
        );
        assert_eq!(m.len(), 65);
        assert_eq!(u16::from_le_bytes([m[0], m[1]]), 500);
        assert_eq!(u16::from_le_bytes([m[2], m[3]]), 300);
        assert_eq!(m[4], 0);
        assert_eq!(u32_at(&m, 5), 7);
        assert_eq!(u64_at(&m, 9), 1);
        assert_eq!(u64_at(&m, 57), 0xFFFF_FFFF_FFFF);
    }

    #[test]
    fn server_messages_decode_to_what_was_encoded() {
        let cursor = Cursor {
            x: 511,
            y: 341,
            visible: true,
        };
        let ping = PingEcho::from_stamps(0xDEAD_BEEF, [1, 2, 3, 4, 5, 6, u64::MAX]);
        let m = encode_h264_meta(&cursor, &ping);
        assert_eq!(decode_h264_meta(&m), Some((cursor, ping)));
        assert_eq!(decode_h264_meta(&m[..64]), None);
        assert_eq!(decode_h264_meta(&[m.as_slice(), &[0]].concat()), None);

        let h = PngHeader {
            frame_ready_ms: 1_700_000_000_123,
            dirty_x: 1,
            dirty_y: 2,
            dirty_width: 3,
            dirty_height: 4,
            frame_width: 512,
            frame_height: 342,
            send_ms: 1_700_000_000_456,
            cursor,
            ping,
        };
        let msg = h.encode_with(b"png bytes");
        let (got, png) = PngHeader::decode(&msg).expect("whole header");
        assert_eq!((got, png), (h, &b"png bytes"[..]));
        assert!(PngHeader::decode(&msg[..PNG_HEADER_LEN - 1]).is_none());
        assert_eq!(
            PngHeader::decode(&msg[..PNG_HEADER_LEN]).map(|d| d.1.len()),
            Some(0)
        );
    }
}
