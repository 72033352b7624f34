//! Disk drive messages over the control socket: an extension of the v4 input stream.
//!
//! v4 has no message for disks, and a v4 peer skips an unknown type by its 4-byte header. So an
//! extension message is a run of 4-byte words that *each* start with [`EXT_TYPE`]: an old peer
//! skips every word as an unknown message and never misreads the payload as input. The first
//! word is `EXT_TYPE, op, len (u16 LE)`; then `ceil(len / 3)` words `EXT_TYPE, b0, b1, b2` carry
//! the payload, zero-padded.
//!
//! Server → emulator: [`DriveCommand`] (insert an image file, eject, ask for a report).
//! Emulator → server: [`DriveReport`], one per drive, sent when asked and whenever a drive
//! changes (the Mac ejected a disk). An emulator only sends reports to a peer that has sent a
//! `Query`, so an old server, which never reads the socket, never receives any.

use std::path::PathBuf;

/// First byte of every word of an extension message (unused by v4, whose types are 1–6).
pub const EXT_TYPE: u8 = 0xD0;
/// Largest payload: a path of up to 4,096 bytes plus its fields.
pub const MAX_PAYLOAD: usize = 4_200;

const OP_INSERT: u8 = 1;
const OP_EJECT: u8 = 2;
const OP_QUERY: u8 = 3;
const OP_REPORT: u8 = 0x81;

/// A drive as the wire names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WireSlot {
    /// 0 internal, 1 external.
    Floppy(u8),
    /// SCSI ID 0–6.
    Scsi(u8),
}

impl WireSlot {
    fn encode(self) -> [u8; 2] {
        match self {
            WireSlot::Floppy(n) => [0, n],
            WireSlot::Scsi(n) => [1, n],
        }
    }
    fn decode(kind: u8, index: u8) -> Result<WireSlot, ExtError> {
        match (kind, index) {
            (0, 0..=1) => Ok(WireSlot::Floppy(index)),
            (1, 0..=6) => Ok(WireSlot::Scsi(index)),
            _ => Err(ExtError::Field("drive")),
        }
    }

    /// Parses `floppy0`, `floppy1`, `scsi0`…`scsi6` (as [`std::fmt::Display`] prints them).
    pub fn parse(s: &str) -> Option<WireSlot> {
        let (kind, n) = if let Some(n) = s.strip_prefix("floppy") {
            (0, n)
        } else {
            (1, s.strip_prefix("scsi")?)
        };
        let n: u8 = n.parse().ok()?;
        WireSlot::decode(kind, n).ok()
    }
}

impl std::fmt::Display for WireSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireSlot::Floppy(n) => write!(f, "floppy{n}"),
            WireSlot::Scsi(n) => write!(f, "scsi{n}"),
        }
    }
}

/// Server → emulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveCommand {
    /// Open the image file at `path` (absolute, on the emulator's host) and insert it.
    Insert {
        slot: WireSlot,
        read_only: bool,
        path: PathBuf,
    },
    Eject {
        slot: WireSlot,
    },
    /// Send a report of every drive now, and later whenever one changes.
    Query,
}

/// Emulator → server: the state of one drive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriveReport {
    pub slot: Option<WireSlot>,
    /// `None` when the drive is empty.
    pub media: Option<ReportedMedia>,
    /// Set when the last change was the Mac ejecting the disk itself.
    pub ejected_by_mac: bool,
    /// Set when the report answers a command that failed; the text says why.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportedMedia {
    pub name: String,
    pub bytes: u64,
    pub read_only: bool,
    pub format: String,
}

/// A malformed extension message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtError {
    #[error("extension message payload of {0} bytes exceeds the limit")]
    TooLong(usize),
    #[error("extension message word does not start with the extension type")]
    Framing,
    #[error("unknown extension operation {0:#04x}")]
    UnknownOp(u8),
    #[error("extension message field `{0}` is malformed")]
    Field(&'static str),
}

