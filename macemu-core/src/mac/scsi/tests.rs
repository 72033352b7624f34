//! The 5380 and its bus, driven register by register the way the Plus ROM's SCSI Manager does
//! (arbitrate, select with 125 BSY polls, command by REQ/ACK, data by pseudo-DMA with DRQ,
//! status and message by REQ/ACK). Expected bytes come from the SCSI-2 standard and the block
//! contents the tests put in the images.

use super::*;
use crate::scsi::ScsiDisk;
use crate::storage::{Backing, FileBacking, MemBacking};
use std::io;

/// Something with the Plus's 5380 addresses: the chip alone, or the whole board.
pub(crate) trait Port {
    fn rd(&mut self, addr: u32) -> u8;
    fn wr(&mut self, addr: u32, v: u8);
}

impl Port for Scsi {
    fn rd(&mut self, addr: u32) -> u8 {
        self.read(addr)
    }
    fn wr(&mut self, addr: u32, v: u8) {
        self.write(addr, v)
    }
}

/// Register r is read at $580000 + r×$10 and written at $580001 + r×$10; DACK at $580200/1.
const fn rd_addr(r: u32) -> u32 {
    0x58_0000 + r * 0x10
}
const fn wr_addr(r: u32) -> u32 {
    0x58_0001 + r * 0x10
}
const DACK_RD: u32 = 0x58_0200;
const DACK_WR: u32 = 0x58_0201;

const ODR: u32 = 0;
const ICR: u32 = 1;
const MR: u32 = 2;
const TCR: u32 = 3;
const CSR: u32 = 4;
const SER: u32 = 4;
const BSR: u32 = 5;
const START_SEND: u32 = 5;
const START_RECEIVE: u32 = 7;

/// Poll limits of the ROM: BSY after selection 125 times; REQ up to 47,764 times.
const SELECT_POLLS: usize = 125;
const REQ_POLLS: usize = 47_764;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    LostArbitration,
    NoTarget,
    ReqTimeout,
    PhaseMismatch,
    DrqTimeout,
}

/// The initiator side, as the Plus ROM's SCSI Manager works the chip.
pub(crate) struct Rom<'a, P: Port> {
    pub p: &'a mut P,
}

