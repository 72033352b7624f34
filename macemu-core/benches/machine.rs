//! Criterion benchmark of the whole Mac Plus board. Two workloads: the demo ROM
//! (`roms/demo.rom`) booted to its desk, then 120 frames with a key pressed or released every frame (mostly
//! device events: the ROM sleeps in `STOP` between interrupts), and 60 frames of a CPU-bound loop
//! in RAM (a tiny ROM turns the overlay off and copies it there) that reads, adds and writes RAM,
//! so every bus cycle goes through the board's memory map. Reference in the same run: a copy of
//! 16 MiB.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use macemu_core::mac::MacPlus;

const BOOT_FRAMES: u32 = 120;
const FRAMES: u32 = 120;

fn booted(rom: &[u8]) -> MacPlus {
    let mut mac = MacPlus::new(rom, 4 << 20).expect("demo ROM");
    for _ in 0..BOOT_FRAMES {
        mac.run_frame();
    }
    mac
}

/// Reset vectors, then: overlay off through VIA PA4, a loop written to RAM at 0x1000, a jump to it.
/// The loop: `1000: MOVE.L (A0)+,D1; ADD.L D1,D2; MOVE.L D1,(A1)+; DBRA D0,1000;
/// LEA $4000.W,A0; LEA $6000.W,A1; BRA.S 1000`, entered at the first LEA.
fn ram_loop_rom() -> Vec<u8> {
    let mut words: Vec<u16> = vec![0, 0x0800, 0x0040, 0x0008];
    words.extend([0x13FC, 0x0010, 0x00EF, 0xE7FE]); // MOVE.B #$10,DDRA
    words.extend([0x13FC, 0x0000, 0x00EF, 0xE3FE]); // MOVE.B #0,ORA: overlay off
    let body = [
        0x2218, 0xD481, 0x22C1, 0x51C8, 0xFFF8, 0x41F8, 0x4000, 0x43F8, 0x6000, 0x60EC,
    ];
    for (i, w) in body.iter().enumerate() {
        words.extend([0x31FC, *w, 0x1000 + 2 * i as u16]); // MOVE.W #w,addr.W
    }
    words.extend([0x4EF8, 0x100A]); // JMP $100A.W
    let mut rom: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    rom.resize(128 * 1024, 0);
    rom
}

fn bench(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../roms/demo.rom");
    let rom = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut g = c.benchmark_group("macplus");
    g.sample_size(10);
    g.bench_function("demo ROM, 120 frames typing", |b| {
        b.iter_batched(
            || booted(&rom),
            |mut mac| {
                for i in 0..FRAMES {
                    // 'A' down on even frames, up on odd ones: one glyph every two frames.
                    mac.key(0x00, i % 2 == 0);
                    mac.run_frame();
                }
                mac.cycles()
            },
            BatchSize::LargeInput,
        )
    });
    let loop_rom = ram_loop_rom();
    g.bench_function("RAM loop, 60 frames", |b| {
        b.iter_batched(
            || {
                let mut mac = MacPlus::new(&loop_rom, 4 << 20).expect("loop ROM");
                mac.run_frame();
                mac
            },
            |mut mac| {
                for _ in 0..60 {
                    mac.run_frame();
                }
                assert_eq!(mac.cpu().regs().pc & 0xFFFF_F000, 0x1000, "in the loop");
                mac.cpu().instructions()
            },
            BatchSize::LargeInput,
        )
    });
    let src = vec![0x5Au8; 1 << 24];
    g.bench_function("reference: copy 16 MiB", |b| {
        let mut dst = vec![0u8; 1 << 24];
        b.iter(|| {
            dst.copy_from_slice(&src);
            dst[12345]
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
