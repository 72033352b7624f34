//! Interrupt and exception behaviour beyond the single-step vectors: IPL levels and the mask,
//! autovectors, vectored and spurious interrupts, STOP wake-up, TRACE, double fault, line A/F,
//! privilege violation, RESET reaching the bus, bus errors raised by the bus.

use macemu_core::bus::{Bus, BusError, FunctionCode, InterruptAck};
use macemu_core::cpu::{Cpu, CpuModel, RunState};

const CODE: u32 = 0x1000;
const STACK: u32 = 0x8000;
const HANDLERS: u32 = 0x2000;
/// Reading or writing here raises BERR.
const BERR_ADDR: u32 = 0x00F0_0000;

struct TestBus {
    mem: Vec<u8>,
    ipl: u8,
    ack: InterruptAck,
    acks: Vec<u8>,
    resets: u32,
}

impl TestBus {
    /// Vectors 2..=255 point at `HANDLERS + 16 * n`, each holding `BRA *`.
    fn new(ssp: u32, code: &[u16]) -> TestBus {
        let mut b = TestBus {
            mem: vec![0; 0x10000],
            ipl: 0,
            ack: InterruptAck::Autovector,
            acks: vec![],
            resets: 0,
        };
        b.put_long(0, ssp);
        b.put_long(4, CODE);
        for v in 2..256u32 {
            b.put_long(v * 4, HANDLERS + 16 * v);
            b.put_word(HANDLERS + 16 * v, 0x60FE);
        }
        for (i, w) in code.iter().enumerate() {
            b.put_word(CODE + 2 * i as u32, *w);
        }
        b
    }
    fn put_word(&mut self, a: u32, v: u16) {
        self.mem[a as usize..a as usize + 2].copy_from_slice(&v.to_be_bytes());
    }
    fn put_long(&mut self, a: u32, v: u32) {
        self.mem[a as usize..a as usize + 4].copy_from_slice(&v.to_be_bytes());
    }
    fn word(&self, a: u32) -> u16 {
        u16::from_be_bytes([self.mem[a as usize], self.mem[a as usize + 1]])
    }
    fn long(&self, a: u32) -> u32 {
        u32::from(self.word(a)) << 16 | u32::from(self.word(a + 2))
    }
}

impl Bus for TestBus {
    fn read_byte(&mut self, _fc: FunctionCode, addr: u32) -> Result<u8, BusError> {
        if addr >= BERR_ADDR {
            return Err(BusError);
        }
        Ok(self.mem[(addr & 0xFFFF) as usize])
    }
    fn read_word(&mut self, _fc: FunctionCode, addr: u32) -> Result<u16, BusError> {
        if addr >= BERR_ADDR {
            return Err(BusError);
        }
        Ok(self.word(addr & 0xFFFF))
    }
    fn write_byte(&mut self, _fc: FunctionCode, addr: u32, value: u8) -> Result<(), BusError> {
        if addr >= BERR_ADDR {
            return Err(BusError);
        }
        self.mem[(addr & 0xFFFF) as usize] = value;
        Ok(())
    }
    fn write_word(&mut self, _fc: FunctionCode, addr: u32, value: u16) -> Result<(), BusError> {
        if addr >= BERR_ADDR {
            return Err(BusError);
        }
        self.put_word(addr & 0xFFFF, value);
        Ok(())
    }
    fn interrupt_level(&mut self) -> u8 {
        self.ipl
    }
    fn interrupt_ack(&mut self, level: u8) -> InterruptAck {
        self.acks.push(level);
        self.ipl = 0;
        self.ack
    }
    fn reset_devices(&mut self) {
        self.resets += 1;
    }
}

fn handler(vec: u32) -> u32 {
    HANDLERS + 16 * vec
}

/// Resets and steps until the PC reaches `pc` (at most `limit` steps).
fn boot(bus: &mut TestBus) -> Cpu {
    let mut cpu = Cpu::new(CpuModel::M68000);
    cpu.reset(bus);
    assert_eq!(cpu.regs().pc, CODE);
    assert_eq!(cpu.regs().sr, 0x2700);
    assert_eq!(cpu.regs().a[7], STACK);
    cpu
}

fn step_n(cpu: &mut Cpu, bus: &mut TestBus, n: usize) {
    for _ in 0..n {
        cpu.step(bus);
    }
}

/// MOVE #sr,SR then BRA *.
fn idle_loop(sr: u16) -> Vec<u16> {
    vec![0x46FC, sr, 0x60FE]
}