impl<P: Port> Rom<'_, P> {
    fn r(&mut self, reg: u32) -> u8 {
        self.p.rd(rd_addr(reg))
    }
    fn w(&mut self, reg: u32, v: u8) {
        self.p.wr(wr_addr(reg), v)
    }

    /// SCSIGet: our ID on the bus, arbitrate, AIP must be up at once and LA never.
    pub fn arbitrate(&mut self) -> Result<(), Fail> {
        self.w(ODR, 0x80);
        self.w(MR, 0x01);
        if self.r(ICR) & 0x40 == 0 {
            return Err(Fail::LostArbitration);
        }
        // After the arbitration delay: lost arbitration, or a higher ID on the bus, fails.
        if self.r(ICR) & 0x20 != 0 || self.r(ODR) & 0x7F != 0 {
            return Err(Fail::LostArbitration);
        }
        Ok(())
    }

    /// SCSISelect: SEL, our ID and the target's, drop BSY, poll BSY 125 times, release SEL.
    pub fn select(&mut self, id: u8) -> Result<(), Fail> {
        self.w(ICR, 0x04);
        self.w(TCR, 0);
        self.w(ODR, 0x80 | 1 << id);
        self.w(ICR, 0x0D);
        self.w(MR, 0);
        self.w(SER, 0);
        self.w(ICR, 0x05);
        let answered = (0..SELECT_POLLS).any(|_| self.r(CSR) & 0x40 != 0);
        self.w(ICR, 0);
        if answered {
            Ok(())
        } else {
            Err(Fail::NoTarget)
        }
    }

    fn wait_req(&mut self, level: bool) -> Result<(), Fail> {
        for _ in 0..REQ_POLLS {
            if (self.r(CSR) & 0x20 != 0) == level {
                return Ok(());
            }
        }
        Err(Fail::ReqTimeout)
    }

    /// Waits for REQ in the phase set in TCR.
    fn phase(&mut self, phase: u8) -> Result<(), Fail> {
        self.w(TCR, phase);
        self.wait_req(true)?;
        if self.r(BSR) & 0x08 == 0 {
            return Err(Fail::PhaseMismatch);
        }
        Ok(())
    }

    /// SCSICmd: each CDB byte by a programmed REQ/ACK handshake.
    pub fn command(&mut self, cdb: &[u8]) -> Result<(), Fail> {
        self.phase(2)?;
        for &b in cdb {
            self.w(ODR, b);
            self.w(ICR, 0x01);
            self.wait_req(true)?;
            self.w(ICR, 0x11);
            self.wait_req(false)?;
            self.w(ICR, 0x00);
        }
        Ok(())
    }

    fn drq(&mut self) -> Result<(), Fail> {
        for _ in 0..REQ_POLLS {
            if self.r(BSR) & 0x40 != 0 {
                return Ok(());
            }
        }
        Err(Fail::DrqTimeout)
    }

    /// SCSIRead (or SCSIRBlind when `blind`): pseudo-DMA receive of `n` bytes.
    pub fn read(&mut self, n: usize, blind: bool) -> Result<Vec<u8>, Fail> {
        self.phase(1)?;
        self.w(MR, 0x02);
        self.p.wr(wr_addr(START_RECEIVE), 0);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if i == 0 || !blind {
                self.drq()?;
            }
            out.push(self.p.rd(DACK_RD));
        }
        self.w(MR, 0);
        Ok(out)
    }

    /// SCSIWrite (or SCSIWBlind): pseudo-DMA send, then the wait for DRQ after the last byte.
    /// `before_last_drq` runs after the last byte went out, before that final wait.
    pub fn write(
        &mut self,
        data: &[u8],
        blind: bool,
        mut after_last_byte: impl FnMut(&mut P),
    ) -> Result<(), Fail> {
        self.phase(0)?;
        self.w(MR, 0x02);
        self.w(ICR, 0x01);
        self.p.wr(wr_addr(START_SEND), 0);
        for (i, &b) in data.iter().enumerate() {
            if i == 0 || !blind {
                self.drq()?;
            }
            self.p.wr(DACK_WR, b);
        }
        after_last_byte(self.p);
        self.drq()?;
        self.w(MR, 0);
        self.w(ICR, 0);
        Ok(())
    }

    fn pio_in(&mut self) -> Result<u8, Fail> {
        self.wait_req(true)?;
        let v = self.r(ODR);
        self.w(ICR, 0x10);
        self.wait_req(false)?;
        self.w(ICR, 0);
        Ok(v)
    }

    /// SCSIComplete: status then message by REQ/ACK; stray data-in bytes before the status
    /// phase are drained. Returns (status, message) once the bus is free.
    pub fn complete(&mut self) -> Result<(u8, u8, usize), Fail> {
        let mut drained = 0;
        loop {
            self.w(TCR, 3);
            self.wait_req(true)?;
            if self.r(BSR) & 0x08 != 0 {
                break;
            }
            // Not in STATUS yet: follow the bus phase and take the byte.
            let phase = (self.r(CSR) >> 2) & 7;
            self.w(TCR, phase);
            if phase & 1 != 0 {
                self.pio_in()?;
            } else {
                self.w(ODR, 0);
                self.w(ICR, 0x01);
                self.w(ICR, 0x11);
                self.wait_req(false)?;
                self.w(ICR, 0);
            }
            drained += 1;
        }
        let status = self.pio_in()?;
        self.phase(7)?;
        let msg = self.pio_in()?;
        Ok((status, msg, drained))
    }

    pub fn bus_free(&mut self) -> bool {
        self.r(CSR) & 0x40 == 0
    }

    /// A whole command with data in: arbitrate, select, command, read, complete.
    pub fn read_command(&mut self, id: u8, cdb: &[u8], n: usize) -> Result<(Vec<u8>, u8), Fail> {
        self.arbitrate()?;
        self.select(id)?;
        self.command(cdb)?;
        let data = if n > 0 {
            self.read(n, false)?
        } else {
            Vec::new()
        };
        let (status, _, _) = self.complete()?;
        Ok((data, status))
    }

    /// A command that may or may not have data in: reads whatever the target sends.
    pub fn simple(&mut self, id: u8, cdb: &[u8]) -> Result<u8, Fail> {
        self.arbitrate()?;
        self.select(id)?;
        self.command(cdb)?;
        Ok(self.complete()?.0)
    }
}

/// Block n of a test image: every byte is (n * 7 + offset) mod 251, so blocks differ.
pub(crate) fn pattern(blocks: usize) -> Vec<u8> {
    (0..blocks * 512)
        .map(|i| ((i / 512 * 7 + i % 512) % 251) as u8)
        .collect()
}

