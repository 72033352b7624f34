//! Input messages (server → emulator), sans-IO: encoding and a streaming decoder.
//!
//! Each v4 message has a fixed size given by its type byte. The decoder is fed arbitrary chunks
//! (several messages in one read, one message split over many) and yields whole messages. It
//! never panics: an unknown type skips the 4-byte header (as v4 emulators do) and an impossible
//! field skips the whole message; both are reported with the type byte and stream offset.

use crate::abi::*;
use crate::drive::{self, DriveCommand};
use bytemuck::{bytes_of, pod_read_unaligned};

/// Emulator command (`MACEMU_CMD_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    Start = 1,
    Stop = 2,
    Reset = 3,
    Pause = 4,
    Resume = 5,
}

impl Command {
    pub fn from_u8(v: u8) -> Option<Command> {
        Some(match v {
            1 => Command::Start,
            2 => Command::Stop,
            3 => Command::Reset,
            4 => Command::Pause,
            5 => Command::Resume,
            _ => return None,
        })
    }
}

/// Mouse mode (`MacEmuMouseModeInput.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MouseMode {
    Absolute = 0,
    Relative = 1,
}

/// One input message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputMessage {
    /// A Mac keycode (already converted by the server) going down or up.
    Key {
        keycode: u8,
        down: bool,
        modifiers: u8,
    },
    /// Mouse motion and buttons (L 1, R 2, M 4). With `absolute`, x/y are screen coordinates
    /// (v4 emulators read them as `u16`), else deltas.
    Mouse {
        x: i16,
        y: i16,
        buttons: u8,
        absolute: bool,
        timestamp_ms: u64,
    },
    Command(Command),
    /// Latency probe; the emulator fills `t3_emulator_us` on receipt (0 on the wire from servers).
    Ping {
        sequence: u32,
        t1_browser_ms: u64,
        t2_server_us: u64,
        t3_emulator_us: u64,
    },
    /// Server pull request for audio (usually 960 samples).
    AudioRequest {
        samples: u32,
    },
    MouseMode(MouseMode),
}

/// Wire size of a message type, `None` for unknown types.
pub fn message_size(type_byte: u8) -> Option<usize> {
    Some(match type_byte {
        MACEMU_INPUT_KEY => size_of::<MacEmuKeyInput>(),
        MACEMU_INPUT_MOUSE => size_of::<MacEmuMouseInput>(),
        MACEMU_INPUT_COMMAND => size_of::<MacEmuCommandInput>(),
        MACEMU_INPUT_PING => size_of::<MacEmuPingInput>(),
        MACEMU_INPUT_AUDIO_REQUEST => size_of::<MacEmuAudioRequestInput>(),
        MACEMU_INPUT_MOUSE_MODE => size_of::<MacEmuMouseModeInput>(),
        _ => return None,
    })
}

/// Largest audio request accepted (one second at the maximum rate).
pub const MAX_AUDIO_REQUEST: u32 = MACEMU_AUDIO_MAX_SAMPLE_RATE;

fn hdr(t: u8, flags: u8) -> MacEmuInputHeader {
    MacEmuInputHeader {
        r#type: t,
        flags,
        _reserved: 0,
    }
}

impl InputMessage {
    /// The message type byte (`MACEMU_INPUT_*`).
    pub fn type_byte(&self) -> u8 {
        match self {
            InputMessage::Key { .. } => MACEMU_INPUT_KEY,
            InputMessage::Mouse { .. } => MACEMU_INPUT_MOUSE,
            InputMessage::Command(_) => MACEMU_INPUT_COMMAND,
            InputMessage::Ping { .. } => MACEMU_INPUT_PING,
            InputMessage::AudioRequest { .. } => MACEMU_INPUT_AUDIO_REQUEST,
            InputMessage::MouseMode(_) => MACEMU_INPUT_MOUSE_MODE,
        }
    }