/// Frames `payload` as extension words.
pub fn encode_ext(op: u8, payload: &[u8]) -> Vec<u8> {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let len = payload.len().min(MAX_PAYLOAD) as u16;
    let mut out = Vec::with_capacity(4 + payload.len().div_ceil(3) * 4);
    out.extend_from_slice(&[EXT_TYPE, op]);
    out.extend_from_slice(&len.to_le_bytes());
    for chunk in payload[..len as usize].chunks(3) {
        let mut w = [EXT_TYPE, 0, 0, 0];
        w[1..1 + chunk.len()].copy_from_slice(chunk);
        out.extend_from_slice(&w);
    }
    out
}

/// Length in bytes of the extension message starting at `bytes` (which starts with
/// [`EXT_TYPE`]), `None` while its first word is incomplete.
pub fn ext_len(bytes: &[u8]) -> Option<Result<usize, ExtError>> {
    if bytes.len() < 4 {
        return None;
    }
    let len = u16::from_le_bytes([bytes[2], bytes[3]]) as usize;
    if len > MAX_PAYLOAD {
        return Some(Err(ExtError::TooLong(len)));
    }
    Some(Ok(4 + len.div_ceil(3) * 4))
}

/// Unframes one whole extension message (exactly `ext_len` bytes) into its op and payload.
pub fn decode_ext(bytes: &[u8]) -> Result<(u8, Vec<u8>), ExtError> {
    let total = ext_len(bytes).ok_or(ExtError::Framing)??;
    if bytes.len() != total || bytes.chunks(4).any(|w| w[0] != EXT_TYPE) {
        return Err(ExtError::Framing);
    }
    let len = u16::from_le_bytes([bytes[2], bytes[3]]) as usize;
    let mut payload: Vec<u8> = bytes[4..]
        .chunks(4)
        .flat_map(|w| w[1..4].to_vec())
        .collect();
    payload.truncate(len);
    Ok((bytes[1], payload))
}

/// Reads the fields of a payload in order; every read is bounds-checked.
struct Fields<'a> {
    b: &'a [u8],
}

impl<'a> Fields<'a> {
    fn u8(&mut self, name: &'static str) -> Result<u8, ExtError> {
        let (&v, rest) = self.b.split_first().ok_or(ExtError::Field(name))?;
        self.b = rest;
        Ok(v)
    }
    fn bytes(&mut self, n: usize, name: &'static str) -> Result<&'a [u8], ExtError> {
        if self.b.len() < n {
            return Err(ExtError::Field(name));
        }
        let (v, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(v)
    }
    fn u64(&mut self, name: &'static str) -> Result<u64, ExtError> {
        let b = self.bytes(8, name)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| ExtError::Field(name))?,
        ))
    }
    /// A string with a u16 LE length.
    fn text(&mut self, name: &'static str) -> Result<String, ExtError> {
        let n = u16::from_le_bytes([self.u8(name)?, self.u8(name)?]) as usize;
        let b = self.bytes(n, name)?;
        String::from_utf8(b.to_vec()).map_err(|_| ExtError::Field(name))
    }
}