fn disk(blocks: usize) -> ScsiDisk {
    ScsiDisk::new(Box::new(MemBacking::new(pattern(blocks)))).unwrap()
}

fn bus_with(id: u8, d: ScsiDisk) -> Scsi {
    let mut s = Scsi::new();
    s.attach(id, Box::new(d)).unwrap();
    s
}

#[test]
fn plus_rom_sequence_reads_block_0_with_every_phase_visible() {
    let mut s = bus_with(3, disk(64));
    let read = |s: &mut Scsi, r| s.read(rd_addr(r));

    // Arbitration on a free bus: AIP at once, our ID on the data bus.
    s.write(wr_addr(ODR), 0x80);
    s.write(wr_addr(MR), 0x01);
    assert_eq!(read(&mut s, ICR) & 0x60, 0x40, "AIP, not lost");
    assert_eq!(read(&mut s, ODR), 0x80);
    assert_eq!(
        read(&mut s, CSR) & 0x40,
        0x40,
        "the chip drives BSY while arbitrating"
    );

    // Selection: no answer while BSY is still ours, BSY from the target once we drop it.
    s.write(wr_addr(ICR), 0x04);
    s.write(wr_addr(TCR), 0);
    s.write(wr_addr(ODR), 0x88);
    s.write(wr_addr(ICR), 0x0D);
    s.write(wr_addr(MR), 0);
    assert_eq!(s.phase(), None);
    s.write(wr_addr(SER), 0);
    s.write(wr_addr(ICR), 0x05);
    assert_eq!(read(&mut s, CSR) & 0x42, 0x42, "target BSY and our SEL");
    assert_eq!(read(&mut s, CSR) & 0x20, 0, "no REQ until SEL drops");
    s.write(wr_addr(ICR), 0);

    // COMMAND phase: C/D set (bits 4–2 of CSR = 010), REQ up, phase match with TCR = 2.
    s.write(wr_addr(TCR), 2);
    assert_eq!(read(&mut s, CSR) & 0x3C, 0x20 | 0x08);
    assert_eq!(read(&mut s, BSR) & 0x08, 0x08);
    for b in [0x08u8, 0, 0, 0, 1, 0] {
        s.write(wr_addr(ODR), b);
        s.write(wr_addr(ICR), 0x01);
        assert_eq!(read(&mut s, CSR) & 0x20, 0x20, "REQ for each byte");
        s.write(wr_addr(ICR), 0x11);
        assert_eq!(read(&mut s, CSR) & 0x20, 0, "REQ drops on ACK");
        assert_eq!(read(&mut s, BSR) & 0x01, 0x01, "ACK shows in BSR");
        s.write(wr_addr(ICR), 0);
    }

    // DATA IN: I/O set (001), pseudo-DMA with DRQ before every byte.
    assert_eq!(s.phase(), Some(Phase::DataIn));
    s.write(wr_addr(TCR), 1);
    assert_eq!(read(&mut s, CSR) & 0x3C, 0x20 | 0x04);
    assert_eq!(read(&mut s, BSR) & 0x40, 0, "no DRQ before DMA mode");
    s.write(wr_addr(MR), 0x02);
    s.write(wr_addr(START_RECEIVE), 0);
    let mut got = Vec::new();
    for _ in 0..512 {
        assert_eq!(read(&mut s, BSR) & 0x48, 0x48, "DRQ and phase match");
        got.push(s.read(DACK_RD));
    }
    assert_eq!(got, pattern(1));
    // The data phase is over: the target asks for STATUS, DRQ is gone (phase mismatch).
    assert_eq!(read(&mut s, BSR) & 0x48, 0);
    s.write(wr_addr(MR), 0);

    // STATUS (011) GOOD, MESSAGE IN (111) COMMAND COMPLETE, then bus free.
    s.write(wr_addr(TCR), 3);
    assert_eq!(read(&mut s, CSR) & 0x3C, 0x20 | 0x0C);
    assert_eq!(read(&mut s, ODR), 0x00);
    s.write(wr_addr(ICR), 0x10);
    s.write(wr_addr(ICR), 0);
    s.write(wr_addr(TCR), 7);
    assert_eq!(read(&mut s, CSR) & 0x3C, 0x20 | 0x1C);
    assert_eq!(read(&mut s, ODR), 0x00);
    s.write(wr_addr(ICR), 0x10);
    s.write(wr_addr(ICR), 0);
    assert_eq!(read(&mut s, CSR), 0, "bus free: no BSY, REQ or phase lines");
}