    /// The exact v4 wire bytes (8, 24 or 32 bytes by type; reserved bytes zero).
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            InputMessage::Key {
                keycode,
                down,
                modifiers,
            } => bytes_of(&MacEmuKeyInput {
                hdr: hdr(
                    MACEMU_INPUT_KEY,
                    if down { MACEMU_KEY_DOWN } else { MACEMU_KEY_UP },
                ),
                mac_keycode: keycode,
                modifiers,
                _reserved: 0,
            })
            .to_vec(),
            InputMessage::Mouse {
                x,
                y,
                buttons,
                absolute,
                timestamp_ms,
            } => {
                // MacEmuMouseInput has compiler padding (12..16), so it is laid out by hand.
                let mut b = vec![0u8; size_of::<MacEmuMouseInput>()];
                b[..4].copy_from_slice(bytes_of(&hdr(
                    MACEMU_INPUT_MOUSE,
                    if absolute { MACEMU_MOUSE_ABSOLUTE } else { 0 },
                )));
                b[4..6].copy_from_slice(&x.to_ne_bytes());
                b[6..8].copy_from_slice(&y.to_ne_bytes());
                b[8] = buttons;
                b[16..24].copy_from_slice(&timestamp_ms.to_ne_bytes());
                b
            }
            InputMessage::Command(c) => bytes_of(&MacEmuCommandInput {
                hdr: hdr(MACEMU_INPUT_COMMAND, 0),
                command: c as u8,
                _reserved: [0; 3],
            })
            .to_vec(),
            InputMessage::Ping {
                sequence,
                t1_browser_ms,
                t2_server_us,
                t3_emulator_us,
            } => bytes_of(&MacEmuPingInput {
                hdr: hdr(MACEMU_INPUT_PING, 0),
                sequence,
                t1_browser_send_ms: t1_browser_ms,
                t2_server_recv_us: t2_server_us,
                t3_emulator_recv_us: t3_emulator_us,
            })
            .to_vec(),
            InputMessage::AudioRequest { samples } => bytes_of(&MacEmuAudioRequestInput {
                hdr: hdr(MACEMU_INPUT_AUDIO_REQUEST, 0),
                requested_samples: samples,
            })
            .to_vec(),
            InputMessage::MouseMode(m) => bytes_of(&MacEmuMouseModeInput {
                hdr: hdr(MACEMU_INPUT_MOUSE_MODE, 0),
                mode: m as u8,
                _reserved: [0; 3],
            })
            .to_vec(),
        }
    }

    /// Decodes one whole message; `bytes` must be exactly `message_size(bytes[0])` long.
    /// `offset` is only used for error reports.
    pub fn decode(bytes: &[u8], offset: u64) -> Result<InputMessage, DecodeError> {
        let type_byte = *bytes
            .first()
            .ok_or(DecodeError::Truncated { offset, len: 0 })?;
        let size = message_size(type_byte).ok_or(DecodeError::UnknownType { type_byte, offset })?;
        if bytes.len() != size {
            return Err(DecodeError::Truncated {
                offset,
                len: bytes.len(),
            });
        }
        let invalid = |field: &'static str, value: u64| DecodeError::InvalidField {
            type_byte,
            offset,
            field,
            value,
        };
        let flags = bytes[1];
        Ok(match type_byte {
            MACEMU_INPUT_KEY => {
                let k: MacEmuKeyInput = pod_read_unaligned(bytes);
                InputMessage::Key {
                    keycode: k.mac_keycode,
                    down: flags & MACEMU_KEY_DOWN != 0,
                    modifiers: k.modifiers,
                }
            }
            MACEMU_INPUT_MOUSE => {
                let buttons = bytes[8];
                if buttons & !(MACEMU_MOUSE_LEFT | MACEMU_MOUSE_RIGHT | MACEMU_MOUSE_MIDDLE) != 0 {
                    return Err(invalid("buttons", buttons.into()));
                }
                InputMessage::Mouse {
                    x: i16::from_ne_bytes([bytes[4], bytes[5]]),
                    y: i16::from_ne_bytes([bytes[6], bytes[7]]),
                    buttons,
                    absolute: flags & MACEMU_MOUSE_ABSOLUTE != 0,
                    timestamp_ms: u64::from_ne_bytes(bytes[16..24].try_into().expect("8 bytes")),
                }
            }
            MACEMU_INPUT_COMMAND => {
                let c: MacEmuCommandInput = pod_read_unaligned(bytes);
                InputMessage::Command(
                    Command::from_u8(c.command).ok_or(invalid("command", c.command.into()))?,
                )
            }
            MACEMU_INPUT_PING => {
                let p: MacEmuPingInput = pod_read_unaligned(bytes);
                InputMessage::Ping {
                    sequence: p.sequence,
                    t1_browser_ms: p.t1_browser_send_ms,
                    t2_server_us: p.t2_server_recv_us,
                    t3_emulator_us: p.t3_emulator_recv_us,
                }
            }
            MACEMU_INPUT_AUDIO_REQUEST => {
                let r: MacEmuAudioRequestInput = pod_read_unaligned(bytes);
                if r.requested_samples > MAX_AUDIO_REQUEST {
                    return Err(invalid("requested_samples", r.requested_samples.into()));
                }
                InputMessage::AudioRequest {
                    samples: r.requested_samples,
                }
            }
            MACEMU_INPUT_MOUSE_MODE => {
                let m: MacEmuMouseModeInput = pod_read_unaligned(bytes);
                InputMessage::MouseMode(match m.mode {
                    0 => MouseMode::Absolute,
                    1 => MouseMode::Relative,
                    v => return Err(invalid("mode", v.into())),
                })
            }
            _ => unreachable!("message_size accepted only known types"),
        })
    }
}

