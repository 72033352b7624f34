//! A flat 16 MiB RAM bus with no devices: the machine of the `cpu68k` benchmark and a simple
//! host for tests and tools.

use crate::bus::{Bus, BusError, FunctionCode};

use super::{Cpu, CpuModel, RunState};

/// 16 MiB of RAM covering the whole 24-bit address space.
pub struct FlatBus {
    mem: Box<[u8; SIZE]>,
}

const SIZE: usize = 1 << 24;

impl FlatBus {
    pub fn new() -> FlatBus {
        let mem: Box<[u8; SIZE]> = vec![0u8; SIZE]
            .into_boxed_slice()
            .try_into()
            .expect("16 MiB");
        FlatBus { mem }
    }

    /// Copies `image` to address 0 (truncated to 16 MiB).
    pub fn load(&mut self, image: &[u8]) {
        let n = image.len().min(SIZE);
        self.mem[..n].copy_from_slice(&image[..n]);
    }

    pub fn memory(&self) -> &[u8] {
        &self.mem[..]
    }
}

impl Default for FlatBus {
    fn default() -> Self {
        FlatBus::new()
    }
}

impl Bus for FlatBus {
    #[inline(always)]
    fn read_byte(&mut self, _fc: FunctionCode, addr: u32) -> Result<u8, BusError> {
        Ok(self.mem[addr as usize & (SIZE - 1)])
    }
    #[inline(always)]
    fn read_word(&mut self, _fc: FunctionCode, addr: u32) -> Result<u16, BusError> {
        let a = addr as usize & (SIZE - 2);
        Ok(u16::from_be_bytes([self.mem[a], self.mem[a + 1]]))
    }
    #[inline(always)]
    fn write_byte(&mut self, _fc: FunctionCode, addr: u32, value: u8) -> Result<(), BusError> {
        self.mem[addr as usize & (SIZE - 1)] = value;
        Ok(())
    }
    #[inline(always)]
    fn write_word(&mut self, _fc: FunctionCode, addr: u32, value: u16) -> Result<(), BusError> {
        let a = addr as usize & (SIZE - 2);
        self.mem[a..a + 2].copy_from_slice(&value.to_be_bytes());
        Ok(())
    }
    fn peek_byte(&self, addr: u32) -> Option<u8> {
        Some(self.mem[addr as usize & (SIZE - 1)])
    }
}

/// Result of running a program until `STOP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopRun {
    pub d0: u32,
    pub instructions: u64,
    pub cycles: u64,
    pub state: RunState,
}

/// Runs `image` (copied to address 0) from reset until the CPU stops or halts, or until
/// `max_cycles` clocks have passed.
pub fn run_until_stop(image: &[u8], max_cycles: u64) -> StopRun {
    let mut bus = FlatBus::new();
    bus.load(image);
    let mut cpu = Cpu::new(CpuModel::M68000);
    cpu.reset(&mut bus);
    let cycles = cpu.run(&mut bus, max_cycles);
    StopRun {
        d0: cpu.regs().d[0],
        instructions: cpu.instructions(),
        cycles,
        state: cpu.run_state(),
    }
}