#[test]
fn selecting_an_empty_id_times_out_and_the_bus_stays_usable() {
    let mut s = bus_with(6, disk(8));
    let mut rom = Rom { p: &mut s };
    for id in 0..6 {
        rom.arbitrate().unwrap();
        assert_eq!(rom.select(id), Err(Fail::NoTarget), "ID {id}");
        assert!(rom.bus_free());
    }
    // The ROM's boot order 6→0 finds the disk at 6.
    let (data, status) = rom.read_command(6, &[0x08, 0, 0, 1, 1, 0], 512).unwrap();
    assert_eq!((data, status), (pattern(8)[512..1024].to_vec(), 0));
    assert!(rom.bus_free());
}

#[test]
fn seven_targets_and_id_7_is_the_mac() {
    let mut s = Scsi::new();
    for id in 0..7 {
        let mut d = disk(4 + usize::from(id));
        d.set_inquiry("VENDOR", &format!("DISK {id}"), "1");
        s.attach(id, Box::new(d)).unwrap();
    }
    assert!(matches!(
        s.attach(7, Box::new(disk(4))),
        Err(DiskError::NoSuchDrive(DriveSlot::Scsi(7)))
    ));
    assert!(matches!(
        s.attach(2, Box::new(disk(4))),
        Err(DiskError::Occupied(DriveSlot::Scsi(2)))
    ));
    let mut rom = Rom { p: &mut s };
    for id in 0..7u8 {
        // READ CAPACITY tells each disk apart: last LBA = 3 + id.
        let (d, st) = rom
            .read_command(id, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8)
            .unwrap();
        assert_eq!(st, 0);
        assert_eq!(d, [0, 0, 0, 3 + id, 0, 0, 2, 0]);
    }
    assert_eq!(s.info(4).unwrap().bytes, 8 * 512);
    assert!(s.detach(4).unwrap().is_some());
    assert!(s.detach(4).unwrap().is_none());
    assert!(s.info(4).is_none());
    let mut rom = Rom { p: &mut s };
    rom.arbitrate().unwrap();
    assert_eq!(rom.select(4), Err(Fail::NoTarget));
}

#[test]
fn boot_read_moves_256_bytes_blind_and_complete_drains_the_rest() {
    let mut s = bus_with(0, disk(16));
    let mut rom = Rom { p: &mut s };
    rom.arbitrate().unwrap();
    rom.select(0).unwrap();
    rom.command(&[0x08, 0, 0, 0, 1, 0]).unwrap();
    let data = rom.read(256, true).unwrap();
    assert_eq!(data, pattern(1)[..256]);
    let (status, msg, drained) = rom.complete().unwrap();
    assert_eq!((status, msg, drained), (0, 0, 256));
    assert!(rom.bus_free());
}

#[test]
fn multi_block_read_and_write_by_pseudo_dma() {
    let mut s = bus_with(1, disk(40));
    let mut rom = Rom { p: &mut s };
    // READ(10) of blocks 5..8: LBA in bytes 2–5, count in 7–8.
    let (data, st) = rom
        .read_command(1, &[0x28, 0, 0, 0, 0, 5, 0, 0, 3, 0], 3 * 512)
        .unwrap();
    assert_eq!(st, 0);
    assert_eq!(data, pattern(40)[5 * 512..8 * 512]);

    // WRITE(6) of two blocks at LBA 9, blind, then read them back.
    let new: Vec<u8> = (0..1024).map(|i| (i as u8) ^ 0x5A).collect();
    rom.arbitrate().unwrap();
    rom.select(1).unwrap();
    rom.command(&[0x0A, 0, 0, 9, 2, 0]).unwrap();
    rom.write(&new, true, |_| {}).unwrap();
    assert_eq!(rom.complete().unwrap().0, 0);
    let (back, st) = rom.read_command(1, &[0x08, 0, 0, 9, 2, 0], 1024).unwrap();
    assert_eq!((back, st), (new, 0));
}