/// A malformed input stream. Offsets count bytes from the start of the stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown input type {type_byte} at offset {offset}")]
    UnknownType { type_byte: u8, offset: u64 },
    #[error("input type {type_byte} at offset {offset}: field `{field}` = {value} is impossible")]
    InvalidField {
        type_byte: u8,
        offset: u64,
        field: &'static str,
        value: u64,
    },
    #[error("message at offset {offset} has {len} bytes, not its type's size")]
    Truncated { offset: u64, len: usize },
    #[error("drive message at offset {offset}: {error}")]
    Extension {
        offset: u64,
        error: crate::drive::ExtError,
    },
}

/// Streaming decoder: `push` bytes as they arrive, then call `next` until it returns `None`.
#[derive(Debug, Default)]
pub struct InputDecoder {
    buf: Vec<u8>,
    /// Read position in `buf`.
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Drive commands (extension messages) decoded so far, taken by `take_drive_commands`.
    drive: Vec<DriveCommand>,
}

impl InputDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.base += self.pos as u64;
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= 4096 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Drive commands decoded since the last call, in arrival order. They travel in extension
    /// messages that v4 peers skip (see [`crate::drive`]).
    pub fn take_drive_commands(&mut self) -> Vec<DriveCommand> {
        std::mem::take(&mut self.drive)
    }

    /// Bytes received but not yet consumed (an incomplete message).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Stream offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The next whole message, an error for a malformed one (already skipped), or `None` when
    /// more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<InputMessage, DecodeError>> {
        loop {
            let rest = &self.buf[self.pos..];
            let offset = self.offset();
            if rest.len() < size_of::<MacEmuInputHeader>() || rest[0] != drive::EXT_TYPE {
                break;
            }
            let ext = |error| Some(Err(DecodeError::Extension { offset, error }));
            let size = match drive::ext_len(rest)? {
                Ok(size) => size,
                Err(e) => {
                    self.pos += size_of::<MacEmuInputHeader>();
                    return ext(e);
                }
            };
            if rest.len() < size {
                return None;
            }
            let decoded = drive::decode_ext(&rest[..size])
                .and_then(|(op, payload)| DriveCommand::decode(op, &payload));
            match decoded {
                Ok(cmd) => {
                    self.pos += size;
                    self.drive.push(cmd);
                }
                Err(e) => {
                    // Resynchronise word by word: a broken extension never eats v4 input.
                    self.pos += size_of::<MacEmuInputHeader>();
                    return ext(e);
                }
            }
        }
        let rest = &self.buf[self.pos..];
        let offset = self.offset();
        if rest.len() < size_of::<MacEmuInputHeader>() {
            return None;
        }
        let type_byte = rest[0];
        let Some(size) = message_size(type_byte) else {
            self.pos += size_of::<MacEmuInputHeader>();
            return Some(Err(DecodeError::UnknownType { type_byte, offset }));
        };
        if rest.len() < size {
            return None;
        }
        let msg = InputMessage::decode(&rest[..size], offset);
        self.pos += size;
        Some(msg)
    }
}

impl Iterator for InputDecoder {
    type Item = Result<InputMessage, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        InputDecoder::next(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<InputMessage> {
        vec![
            InputMessage::Key {
                keycode: 0x24,
                down: true,
                modifiers: 0x08,
            },
            InputMessage::Mouse {
                x: -5,
                y: 300,
                buttons: 3,
                absolute: false,
                timestamp_ms: 123_456_789,
            },
            InputMessage::Command(Command::Pause),
            InputMessage::Ping {
                sequence: 7,
                t1_browser_ms: 1,
                t2_server_us: 2,
                t3_emulator_us: 0,
            },
            InputMessage::AudioRequest { samples: 960 },
            InputMessage::MouseMode(MouseMode::Relative),
            InputMessage::Key {
                keycode: 0x24,
                down: false,
                modifiers: 0,
            },
        ]
    }

    #[test]
    fn wire_sizes_match_v4() {
        let sizes: Vec<usize> = samples().iter().map(|m| m.encode().len()).collect();
        assert_eq!(sizes, [8, 24, 8, 32, 8, 8, 8]);
    }

    #[test]
    fn encodes_exact_bytes() {
        let m = InputMessage::Mouse {
            x: -2,
            y: 258,
            buttons: 1,
            absolute: true,
            timestamp_ms: 0x0102_0304_0506_0708,
        };
        assert_eq!(
            m.encode(),
            [2, 0x10, 0, 0, 0xFE, 0xFF, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
        );
        let k = InputMessage::Key {
            keycode: 0x7A,
            down: true,
            modifiers: 2,
        };
        assert_eq!(k.encode(), [1, 1, 0, 0, 0x7A, 2, 0, 0]);
        let p = InputMessage::Ping {
            sequence: 0x01020304,
            t1_browser_ms: 5,
            t2_server_us: 6,
            t3_emulator_us: 7,
        };
        let b = p.encode();
        assert_eq!(&b[..8], &[4, 0, 0, 0, 4, 3, 2, 1]);
        assert_eq!(b[8], 5);
        assert_eq!(b[16], 6);
        assert_eq!(b[24], 7);
    }

    #[test]
    fn every_split_point_gives_same_messages() {
        let msgs = samples();
        let stream: Vec<u8> = msgs.iter().flat_map(|m| m.encode()).collect();
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut d = InputDecoder::new();
                let mut out = Vec::new();
                for chunk in [&stream[..a], &stream[a..b], &stream[b..]] {
                    d.push(chunk);
                    out.extend(d.by_ref().map(|r| r.unwrap()));
                }
                assert_eq!(out, msgs, "split at {a},{b}");
                assert_eq!(d.pending(), 0);
            }
        }
    }

