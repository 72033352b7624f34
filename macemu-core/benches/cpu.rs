//! Criterion benchmark of the 68000 core on the cpu68k workload (../shared/bench/cpu68k):
//! a fixed slice of 20 million clocks from reset, and a copy of the same 16 MiB memory image
//! as the reference measured in the same run.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use macemu_core::cpu::flat::FlatBus;
use macemu_core::cpu::{Cpu, CpuModel};

const CLOCKS: u64 = 20_000_000;

fn image() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/bench/cpu68k/cpu68k.bin"
    );
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bench(c: &mut Criterion) {
    let image = image();
    let mut g = c.benchmark_group("cpu68k");
    g.sample_size(10);
    g.bench_function("m68000 20M clocks", |b| {
        b.iter_batched(
            || {
                let mut bus = FlatBus::new();
                bus.load(&image);
                bus
            },
            |mut bus| {
                let mut cpu = Cpu::new(CpuModel::M68000);
                cpu.reset(&mut bus);
                let used = cpu.run(&mut bus, CLOCKS);
                (used, cpu.instructions())
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