#[test]
fn a_file_write_is_in_the_file_when_status_phase_is_reached() {
    let path = std::env::temp_dir().join(format!("macemu-scsi-durable-{}", std::process::id()));
    std::fs::write(&path, vec![0u8; 32 * 512]).unwrap();
    let d = ScsiDisk::new(Box::new(FileBacking::open(&path, false).unwrap())).unwrap();
    let mut s = bus_with(2, d);
    let data: Vec<u8> = (0..512 * 2).map(|i| (i * 3) as u8).collect();
    let mut rom = Rom { p: &mut s };
    rom.arbitrate().unwrap();
    rom.select(2).unwrap();
    rom.command(&[0x2A, 0, 0, 0, 0, 7, 0, 0, 2, 0]).unwrap();
    let mut seen = None;
    rom.write(&data, false, |s| {
        // The last byte has just been handed over: the target is already in STATUS (REQ up),
        // and another reader of the file sees both blocks.
        seen = Some((s.phase(), std::fs::read(&path).unwrap()));
    })
    .unwrap();
    let (phase, file) = seen.unwrap();
    assert_eq!(phase, Some(Phase::Status));
    assert_eq!(file[7 * 512..9 * 512], data[..]);
    assert_eq!(rom.complete().unwrap().0, 0);
    drop(s);
    std::fs::remove_file(&path).unwrap();
}

/// A medium whose writes fail (a full or failing host disk).
struct FailingWrites(MemBacking);

impl Backing for FailingWrites {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&mut self, _offset: u64, _data: &[u8]) -> io::Result<()> {
        Err(io::Error::other("no space left on device"))
    }
    fn read_only(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "failing".into()
    }
}

#[test]
fn a_failed_write_ends_in_check_condition_and_the_rom_does_not_hang() {
    let d = ScsiDisk::new(Box::new(FailingWrites(MemBacking::new(vec![0; 8 * 512])))).unwrap();
    let mut s = bus_with(0, d);
    let mut rom = Rom { p: &mut s };
    rom.arbitrate().unwrap();
    rom.select(0).unwrap();
    rom.command(&[0x0A, 0, 0, 1, 2, 0]).unwrap();
    // The target stops after the first block; the ROM's loop still ends (DRQ follows REQ).
    rom.write(&[0xEE; 1024], false, |_| {}).unwrap();
    let (status, _, _) = rom.complete().unwrap();
    assert_eq!(status, 2, "CHECK CONDITION, never GOOD");
    let (sense, st) = rom.read_command(0, &[0x03, 0, 0, 0, 18, 0], 18).unwrap();
    assert_eq!(st, 0);
    assert_eq!(sense[2] & 0x0F, 0x03, "MEDIUM ERROR");
    assert_eq!(sense[3..7], [0, 0, 0, 1], "the failing LBA");
    // The host's user hears of it once, with the block and the host's reason.
    assert_eq!(
        s.take_write_errors(),
        [(0, "block 1: no space left on device".to_string())]
    );
    assert!(s.take_write_errors().is_empty());
}

#[test]
fn a_read_only_image_refuses_writes_and_says_so_in_mode_sense() {
    let mut m = MemBacking::new(pattern(8));
    m.read_only = true;
    let mut s = bus_with(5, ScsiDisk::new(Box::new(m)).unwrap());
    let mut rom = Rom { p: &mut s };
    rom.arbitrate().unwrap();
    rom.select(5).unwrap();
    rom.command(&[0x0A, 0, 0, 0, 1, 0]).unwrap();
    // No DATA OUT phase at all: straight to STATUS.
    assert_eq!(rom.complete().unwrap().0, 2);
    let (sense, _) = rom.read_command(5, &[0x03, 0, 0, 0, 18, 0], 18).unwrap();
    assert_eq!(
        (sense[2], sense[12]),
        (0x07, 0x27),
        "DATA PROTECT, write protected"
    );
    let (mode, _) = rom.read_command(5, &[0x1A, 0, 0, 0, 12, 0], 12).unwrap();
    assert_eq!(mode[2] & 0x80, 0x80, "WP in the mode parameter header");
    let (data, _) = rom.read_command(5, &[0x08, 0, 0, 0, 1, 0], 512).unwrap();
    assert_eq!(data, pattern(1), "reads still work");
}

