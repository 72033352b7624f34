//! Frame conversion cost as a multiple of a `memcpy` of the same output bytes, measured in the
//! same run: `cargo bench -p macemu-emulator --bench video`.
//!
//! For each case: the median time of one `memcpy` of the width x height x 4 output bytes, of a conversion of an
//! unchanged frame (the steady state: compare, find nothing, convert the whole frame for a
//! rotating shm buffer) and of a conversion where every row changed (compare, keep a copy, convert).

use macemu_emulator::video::{Converter, Palette, PixelFormat, Scope, Source, SourceFormat};
use std::hint::black_box;
use std::time::Instant;

const STRIDE: usize = 7680;

fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as u8
        })
        .collect()
}

/// Time per run of `iters` runs of `f`.
fn once(iters: usize, mut f: impl FnMut(usize)) -> f64 {
    let t = Instant::now();
    for i in 0..iters {
        f(i);
    }
    t.elapsed().as_secs_f64() / iters as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn case(name: &str, w: usize, h: usize, format: SourceFormat) {
    let row = format.row_bytes(w);
    let frames = [noise(row * h, 1), noise(row * h, 2)];
    let palette = Palette::grey(format.bits_per_pixel().min(8) as u32);
    let mut dst = vec![0u8; STRIDE * h];
    let out_bytes = w * h * 4;
    let reference = noise(out_bytes, 3);
    let mut copy = vec![0u8; out_bytes];
    let iters = (50_000_000 / out_bytes).clamp(3, 500);
    let rounds = 21;

    let mut conv = Converter::new();
    let src = |i: usize| Source {
        data: &frames[i % 2],
        width: w,
        height: h,
        stride: row,
        format,
    };
    conv.convert(
        &src(0),
        &palette,
        PixelFormat::Bgra,
        &mut dst,
        STRIDE,
        Scope::Full,
    )
    .unwrap();
    // Rounds interleave the three measurements so load from other processes hits them alike;
    // the ratios are taken per round, then the median.
    let (mut t_copy, mut t_same, mut t_diff, mut r_same, mut r_diff) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        // The baseline: one memcpy of the frame's output bytes.
        let c = once(iters, |_| {
            copy.copy_from_slice(black_box(&reference));
            black_box(&copy);
        });
        let same = once(iters, |_| {
            let d = conv
                .convert(
                    &src(0),
                    &palette,
                    PixelFormat::Bgra,
                    &mut dst,
                    STRIDE,
                    Scope::Full,
                )
                .unwrap();
            black_box(d);
        });
        let diff = once(iters, |i| {
            let d = conv
                .convert(
                    &src(i + 1),
                    &palette,
                    PixelFormat::Bgra,
                    &mut dst,
                    STRIDE,
                    Scope::Full,
                )
                .unwrap();
            black_box(d);
        });
        t_copy.push(c);
        t_same.push(same);
        t_diff.push(diff);
        r_same.push(same / c);
        r_diff.push(diff / c);
    }
    println!(
        "{name:<26} memcpy {:>7.1} us | unchanged {:>7.1} us = {:>4.2}x | all changed {:>7.1} us = {:>4.2}x",
        median(t_copy) * 1e6,
        median(t_same) * 1e6,
        median(r_same),
        median(t_diff) * 1e6,
        median(r_diff),
    );
}

fn main() {
    // `cargo test --benches` runs bench targets with --test-ish flags: keep it quick there.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    println!("frame conversion to BGRA (stride 7680) vs memcpy of the output bytes, median of 21 interleaved rounds");
    case("512x342 1 bpp (Mac Plus)", 512, 342, SourceFormat::Indexed1);
    case("1920x1080 1 bpp", 1920, 1080, SourceFormat::Indexed1);
    case("1920x1080 2 bpp", 1920, 1080, SourceFormat::Indexed2);
    case("1920x1080 4 bpp", 1920, 1080, SourceFormat::Indexed4);
    case("1920x1080 8 bpp", 1920, 1080, SourceFormat::Indexed8);
    case("1920x1080 16 bpp", 1920, 1080, SourceFormat::Rgb555);
    case("1920x1080 32 bpp", 1920, 1080, SourceFormat::Xrgb8888);
}