fn push_text(out: &mut Vec<u8>, s: &str, max: usize) {
    // Truncate at a character boundary so the text stays valid UTF-8.
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

impl DriveCommand {
    /// The wire bytes; `None` when the path is not valid UTF-8 or too long.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut p = Vec::new();
        let op = match self {
            DriveCommand::Insert {
                slot,
                read_only,
                path,
            } => {
                let s = path.to_str()?;
                if s.len() > 4096 {
                    return None;
                }
                p.extend_from_slice(&slot.encode());
                p.push(*read_only as u8);
                push_text(&mut p, s, 4096);
                OP_INSERT
            }
            DriveCommand::Eject { slot } => {
                p.extend_from_slice(&slot.encode());
                OP_EJECT
            }
            DriveCommand::Query => OP_QUERY,
        };
        Some(encode_ext(op, &p))
    }

    pub fn decode(op: u8, payload: &[u8]) -> Result<DriveCommand, ExtError> {
        let mut f = Fields { b: payload };
        Ok(match op {
            OP_INSERT => {
                let slot = WireSlot::decode(f.u8("drive")?, f.u8("drive")?)?;
                let read_only = match f.u8("read_only")? {
                    0 => false,
                    1 => true,
                    _ => return Err(ExtError::Field("read_only")),
                };
                let path = f.text("path")?;
                if path.is_empty() || path.contains('\0') {
                    return Err(ExtError::Field("path"));
                }
                DriveCommand::Insert {
                    slot,
                    read_only,
                    path: PathBuf::from(path),
                }
            }
            OP_EJECT => DriveCommand::Eject {
                slot: WireSlot::decode(f.u8("drive")?, f.u8("drive")?)?,
            },
            OP_QUERY => DriveCommand::Query,
            op => return Err(ExtError::UnknownOp(op)),
        })
    }
}

impl DriveReport {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::new();
        match self.slot {
            Some(s) => p.extend_from_slice(&s.encode()),
            None => p.extend_from_slice(&[0xFF, 0xFF]),
        }
        let flags = self.media.is_some() as u8
            | (self.media.as_ref().is_some_and(|m| m.read_only) as u8) << 1
            | (self.ejected_by_mac as u8) << 2
            | (self.error.is_some() as u8) << 3;
        p.push(flags);
        let m = self.media.clone().unwrap_or_default();
        p.extend_from_slice(&m.bytes.to_le_bytes());
        push_text(&mut p, &m.name, 255);
        push_text(&mut p, &m.format, 64);
        push_text(&mut p, self.error.as_deref().unwrap_or(""), 512);
        encode_ext(OP_REPORT, &p)
    }

    pub fn decode(op: u8, payload: &[u8]) -> Result<DriveReport, ExtError> {
        if op != OP_REPORT {
            return Err(ExtError::UnknownOp(op));
        }
        let mut f = Fields { b: payload };
        let (kind, index) = (f.u8("drive")?, f.u8("drive")?);
        let slot = if (kind, index) == (0xFF, 0xFF) {
            None
        } else {
            Some(WireSlot::decode(kind, index)?)
        };
        let flags = f.u8("flags")?;
        let bytes = f.u64("bytes")?;
        let name = f.text("name")?;
        let format = f.text("format")?;
        let error = f.text("error")?;
        Ok(DriveReport {
            slot,
            media: (flags & 1 != 0).then_some(ReportedMedia {
                name,
                bytes,
                read_only: flags & 2 != 0,
                format,
            }),
            ejected_by_mac: flags & 4 != 0,
            error: (flags & 8 != 0).then_some(error),
        })
    }
}

/// Streaming reader of extension messages (the server's side of the socket, where nothing else
/// arrives). Bytes that are not extension words are skipped 4 at a time.
#[derive(Debug, Default)]
pub struct ReportDecoder {
    buf: Vec<u8>,
}

