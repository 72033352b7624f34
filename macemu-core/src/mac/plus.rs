//! The Mac Plus as a [`Machine`]: the seam the emulator drives, mapped onto [`MacPlus`].

use super::machine::{FrameReport, MacPlus};
use super::rtc::XPRAM_SIZE;
use super::sound::SAMPLE_RATE_HZ;
use super::video::{HEIGHT, ROW_BYTES, WIDTH};
use super::CPU_HZ;
use crate::floppy::FloppyImage;
use crate::machine::{
    AudioFormat, Machine, Model, NvramSizeError, Palette, Screen, SourceFormat, PLUS,
};
use crate::scsi::ScsiDisk;
use crate::storage::{Backing, DiskError, DriveEvent, DriveEventKind, DriveInfo, DriveSlot};

/// 1 = black, as the Plus's video circuitry inverts nothing.
static MONO: Palette = Palette::MONO;

impl Machine for MacPlus {
    fn model(&self) -> &'static Model {
        &PLUS
    }

    fn clock_hz(&self) -> u64 {
        CPU_HZ
    }

    fn frame_hz(&self) -> f64 {
        CPU_HZ as f64 / super::video::CYCLES_PER_FRAME as f64
    }

    fn run_frame(&mut self) -> FrameReport {
        MacPlus::run_frame(self)
    }

    fn run_cycles(&mut self, cycles: u64) -> u64 {
        MacPlus::run_cycles(self, cycles)
    }

    fn reset(&mut self) {
        MacPlus::reset(self)
    }

    fn screen(&self) -> Screen<'_> {
        Screen {
            width: WIDTH,
            height: HEIGHT,
            row_bytes: ROW_BYTES,
            format: SourceFormat::Indexed1,
            palette: &MONO,
            data: MacPlus::screen(self),
        }
    }

    fn audio_format(&self) -> AudioFormat {
        AudioFormat {
            rate_hz: SAMPLE_RATE_HZ,
            channels: 1,
        }
    }

    fn audio_frame(&self) -> &[i16] {
        MacPlus::audio_frame(self)
    }

    fn key(&mut self, mac_code: u8, down: bool) -> bool {
        MacPlus::key(self, mac_code, down)
    }

    fn release_all_keys(&mut self) {
        MacPlus::release_all_keys(self)
    }

    fn mouse_relative(&mut self, dx: i32, dy: i32) {
        self.mouse_move_relative(dx, dy)
    }

    fn mouse_button(&mut self, down: bool) {
        MacPlus::mouse_button(self, down)
    }

    fn interrupt_switch(&mut self, pressed: bool) {
        MacPlus::interrupt_switch(self, pressed)
    }

    fn enable_os_helpers(&mut self) -> bool {
        MacPlus::enable_os_helpers(self);
        true
    }

    fn mouse_absolute(&mut self, x: i16, y: i16) -> bool {
        self.mouse_move_absolute(x, y)
    }

    fn cursor_position(&self) -> Option<(i16, i16)> {
        MacPlus::cursor_position(self)
    }

    fn nvram(&self) -> &[u8] {
        self.xpram()
    }

    fn set_nvram(&mut self, data: &[u8]) -> Result<(), NvramSizeError> {
        let data: &[u8; XPRAM_SIZE] = data.try_into().map_err(|_| NvramSizeError {
            expected: XPRAM_SIZE,
            got: data.len(),
        })?;
        self.set_xpram(data);
        Ok(())
    }

    fn take_nvram_changed(&mut self) -> bool {
        self.take_xpram_changed()
    }

    fn rtc_seconds(&self) -> u32 {
        MacPlus::rtc_seconds(self)
    }

    fn set_rtc_seconds(&mut self, seconds: u32) {
        MacPlus::set_rtc_seconds(self, seconds)
    }

    // The Plus's drives: two floppies on the IWM, SCSI IDs 0-6 on the 5380 (7 is the Mac).
    fn insert_disk(&mut self, slot: DriveSlot, media: Box<dyn Backing>) -> Result<(), DiskError> {
        match slot {
            DriveSlot::Floppy(n @ 0..=1) => self.insert_floppy(n, FloppyImage::open(media)?),
            DriveSlot::Scsi(id @ 0..=6) => {
                if self.scsi_info(id).is_some() {
                    return Err(DiskError::Occupied(slot));
                }
                self.attach_scsi(id, ScsiDisk::new(media)?)
            }
            _ => Err(DiskError::NoSuchDrive(slot)),
        }
    }

    fn eject_disk(&mut self, slot: DriveSlot) -> Result<(), DiskError> {
        match slot {
            DriveSlot::Floppy(n @ 0..=1) => self.eject_floppy(n),
            DriveSlot::Scsi(id @ 0..=6) => self.detach_scsi(id),
            _ => Err(DiskError::NoSuchDrive(slot)),
        }
    }

    fn drives(&self) -> Vec<DriveInfo> {
        let floppies = (0..2).map(|n| DriveInfo {
            slot: DriveSlot::Floppy(n),
            media: self.floppy_info(n),
        });
        let scsi = (0..7).map(|id| DriveInfo {
            slot: DriveSlot::Scsi(id),
            media: self.scsi_info(id),
        });
        floppies.chain(scsi).collect()
    }

    fn take_drive_events(&mut self) -> Vec<DriveEvent> {
        let failed = self
            .take_write_errors()
            .into_iter()
            .map(|(slot, e)| (slot, DriveEventKind::WriteFailed(e)));
        let ejected = self
            .take_floppy_ejects()
            .into_iter()
            .map(|n| (DriveSlot::Floppy(n), DriveEventKind::EjectedByMac));
        let happened: Vec<_> = failed.chain(ejected).collect();
        happened
            .into_iter()
            .map(|(slot, kind)| {
                let media = match slot {
                    DriveSlot::Floppy(n) => self.floppy_info(n),
                    DriveSlot::Scsi(id) => self.scsi_info(id),
                };
                DriveEvent {
                    info: DriveInfo { slot, media },
                    kind,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::MODELS;
    use crate::storage::MemBacking;

    /// A ROM that loops at its reset vector: enough for the board to run.
    fn idle_rom() -> Vec<u8> {
        let mut rom = vec![0u8; 128 * 1024];
        // Initial SSP 0x0040_0000, PC 0x0040_0008: BRA.S to itself.
        rom[0..8].copy_from_slice(&[0, 0x40, 0, 0, 0, 0x40, 0, 8]);
        rom[8..10].copy_from_slice(&[0x60, 0xFE]);
        rom
    }

    #[test]
    fn the_registry_builds_a_plus_that_describes_itself() {
        assert_eq!(Model::default_model().name, "plus");
        assert!(MODELS.iter().any(|m| m.name == "plus"));
        let model = Model::by_name("PLUS").expect("names are case-insensitive");
        assert_eq!(model.default_ram(), 4 << 20);
        assert!(Model::by_name("lisa").is_none());
        let mut mac = model.build(&idle_rom(), 1 << 20).expect("builds");
        assert_eq!(mac.model().name, "plus");
        assert!(model.build(&idle_rom(), 3 << 20).is_err());

        let screen = mac.screen();
        assert_eq!(
            (screen.width, screen.height, screen.row_bytes),
            (512, 342, 64)
        );
        assert_eq!(screen.format.bits_per_pixel(), 1);
        assert_eq!(screen.data.len(), 64 * 342);
        assert_eq!(screen.palette.0[0], 0x00FF_FFFF);
        assert_eq!(screen.palette.0[1], 0);

        let audio = mac.audio_format();
        assert_eq!(audio.channels, 1);
        // 7,833,600 / 352 clocks a line.
        assert!(
            (audio.rate_hz - 22_254.545).abs() < 1e-3,
            "{}",
            audio.rate_hz
        );
        assert!(
            (mac.frame_hz() - 60.1474).abs() < 1e-3,
            "{}",
            mac.frame_hz()
        );
        assert_eq!(mac.clock_hz(), 7_833_600);
        let report = mac.run_frame();
        // One frame of clocks, give or take the last instruction.
        assert_eq!(report.frame, 1);
        assert!((130_240..130_240 + 200).contains(&report.total_cycles));
        assert_eq!(mac.audio_frame().len(), 370);
    }

    #[test]
    fn nvram_takes_exactly_its_size() {
        let mut mac: Box<dyn Machine> = PLUS.build(&idle_rom(), 1 << 20).expect("builds");
        let mut data = [0u8; XPRAM_SIZE];
        data[0x10] = 0xA8;
        mac.set_nvram(&data).expect("256 bytes fit");
        assert_eq!(mac.nvram(), &data[..]);
        assert!(!mac.take_nvram_changed());
        assert_eq!(
            mac.set_nvram(&data[..20]),
            Err(NvramSizeError {
                expected: 256,
                got: 20
            })
        );
        mac.set_rtc_seconds(1234);
        assert_eq!(mac.rtc_seconds(), 1234);
    }

    #[test]
    fn os_helpers_are_off_until_asked_for() {
        let mut mac: Box<dyn Machine> = PLUS.build(&idle_rom(), 1 << 20).expect("builds");
        assert_eq!(mac.cursor_position(), None);
        assert!(!mac.mouse_absolute(10, 10));
        assert!(mac.enable_os_helpers());
        assert_eq!(mac.cursor_position(), Some((0, 0)));
        assert!(mac.mouse_absolute(10, 10));
    }

    #[test]
    fn drives_take_floppy_and_scsi_images_through_the_seam() {
        let mut mac: Box<dyn Machine> = PLUS.build(&idle_rom(), 1 << 20).expect("builds");
        assert_eq!(mac.drives().len(), 9, "two floppy drives and SCSI IDs 0-6");
        assert!(mac.drives().iter().all(|d| d.media.is_none()));
        // An 800K raw floppy and a 1 MiB SCSI disk.
        let floppy = Box::new(MemBacking::new(vec![0; 800 * 1024]));
        mac.insert_disk(DriveSlot::Floppy(1), floppy)
            .expect("800K floppy");
        let hd = Box::new(MemBacking::new(vec![0; 1 << 20]));
        mac.insert_disk(DriveSlot::Scsi(3), hd).expect("SCSI disk");
        let held: Vec<(DriveSlot, u64)> = mac
            .drives()
            .into_iter()
            .filter_map(|d| Some((d.slot, d.media?.bytes)))
            .collect();
        assert_eq!(
            held,
            [
                (DriveSlot::Floppy(1), 819_200),
                (DriveSlot::Scsi(3), 1 << 20)
            ]
        );
        // Occupied drives refuse a second disk; unknown drives and unknown formats are refused.
        let again = Box::new(MemBacking::new(vec![0; 1 << 20]));
        assert!(matches!(
            mac.insert_disk(DriveSlot::Scsi(3), again),
            Err(DiskError::Occupied(DriveSlot::Scsi(3)))
        ));
        let odd = Box::new(MemBacking::new(vec![0; 1000]));
        assert!(matches!(
            mac.insert_disk(DriveSlot::Floppy(0), odd),
            Err(DiskError::Format(_))
        ));
        let any = Box::new(MemBacking::new(vec![0; 1 << 20]));
        assert!(matches!(
            mac.insert_disk(DriveSlot::Scsi(7), any),
            Err(DiskError::NoSuchDrive(DriveSlot::Scsi(7)))
        ));
        mac.eject_disk(DriveSlot::Scsi(3)).expect("detach");
        mac.eject_disk(DriveSlot::Floppy(1)).expect("eject");
        assert!(mac.drives().iter().all(|d| d.media.is_none()));
        // The host ejecting a disk is not a Mac-initiated event.
        assert!(mac.take_drive_events().is_empty());
    }
}
