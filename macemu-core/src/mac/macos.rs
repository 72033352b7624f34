//! Helpers that work through the classic Mac OS instead of the hardware.
//!
//! The hardware only knows relative mouse motion; a browser knows where its pointer is. Putting
//! the cursor at an absolute position means writing the OS's low-memory mouse globals (Inside
//! Macintosh: MTemp, RawMouse, CrsrNew, CrsrCouple) the way the ROM's own mouse code does. That
//! depends on the OS, not the board, so it lives here and a driver opts into it
//! (`Machine::enable_os_helpers`); a machine running other software is left untouched.

/// Low-memory globals of the mouse: MTemp and RawMouse (v, h words), CrsrNew, CrsrCouple.
const MTEMP: usize = 0x0828;
const RAW_MOUSE: usize = 0x082C;
const CRSR_NEW: usize = 0x08CE;
const CRSR_COUPLE: usize = 0x08CF;

/// Absolute cursor positioning through the mouse globals.
#[derive(Clone, Debug, Default)]
pub struct AbsoluteMouse {
    pending: Option<(i16, i16)>,
}

impl AbsoluteMouse {
    /// Asks for the cursor at (x, y) at the next [`AbsoluteMouse::apply`].
    pub fn request(&mut self, x: i16, y: i16) {
        self.pending = Some((x, y));
    }

    /// Forgets a position not yet applied (reset).
    pub fn cancel(&mut self) {
        self.pending = None;
    }

    /// The position waiting for the next vertical blank, if any.
    pub fn pending(&self) -> Option<(i16, i16)> {
        self.pending
    }

    /// Called at vertical blanking: writes the pending position into `ram` once the system runs
    /// (`system_ready`: the ROM overlay is off and the VBL interrupt enabled, i.e. after the RAM
    /// test), as the ROM's VBL mouse task would. Before that the position waits.
    pub fn apply(&mut self, ram: &mut [u8], system_ready: bool) {
        if !system_ready || ram.len() <= CRSR_COUPLE {
            return;
        }
        let Some((x, y)) = self.pending.take() else {
            return;
        };
        for base in [MTEMP, RAW_MOUSE] {
            ram[base..base + 2].copy_from_slice(&(y as u16).to_be_bytes());
            ram[base + 2..base + 4].copy_from_slice(&(x as u16).to_be_bytes());
        }
        ram[CRSR_NEW] = ram[CRSR_COUPLE];
    }

    /// The cursor position the system keeps in RawMouse (x, y).
    pub fn cursor(ram: &[u8]) -> (i16, i16) {
        let word = |a: usize| match ram.get(a..a + 2) {
            Some(b) => i16::from_be_bytes([b[0], b[1]]),
            None => 0,
        };
        (word(RAW_MOUSE + 2), word(RAW_MOUSE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_waits_for_the_system_then_lands_in_the_globals() {
        let mut ram = vec![0u8; 0x1000];
        ram[CRSR_COUPLE] = 0xFF;
        let mut m = AbsoluteMouse::default();
        m.request(300, -2);
        m.apply(&mut ram, false);
        assert_eq!(m.pending(), Some((300, -2)));
        assert_eq!(AbsoluteMouse::cursor(&ram), (0, 0));
        m.apply(&mut ram, true);
        assert_eq!(m.pending(), None);
        assert_eq!(AbsoluteMouse::cursor(&ram), (300, -2));
        // MTemp holds the same point, v before h, and CrsrNew takes CrsrCouple.
        assert_eq!(&ram[MTEMP..MTEMP + 4], &[0xFF, 0xFE, 0x01, 0x2C]);
        assert_eq!(ram[CRSR_NEW], 0xFF);
        // Nothing pending: the globals stay as the system left them.
        ram[RAW_MOUSE + 2..RAW_MOUSE + 4].copy_from_slice(&[0, 7]);
        m.apply(&mut ram, true);
        assert_eq!(AbsoluteMouse::cursor(&ram), (7, -2));
    }

    #[test]
    fn cancel_and_short_memory_never_write() {
        let mut m = AbsoluteMouse::default();
        m.request(1, 1);
        m.cancel();
        let mut ram = vec![0u8; 0x1000];
        m.apply(&mut ram, true);
        assert!(ram.iter().all(|&b| b == 0));
        let mut tiny = vec![0u8; 16];
        m.request(1, 1);
        m.apply(&mut tiny, true);
        assert_eq!(AbsoluteMouse::cursor(&tiny), (0, 0));
    }
}