impl ReportDecoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<DriveReport, ExtError>> {
        loop {
            if self.buf.len() < 4 {
                return None;
            }
            if self.buf[0] != EXT_TYPE {
                self.buf.drain(..4);
                continue;
            }
            let total = match ext_len(&self.buf)? {
                Ok(t) => t,
                Err(e) => {
                    self.buf.drain(..4);
                    return Some(Err(e));
                }
            };
            if self.buf.len() < total {
                return None;
            }
            let msg: Vec<u8> = self.buf.drain(..total).collect();
            return Some(decode_ext(&msg).and_then(|(op, p)| DriveReport::decode(op, &p)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_starts_with_the_extension_type_so_v4_peers_skip_it() {
        let c = DriveCommand::Insert {
            slot: WireSlot::Scsi(3),
            read_only: true,
            path: PathBuf::from("/home/me/disks/System 7.0.1.hda"),
        };
        let b = c.encode().unwrap();
        assert_eq!(b.len() % 4, 0);
        // A v4 reader skips 4 bytes per unknown type: it sees nothing but unknown types.
        assert!(b.chunks(4).all(|w| w[0] == EXT_TYPE));
        assert!(crate::input::message_size(EXT_TYPE).is_none());
        let (op, p) = decode_ext(&b).unwrap();
        assert_eq!(DriveCommand::decode(op, &p).unwrap(), c);
    }

    #[test]
    fn commands_and_reports_round_trip() {
        for c in [
            DriveCommand::Eject {
                slot: WireSlot::Floppy(1),
            },
            DriveCommand::Query,
            DriveCommand::Insert {
                slot: WireSlot::Floppy(0),
                read_only: false,
                path: PathBuf::from("/d/ü.dsk"),
            },
        ] {
            let b = c.encode().unwrap();
            let (op, p) = decode_ext(&b).unwrap();
            assert_eq!(DriveCommand::decode(op, &p).unwrap(), c);
        }
        let r = DriveReport {
            slot: Some(WireSlot::Floppy(0)),
            media: Some(ReportedMedia {
                name: "System Tools".into(),
                bytes: 819_200,
                read_only: true,
                format: "DiskCopy 4.2 800K".into(),
            }),
            ejected_by_mac: false,
            error: None,
        };
        let mut d = ReportDecoder::default();
        let empty = DriveReport {
            slot: Some(WireSlot::Scsi(6)),
            ejected_by_mac: true,
            error: Some("no such file".into()),
            ..Default::default()
        };
        let stream: Vec<u8> = [r.encode(), empty.encode()].concat();
        // Byte by byte: a report split over many reads.
        let mut out = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b));
            while let Some(m) = d.next() {
                out.push(m.unwrap());
            }
        }
        assert_eq!(out, [r, empty]);
    }

    #[test]
    fn hostile_payloads_are_errors_not_panics() {
        assert_eq!(
            DriveCommand::decode(OP_INSERT, &[0, 2, 0]),
            Err(ExtError::Field("drive"))
        );
        assert_eq!(
            DriveCommand::decode(OP_INSERT, &[1, 7, 0, 0, 0]),
            Err(ExtError::Field("drive"))
        );
        assert_eq!(
            DriveCommand::decode(OP_INSERT, &[0, 0, 0, 9, 0, b'a']),
            Err(ExtError::Field("path"))
        );
        assert_eq!(
            DriveCommand::decode(OP_INSERT, &[0, 0, 0, 0, 0]),
            Err(ExtError::Field("path"))
        );
        assert_eq!(DriveCommand::decode(9, &[]), Err(ExtError::UnknownOp(9)));
        assert_eq!(
            ext_len(&[EXT_TYPE, 1, 0xFF, 0xFF]),
            Some(Err(ExtError::TooLong(0xFFFF)))
        );
        let mut b = DriveCommand::Query.encode().unwrap();
        b.extend([EXT_TYPE, 1, 3, 0, 1, 2, 3, 4]); // second word without the type byte
        assert_eq!(decode_ext(&b[4..]), Err(ExtError::Framing));
        // Every prefix of every short byte string decodes or errs without panicking.
        for len in 0..12 {
            for seed in 0..256u32 {
                let v: Vec<u8> = (0..len)
                    .map(|i| (seed.wrapping_mul(31).wrapping_add(i * 7)) as u8)
                    .collect();
                let _ = DriveCommand::decode(OP_INSERT, &v);
                let _ = DriveReport::decode(OP_REPORT, &v);
            }
        }
    }

    #[test]
    fn slots_parse_as_they_print() {
        for s in [WireSlot::Floppy(0), WireSlot::Floppy(1), WireSlot::Scsi(6)] {
            assert_eq!(WireSlot::parse(&s.to_string()), Some(s));
        }
        assert_eq!(WireSlot::parse("floppy2"), None);
        assert_eq!(WireSlot::parse("scsi7"), None);
        assert_eq!(WireSlot::parse("disk"), None);
    }
}
