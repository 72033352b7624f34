//! Per-frame server cost: BGRA → I420, H.264 encode, RTP packetization, and PNG of the dirty
//! rectangle, for a static, a typing and a scrolling screen at four sizes. `memcpy` of the same frame
//! is measured in the same run as the reference. `h264_repeat` is what a static screen's refresh costs
//! instead of an encode: a repeat of the last picture built without the encoder.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use macemu_stream::video::convert::Converter;
use macemu_stream::video::h264::{H264Config, H264Encoder, PictureEncoder};
use macemu_stream::video::png::encode_rect;
use macemu_stream::video::repeat::Repeater;
use macemu_stream::video::rtp::Packetizer;
use macemu_stream::video::{FrameRef, PixelFormat, Rect};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SIZES: [(u32, u32); 4] = [(512, 342), (640, 480), (1024, 768), (1920, 1080)];

#[derive(Clone, Copy, Debug)]
enum Scene {
    Static,
    Typing,
    Scrolling,
}

/// A desktop-like BGRA screen: window chrome and lines of pseudo-text; `scroll` shifts the text up,
/// `typed` glyphs are added on the last line.
struct Screen {
    w: u32,
    h: u32,
    data: Vec<u8>,
}

impl Screen {
    fn new(w: u32, h: u32) -> Self {
        Self {
            w,
            h,
            data: vec![255; (w * h * 4) as usize],
        }
    }

    fn glyph_on(seed: u32, gx: u32, gy: u32) -> bool {
        let mut s = seed.wrapping_mul(2_654_435_761) ^ 0x9E37_79B9;
        s ^= s >> 15;
        (s >> ((gy * 5 + gx) % 29)) & 1 == 1
    }

    fn draw(&mut self, scroll: u32, typed: u32) {
        let w = self.w as usize;
        for y in 0..self.h {
            let line = (y + scroll * 12) / 12;
            let gy = (y + scroll * 12) % 12;
            for x in 0..self.w {
                let o = (y as usize * w + x as usize) * 4;
                let px = if y < 20 {
                    [230, 230, 230, 255]
                } else if x < 8 || x >= self.w - 8 {
                    [120, 120, 120, 255]
                } else {
                    let cell = (x - 8) / 6;
                    let gx = (x - 8) % 6;
                    let len = if y >= self.h - 24 {
                        typed % (self.w / 6 - 4)
                    } else {
                        (line * 37) % (self.w / 6 - 4)
                    };
                    if gy < 7 && gx < 5 && cell < len && Self::glyph_on(line * 1000 + cell, gx, gy)
                    {
                        [0, 0, 0, 255]
                    } else {
                        [255, 255, 255, 255]
                    }
                };
                self.data[o..o + 4].copy_from_slice(&px);
            }
        }
    }

    fn frame(&self) -> FrameRef<'_> {
        FrameRef {
            data: &self.data,
            width: self.w,
            height: self.h,
            stride: self.w as usize * 4,
            format: PixelFormat::Bgra,
        }
    }
}