#[test]
fn every_level_above_the_mask_is_taken_through_its_autovector() {
    for level in 1..=7u8 {
        let mut bus = TestBus::new(STACK, &idle_loop(0x2000));
        let mut cpu = boot(&mut bus);
        step_n(&mut cpu, &mut bus, 2);
        assert_eq!(cpu.regs().pc, CODE + 4, "in the loop");
        bus.ipl = level;
        let clocks = cpu.step(&mut bus);
        let r = cpu.regs();
        assert_eq!(r.pc, handler(24 + u32::from(level)), "level {level}");
        assert_eq!(
            r.sr,
            0x2000 | u16::from(level) << 8,
            "mask raised to the level"
        );
        assert_eq!(r.a[7], STACK - 6);
        assert_eq!(bus.word(STACK - 6), 0x2000, "stacked SR");
        assert_eq!(
            bus.long(STACK - 4),
            CODE + 4,
            "stacked PC is the interrupted instruction"
        );
        assert_eq!(bus.acks, vec![level]);
        assert_eq!(clocks, 44, "interrupt entry takes 44 clocks");
    }
}

#[test]
fn the_mask_blocks_equal_and_lower_levels_but_not_nmi() {
    let mut bus = TestBus::new(STACK, &idle_loop(0x2300));
    let mut cpu = boot(&mut bus);
    step_n(&mut cpu, &mut bus, 2);
    for level in 1..=3 {
        bus.ipl = level;
        step_n(&mut cpu, &mut bus, 3);
        assert_eq!(cpu.regs().pc, CODE + 4, "level {level} is masked");
    }
    bus.ipl = 4;
    cpu.step(&mut bus);
    assert_eq!(cpu.regs().pc, handler(28));

    // Level 7 is not maskable: taken with mask 7 on its rising edge.
    let mut bus = TestBus::new(STACK, &idle_loop(0x2700));
    let mut cpu = boot(&mut bus);
    step_n(&mut cpu, &mut bus, 2);
    bus.ipl = 7;
    cpu.step(&mut bus);
    assert_eq!(cpu.regs().pc, handler(31));
    assert_eq!(cpu.regs().sr & 0x0700, 0x0700);
}

#[test]
fn vectored_and_spurious_acknowledges() {
    let mut bus = TestBus::new(STACK, &idle_loop(0x2000));
    bus.ack = InterruptAck::Vector(0x40);
    let mut cpu = boot(&mut bus);
    step_n(&mut cpu, &mut bus, 2);
    bus.ipl = 5;
    cpu.step(&mut bus);
    assert_eq!(cpu.regs().pc, handler(0x40));

    let mut bus = TestBus::new(STACK, &idle_loop(0x2000));
    bus.ack = InterruptAck::Spurious;
    let mut cpu = boot(&mut bus);
    step_n(&mut cpu, &mut bus, 2);
    bus.ipl = 3;
    cpu.step(&mut bus);
    assert_eq!(cpu.regs().pc, handler(24));
}

#[test]
fn stop_waits_and_an_interrupt_resumes_after_it() {
    // STOP #$2000 ; NOP
    let mut bus = TestBus::new(STACK, &[0x4E72, 0x2000, 0x4E71]);
    let mut cpu = boot(&mut bus);
    cpu.step(&mut bus);
    assert_eq!(cpu.run_state(), RunState::Stopped);
    assert_eq!(cpu.regs().sr, 0x2000);
    // Nothing happens while no interrupt is pending; run() returns at once.
    let used = cpu.run(&mut bus, 1000);
    assert!(used <= 8, "a stopped CPU gives its time back ({used})");
    assert_eq!(cpu.run_state(), RunState::Stopped);
    bus.ipl = 2;
    cpu.step(&mut bus);
    assert_eq!(cpu.run_state(), RunState::Running);
    assert_eq!(cpu.regs().pc, handler(26));
    assert_eq!(
        bus.long(STACK - 4),
        CODE + 4,
        "returns to the instruction after STOP"
    );
}

#[test]
fn trace_follows_each_instruction() {
    // MOVE #$A700,SR (T=1) ; NOP ; NOP
    let mut bus = TestBus::new(STACK, &[0x46FC, 0xA700, 0x4E71, 0x4E71]);
    let mut cpu = boot(&mut bus);
    cpu.step(&mut bus); // sets T: no trace for the instruction that set it
    assert_eq!(cpu.regs().pc, CODE + 4);
    cpu.step(&mut bus); // NOP traced
    cpu.step(&mut bus); // trace exception
    let r = cpu.regs();
    assert_eq!(r.pc, handler(9));
    assert_eq!(r.sr & 0x8000, 0, "T cleared in the handler");
    assert_eq!(bus.word(STACK - 6), 0xA700, "stacked SR keeps T");
    assert_eq!(
        bus.long(STACK - 4),
        CODE + 6,
        "stacked PC is the next instruction"
    );
}