    #[test]
    fn unknown_type_and_bad_fields_are_errors_with_offsets() {
        let mut d = InputDecoder::new();
        let mut s = InputMessage::Key {
            keycode: 1,
            down: true,
            modifiers: 0,
        }
        .encode();
        s.extend([99, 0, 0, 0]); // unknown type at offset 8
        s.extend([3, 0, 0, 0, 9, 0, 0, 0]); // command 9 at offset 12
        s.extend([6, 0, 0, 0, 2, 0, 0, 0]); // mouse mode 2 at offset 20
        s.extend(InputMessage::Command(Command::Stop).encode());
        d.push(&s);
        assert!(matches!(d.next(), Some(Ok(InputMessage::Key { .. }))));
        assert_eq!(
            d.next(),
            Some(Err(DecodeError::UnknownType {
                type_byte: 99,
                offset: 8
            }))
        );
        assert_eq!(
            d.next(),
            Some(Err(DecodeError::InvalidField {
                type_byte: 3,
                offset: 12,
                field: "command",
                value: 9
            }))
        );
        assert_eq!(
            d.next(),
            Some(Err(DecodeError::InvalidField {
                type_byte: 6,
                offset: 20,
                field: "mode",
                value: 2
            }))
        );
        assert_eq!(d.next(), Some(Ok(InputMessage::Command(Command::Stop))));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn drive_commands_between_input_split_anywhere() {
        let eject = DriveCommand::Eject {
            slot: drive::WireSlot::Floppy(0),
        };
        let insert = DriveCommand::Insert {
            slot: drive::WireSlot::Scsi(2),
            read_only: false,
            path: "/srv/disks/hd.img".into(),
        };
        let key = InputMessage::Key {
            keycode: 3,
            down: true,
            modifiers: 0,
        };
        let stream: Vec<u8> = [
            key.encode(),
            insert.encode().unwrap(),
            InputMessage::Command(Command::Pause).encode(),
            eject.encode().unwrap(),
        ]
        .concat();
        for a in 0..=stream.len() {
            let mut d = InputDecoder::new();
            let mut out = Vec::new();
            for chunk in [&stream[..a], &stream[a..]] {
                d.push(chunk);
                out.extend(d.by_ref().map(|r| r.unwrap()));
            }
            assert_eq!(
                out,
                [key, InputMessage::Command(Command::Pause)],
                "split {a}"
            );
            assert_eq!(d.take_drive_commands(), [insert.clone(), eject.clone()]);
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn a_broken_drive_message_loses_no_input_after_it() {
        let mut s = vec![drive::EXT_TYPE, 9, 0, 0]; // unknown operation, empty payload
        s.extend([drive::EXT_TYPE, 1, 3, 0, 0, 0, 0, 0]); // second word lacks the type byte
        let key = InputMessage::Key {
            keycode: 5,
            down: false,
            modifiers: 0,
        };
        s.extend(key.encode());
        let mut d = InputDecoder::new();
        d.push(&s);
        let out: Vec<_> = d.by_ref().collect();
        assert!(matches!(
            out[0],
            Err(DecodeError::Extension { offset: 0, .. })
        ));
        assert!(matches!(
            out[1],
            Err(DecodeError::Extension { offset: 4, .. })
        ));
        assert_eq!(out.last(), Some(&Ok(key)));
        assert!(d.take_drive_commands().is_empty());
    }
}