/// Frames of a scene: (screen contents after step i, dirty rectangle).
fn step(screen: &mut Screen, scene: Scene, i: u32) -> Rect {
    match scene {
        Scene::Static => Rect::default(),
        Scene::Typing => {
            let typed = i % (screen.w / 6 - 4);
            // Redraw only the glyph cell that changed, as an emulator's dirty tracking reports it.
            let (x0, y0) = (8 + typed * 6, screen.h - 24);
            let w = screen.w as usize;
            for gy in 0..7 {
                for gx in 0..5 {
                    let on = Screen::glyph_on(i, gx, gy);
                    let o = ((y0 + gy) as usize * w + (x0 + gx) as usize) * 4;
                    let v = if on { 0 } else { 255 };
                    screen.data[o..o + 3].copy_from_slice(&[v, v, v]);
                }
            }
            Rect::new(x0, y0, 6, 12)
        }
        Scene::Scrolling => {
            screen.draw(i, 0);
            Rect::new(0, 20, screen.w, screen.h - 20)
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for &(w, h) in &SIZES {
        let label = format!("{w}x{h}");
        let mut screen = Screen::new(w, h);
        screen.draw(0, 10);
        let mut dst = vec![0u8; screen.data.len()];
        g.bench_function(BenchmarkId::new("memcpy", &label), |b| {
            b.iter(|| dst.copy_from_slice(black_box(&screen.data)))
        });
        g.bench_function(BenchmarkId::new("convert_full", &label), |b| {
            let mut conv = Converter::new();
            b.iter(|| conv.update(&screen.frame(), Rect::default(), true).unwrap())
        });
        g.bench_function(BenchmarkId::new("png_full", &label), |b| {
            let (mut out, mut rgb) = (Vec::new(), Vec::new());
            b.iter(|| {
                encode_rect(&screen.frame(), Rect::new(0, 0, w, h), &mut out, &mut rgb).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("h264_idr", &label), |b| {
            let mut conv = Converter::new();
            conv.update(&screen.frame(), Rect::default(), true).unwrap();
            let mut enc = H264Encoder::new(H264Config::default());
            let mut t = 0;
            b.iter(|| {
                t += 16;
                enc.encode(conv.picture().unwrap(), true, t).unwrap()
            })
        });
        // What a refresh of a static screen costs the server: a repeat of the last picture built
        // without the encoder, packetized.
        g.bench_function(BenchmarkId::new("h264_repeat", &label), |b| {
            let mut conv = Converter::new();
            conv.update(&screen.frame(), Rect::default(), true).unwrap();
            let mut enc = H264Encoder::new(H264Config::default());
            let mut rep = Repeater::new();
            let idr = enc
                .encode(conv.picture().unwrap(), true, 0)
                .unwrap()
                .unwrap();
            rep.pass(&idr.data).unwrap();
            let mut pay = Packetizer::new(0);
            b.iter(|| {
                let r = rep.repeat().expect("the encoder's stream is repeatable");
                black_box(pay.packetize(&r, 0).len())
            })
        });
        for scene in [Scene::Static, Scene::Typing, Scene::Scrolling] {
            let id = format!("{label}/{scene:?}").to_lowercase();
            // The whole per-frame path: convert the dirty rows, encode, packetize for RTP.
            g.bench_function(BenchmarkId::new("h264_pipeline", &id), |b| {
                let mut screen = Screen::new(w, h);
                screen.draw(0, 10);
                let mut conv = Converter::new();
                conv.update(&screen.frame(), Rect::default(), true).unwrap();
                let mut enc = H264Encoder::new(H264Config::default());
                enc.encode(conv.picture().unwrap(), true, 0).unwrap();
                let mut pay = Packetizer::new(0);
                let mut i = 0;
                b.iter(|| {
                    i += 1;
                    let dirty = step(&mut screen, scene, i);
                    conv.update(&screen.frame(), dirty, false).unwrap();
                    let f = enc
                        .encode(conv.picture().unwrap(), false, i as u64 * 16)
                        .unwrap()
                        .unwrap();
                    black_box(pay.packetize(&f.data, i.wrapping_mul(1500)).len())
                })
            });
            // The parts of the pipeline, each timed alone (iter_custom excludes the scene update).
            g.bench_function(BenchmarkId::new("convert_dirty", &id), |b| {
                let mut screen = Screen::new(w, h);
                screen.draw(0, 10);
                let mut conv = Converter::new();
                conv.update(&screen.frame(), Rect::default(), true).unwrap();
                let mut i = 0;
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        i += 1;
                        let dirty = step(&mut screen, scene, i);
                        let t = Instant::now();
                        conv.update(&screen.frame(), dirty, false).unwrap();
                        total += t.elapsed();
                    }
                    total
                })
            });
            g.bench_function(BenchmarkId::new("h264_encode", &id), |b| {
                let mut screen = Screen::new(w, h);
                screen.draw(0, 10);
                let mut conv = Converter::new();
                conv.update(&screen.frame(), Rect::default(), true).unwrap();
                let mut enc = H264Encoder::new(H264Config::default());
                enc.encode(conv.picture().unwrap(), true, 0).unwrap();
                let mut i = 0;
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        i += 1;
                        let dirty = step(&mut screen, scene, i);
                        conv.update(&screen.frame(), dirty, false).unwrap();
                        let t = Instant::now();
                        black_box(
                            enc.encode(conv.picture().unwrap(), false, i as u64 * 16)
                                .unwrap(),
                        );
                        total += t.elapsed();
                    }
                    total
                })
            });
            g.bench_function(BenchmarkId::new("packetize", &id), |b| {
                let mut screen = Screen::new(w, h);
                screen.draw(0, 10);
                let mut conv = Converter::new();
                conv.update(&screen.frame(), Rect::default(), true).unwrap();
                let mut enc = H264Encoder::new(H264Config::default());
                enc.encode(conv.picture().unwrap(), true, 0).unwrap();
                let dirty = step(&mut screen, scene, 1);
                conv.update(&screen.frame(), dirty, false).unwrap();
                let au: Bytes = enc
                    .encode(conv.picture().unwrap(), false, 16)
                    .unwrap()
                    .unwrap()
                    .data;
                let mut pay = Packetizer::new(0);
                b.iter(|| black_box(pay.packetize(&au, 0).len()))
            });
            g.bench_function(BenchmarkId::new("png_dirty", &id), |b| {
                let mut screen = Screen::new(w, h);
                screen.draw(0, 10);
                let (mut out, mut rgb) = (Vec::new(), Vec::new());
                let mut i = 0;
                b.iter(|| {
                    i += 1;
                    let dirty = step(&mut screen, scene, i);
                    if !dirty.is_empty() {
                        encode_rect(&screen.frame(), dirty, &mut out, &mut rgb).unwrap();
                    }
                    black_box(out.len())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