#[test]
fn atn_at_selection_gives_message_out_first() {
    let mut s = bus_with(0, disk(8));
    let w = |s: &mut Scsi, r, v| s.write(wr_addr(r), v);
    w(&mut s, ODR, 0x80);
    w(&mut s, MR, 1);
    w(&mut s, ICR, 0x04);
    w(&mut s, ODR, 0x81);
    w(&mut s, ICR, 0x0F); // BSY, SEL, ATN, data
    w(&mut s, MR, 0);
    w(&mut s, ICR, 0x07); // drop BSY: selection with ATN
    assert_eq!(s.read(rd_addr(CSR)) & 0x40, 0x40);
    w(&mut s, ICR, 0x02); // drop SEL, keep ATN
    assert_eq!(s.phase(), Some(Phase::MessageOut));
    // IDENTIFY, LUN 0; ATN released before ACK falls: COMMAND follows.
    w(&mut s, TCR, 6);
    w(&mut s, ODR, 0x80);
    w(&mut s, ICR, 0x03);
    w(&mut s, ICR, 0x13);
    w(&mut s, ICR, 0x01);
    w(&mut s, ICR, 0x00);
    assert_eq!(s.phase(), Some(Phase::Command));
    let mut rom = Rom { p: &mut s };
    rom.command(&[0x00, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(rom.complete().unwrap(), (0, 0, 0));
}

#[test]
fn bus_reset_frees_the_bus_without_unit_attention() {
    let mut s = bus_with(0, disk(8));
    let mut rom = Rom { p: &mut s };
    rom.arbitrate().unwrap();
    rom.select(0).unwrap();
    rom.command(&[0x08, 0, 0, 0, 4, 0]).unwrap();
    rom.read(100, false).unwrap();
    // Reset mid-transfer.
    s.write(wr_addr(ICR), 0x80);
    assert_eq!(s.read(rd_addr(CSR)), 0x80, "only RST on the bus");
    assert_eq!(s.read(rd_addr(BSR)) & 0x10, 0x10, "interrupt");
    s.write(wr_addr(ICR), 0);
    s.read(rd_addr(7));
    assert_eq!(s.read(rd_addr(BSR)) & 0x10, 0);
    let mut rom = Rom { p: &mut s };
    // The first command after the reset succeeds: no UNIT ATTENTION.
    assert_eq!(rom.simple(0, &[0x00, 0, 0, 0, 0, 0]), Ok(0));
    let (sense, _) = rom.read_command(0, &[0x03, 0, 0, 0, 18, 0], 18).unwrap();
    assert_eq!(sense[2], 0, "NO SENSE");
}

#[test]
fn unknown_opcodes_and_lengths_follow_the_group_code() {
    let mut s = bus_with(0, disk(8));
    let mut rom = Rom { p: &mut s };
    // A 10-byte vendor opcode ($C0 is group 6: six bytes) and a 12-byte one ($A8 READ(12)).
    assert_eq!(rom.simple(0, &[0xC0, 0, 0, 0, 0, 0]), Ok(2));
    assert_eq!(
        rom.simple(0, &[0xA8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]),
        Ok(2)
    );
    let (sense, _) = rom.read_command(0, &[0x03, 0, 0, 0, 18, 0], 18).unwrap();
    assert_eq!(
        (sense[2], sense[12]),
        (0x05, 0x20),
        "ILLEGAL REQUEST, invalid opcode"
    );
}

#[test]
fn chip_reset_keeps_the_targets() {
    let mut s = bus_with(3, disk(8));
    let mut rom = Rom { p: &mut s };
    rom.arbitrate().unwrap();
    rom.select(3).unwrap();
    s.reset();
    assert_eq!(s.read(rd_addr(CSR)), 0);
    assert!(s.info(3).is_some());
    let mut rom = Rom { p: &mut s };
    assert_eq!(rom.simple(3, &[0x00, 0, 0, 0, 0, 0]), Ok(0));
}

#[test]
fn hostile_register_traffic_never_panics() {
    let mut s = bus_with(0, disk(4));
    s.attach(1, Box::new(disk(2))).unwrap();
    // xorshift: a reproducible stream of addresses and values.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..300_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let addr = 0x58_0000 | (x as u32 & 0x273);
        let v = (x >> 32) as u8;
        if x & (1 << 40) != 0 {
            s.write(addr, v);
        } else {
            s.read(addr);
        }
    }
    // Whatever state that left, a reset brings back a working bus.
    s.write(wr_addr(ICR), 0x80);
    s.write(wr_addr(ICR), 0);
    s.write(wr_addr(MR), 0);
    let mut rom = Rom { p: &mut s };
    assert_eq!(rom.simple(1, &[0x00, 0, 0, 0, 0, 0]), Ok(0));
}