#[test]
fn double_fault_halts() {
    // Odd supervisor stack: ILLEGAL's frame causes an address error, whose frame faults again.
    let mut bus = TestBus::new(0x7001, &[0x4AFC]);
    let mut cpu = Cpu::new(CpuModel::M68000);
    cpu.reset(&mut bus);
    cpu.step(&mut bus);
    assert_eq!(cpu.run_state(), RunState::Halted);
    let pc = cpu.regs().pc;
    assert_eq!(cpu.run(&mut bus, 1000), 4, "a halted CPU does nothing");
    assert_eq!(cpu.regs().pc, pc);
    // Reset restarts it.
    bus.put_long(0, STACK);
    cpu.reset(&mut bus);
    assert_eq!(cpu.run_state(), RunState::Running);
}

#[test]
fn line_a_line_f_and_illegal_trap_at_the_instruction() {
    for (op, vec) in [(0xA123u16, 10u32), (0xF000, 11), (0x4AFC, 4), (0x4E74, 4)] {
        let mut bus = TestBus::new(STACK, &[op]);
        let mut cpu = boot(&mut bus);
        cpu.step(&mut bus);
        assert_eq!(cpu.regs().pc, handler(vec), "opcode {op:#06x}");
        assert_eq!(
            bus.long(STACK - 4),
            CODE,
            "stacked PC is the trapping opcode"
        );
        assert_eq!(bus.word(STACK - 6), 0x2700);
    }
}

#[test]
fn privileged_instructions_trap_in_user_mode() {
    // MOVE #0,SR (to user mode) ; MOVE #$2700,SR (privileged now)
    let mut bus = TestBus::new(STACK, &[0x46FC, 0x0000, 0x46FC, 0x2700]);
    let mut cpu = boot(&mut bus);
    {
        let mut r = cpu.regs_mut();
        r.usp = 0x6000;
    }
    cpu.step(&mut bus);
    assert_eq!(cpu.regs().sr & 0x2000, 0);
    assert_eq!(cpu.regs().a[7], 0x6000, "user stack active");
    cpu.step(&mut bus);
    let r = cpu.regs();
    assert_eq!(r.pc, handler(8));
    assert_eq!(r.sr & 0x2000, 0x2000);
    assert_eq!(r.a[7], STACK - 6, "frame on the supervisor stack");
    assert_eq!(bus.long(STACK - 4), CODE + 4);
    assert_eq!(r.usp, 0x6000);
}

#[test]
fn reset_instruction_reaches_the_bus() {
    let mut bus = TestBus::new(STACK, &[0x4E70, 0x4E71]);
    let mut cpu = boot(&mut bus);
    let clocks = cpu.step(&mut bus);
    assert_eq!(bus.resets, 1);
    assert_eq!(clocks, 132);
    assert_eq!(cpu.regs().pc, CODE + 2);
}

#[test]
fn bus_error_from_the_bus_builds_a_group0_frame() {
    // MOVE.W $00F00000,D0
    let mut bus = TestBus::new(STACK, &[0x3039, 0x00F0, 0x0000]);
    let mut cpu = boot(&mut bus);
    cpu.step(&mut bus);
    let r = cpu.regs();
    assert_eq!(r.pc, handler(2));
    assert_eq!(r.a[7], STACK - 14);
    let frame = STACK - 14;
    assert_eq!(
        bus.word(frame) & 0x1F,
        0x15,
        "read, data access, supervisor data"
    );
    assert_eq!(bus.long(frame + 2), BERR_ADDR, "access address");
    assert_eq!(bus.word(frame + 6), 0x3039, "instruction register");
    assert_eq!(bus.word(frame + 8), 0x2700, "SR");
}

#[test]
fn regs_mut_moves_the_pc_and_refills_the_queue() {
    let mut bus = TestBus::new(STACK, &[0x4E71, 0x4E71, 0x7005]); // NOP NOP MOVEQ #5,D0
    let mut cpu = boot(&mut bus);
    cpu.regs_mut().pc = CODE + 4;
    cpu.step(&mut bus);
    assert_eq!(cpu.regs().d[0], 5);
    assert_eq!(cpu.regs().pc, CODE + 6);
}
