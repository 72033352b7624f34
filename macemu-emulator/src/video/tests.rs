use super::*;

/// Reference: the colour of pixel (x, y) straight from the definition of each format.
fn reference_rgb(src: &Source<'_>, palette: &Palette, x: usize, y: usize) -> u32 {
    let row = &src.data[y * src.stride..];
    match src.format {
        SourceFormat::Xrgb8888 => {
            let p = &row[x * 4..x * 4 + 4];
            (u32::from(p[1]) << 16) | (u32::from(p[2]) << 8) | u32::from(p[3])
        }
        SourceFormat::Rgb555 => {
            let v = u16::from_be_bytes([row[x * 2], row[x * 2 + 1]]);
            let five = |c: u16| {
                let c = u32::from(c & 0x1F);
                // 0..31 to 0..255 with 0 -> 0 and 31 -> 255 (top bits repeated below).
                c * 8 + c / 4
            };
            (five(v >> 10) << 16) | (five(v >> 5) << 8) | five(v)
        }
        f => {
            let bpp = f.bits_per_pixel();
            let bit = x * bpp;
            let byte = row[bit / 8];
            let idx = (byte >> (8 - bpp - bit % 8)) & ((1u16 << bpp) - 1) as u8;
            palette.0[usize::from(idx)]
        }
    }
}

fn pixel(dst: &[u8], stride: usize, x: usize, y: usize, order: PixelFormat) -> u32 {
    let p = &dst[y * stride + x * 4..y * stride + x * 4 + 4];
    let (a, r, g, b) = match order {
        PixelFormat::Argb => (p[0], p[1], p[2], p[3]),
        PixelFormat::Bgra => (p[3], p[2], p[1], p[0]),
    };
    assert_eq!(a, 0xFF, "alpha at {x},{y}");
    (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b)
}

/// Deterministic noise without a dependency.
fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 7) as u8
        })
        .collect()
}

fn random_palette() -> Palette {
    let bytes = noise(99, 1024);
    let mut p = [0u32; 256];
    for (i, c) in p.iter_mut().enumerate() {
        *c = u32::from_be_bytes([0, bytes[i * 4], bytes[i * 4 + 1], bytes[i * 4 + 2]]);
    }
    Palette(p)
}

const FORMATS: [SourceFormat; 6] = [
    SourceFormat::Indexed1,
    SourceFormat::Indexed2,
    SourceFormat::Indexed4,
    SourceFormat::Indexed8,
    SourceFormat::Rgb555,
    SourceFormat::Xrgb8888,
];

#[test]
fn every_depth_and_order_matches_the_reference() {
    let palette = random_palette();
    // Odd widths exercise partial bytes; padding in the source stride must be ignored.
    for &(w, h) in &[(512usize, 342usize), (37, 5), (1, 1), (640, 3)] {
        for format in FORMATS {
            let stride = format.row_bytes(w) + 3;
            let data = noise(w as u32 * 7 + format.bits_per_pixel() as u32, stride * h);
            let src = Source {
                data: &data,
                width: w,
                height: h,
                stride,
                format,
            };
            for order in [PixelFormat::Bgra, PixelFormat::Argb] {
                let dst_stride = 7680;
                let mut dst = vec![0u8; dst_stride * h];
                let mut conv = Converter::new();
                let dirty = conv
                    .convert(&src, &palette, order, &mut dst, dst_stride, Scope::Full)
                    .unwrap();
                assert_eq!(
                    dirty,
                    Rect {
                        x: 0,
                        y: 0,
                        width: w as u32,
                        height: h as u32
                    }
                );
                for y in 0..h {
                    for x in 0..w {
                        assert_eq!(
                            pixel(&dst, dst_stride, x, y, order),
                            reference_rgb(&src, &palette, x, y),
                            "{format:?} {order:?} {w}x{h} at {x},{y}"
                        );
                    }
                    // Nothing written past the row.
                    assert!(dst[y * dst_stride + w * 4..(y + 1) * dst_stride]
                        .iter()
                        .all(|&b| b == 0));
                }
            }
        }
    }
}

#[test]
fn mac_plus_mono_bits() {
    let mut screen = vec![0u8; 64 * 342];
    screen[0] = 0x80; // top-left pixel black
    screen[64 * 341 + 63] = 0x01; // bottom-right pixel black
    let mut dst = vec![0u8; 7680 * 342];
    let mut conv = Converter::new();
    conv.convert(
        &Source::mac_plus(&screen),
        &Palette::mono(),
        PixelFormat::Bgra,
        &mut dst,
        7680,
        Scope::Full,
    )
    .unwrap();
    assert_eq!(&dst[0..8], &[0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    let last = 341 * 7680 + 511 * 4;
    assert_eq!(&dst[last..last + 4], &[0, 0, 0, 0xFF]);
    assert_eq!(&dst[last - 4..last], &[0xFF; 4]);
}

#[test]
fn dirty_rect_tracks_changes() {
    let mut screen = vec![0u8; 64 * 342];
    let mut dst = vec![0u8; 7680 * 342];
    let mut conv = Converter::new();
    let pal = Palette::mono();
    let mut run = |screen: &[u8], conv: &mut Converter| {
        conv.convert(
            &Source::mac_plus(screen),
            &pal,
            PixelFormat::Bgra,
            &mut dst,
            7680,
            Scope::Full,
        )
        .unwrap()
    };
    assert_eq!(
        run(&screen, &mut conv).width,
        512,
        "first frame is all dirty"
    );
    assert_eq!(run(&screen, &mut conv), Rect::default());
    // Change pixel (100, 50) and (300, 60): bytes 12 and 37 of rows 50 and 60.
    screen[50 * 64 + 12] ^= 0x08;
    screen[60 * 64 + 37] ^= 0x80;
    let d = run(&screen, &mut conv);
    assert_eq!(
        d,
        Rect {
            x: 96,
            y: 50,
            width: 304 - 96,
            height: 11
        }
    );
    // The rectangle contains both changed pixels.
    for (x, y) in [(100u32, 50u32), (300, 60)] {
        assert!(x >= d.x && x < d.x + d.width && y >= d.y && y < d.y + d.height);
    }
    assert_eq!(run(&screen, &mut conv), Rect::default());
    // Changing back is a change too.
    screen[60 * 64 + 37] ^= 0x80;
    assert_eq!(
        run(&screen, &mut conv),
        Rect {
            x: 296,
            y: 60,
            width: 8,
            height: 1
        }
    );
}

#[test]
fn dirty_rect_in_every_depth_covers_the_changed_pixel() {
    let palette = random_palette();
    for format in FORMATS {
        let (w, h) = (200usize, 40usize);
        let stride = format.row_bytes(w);
        let mut data = noise(5, stride * h);
        let mut dst = vec![0u8; w * 4 * h];
        let mut conv = Converter::new();
        let conv_fn = |data: &[u8], conv: &mut Converter, dst: &mut [u8]| {
            let src = Source {
                data,
                width: w,
                height: h,
                stride,
                format,
            };
            conv.convert(&src, &palette, PixelFormat::Argb, dst, w * 4, Scope::Full)
                .unwrap()
        };
        conv_fn(&data, &mut conv, &mut dst);
        let (px, py) = (123usize, 17usize);
        let bit = px * format.bits_per_pixel();
        data[py * stride + bit / 8] ^= 0x80 >> (bit % 8);
        let d = conv_fn(&data, &mut conv, &mut dst);
        assert_eq!((d.y, d.height), (17, 1), "{format:?}");
        assert!(
            d.x as usize <= px && px < (d.x + d.width) as usize,
            "{format:?} {d:?}"
        );
        // At most one source byte wide.
        assert!(
            d.width as usize <= 8usize.div_ceil(format.bits_per_pixel()).max(1),
            "{d:?}"
        );
    }
}

#[test]
fn palette_or_order_change_makes_everything_dirty() {
    let screen = vec![0u8; 64 * 342];
    let mut dst = vec![0u8; 7680 * 342];
    let mut conv = Converter::new();
    let src = Source::mac_plus(&screen);
    conv.convert(
        &src,
        &Palette::mono(),
        PixelFormat::Bgra,
        &mut dst,
        7680,
        Scope::Full,
    )
    .unwrap();
    let mut inverted = Palette::mono();
    inverted.0[0] = 0;
    inverted.0[1] = 0x00FF_FFFF;
    let d = conv
        .convert(
            &src,
            &inverted,
            PixelFormat::Bgra,
            &mut dst,
            7680,
            Scope::Full,
        )
        .unwrap();
    assert_eq!(d.width, 512);
    assert_eq!(&dst[0..4], &[0, 0, 0, 0xFF], "new palette applied");
    let d = conv
        .convert(
            &src,
            &Palette::grey(1),
            PixelFormat::Argb,
            &mut dst,
            7680,
            Scope::Full,
        )
        .unwrap();
    assert_eq!(d.height, 342);
    conv.invalidate();
    let d = conv
        .convert(
            &src,
            &Palette::grey(1),
            PixelFormat::Argb,
            &mut dst,
            7680,
            Scope::Full,
        )
        .unwrap();
    assert_eq!(d.height, 342);
}

#[test]
fn dirty_only_scope_leaves_the_rest_alone() {
    let mut screen = vec![0u8; 64 * 342];
    let mut dst = vec![0u8; 7680 * 342];
    let mut conv = Converter::new();
    let pal = Palette::mono();
    conv.convert(
        &Source::mac_plus(&screen),
        &pal,
        PixelFormat::Bgra,
        &mut dst,
        7680,
        Scope::Full,
    )
    .unwrap();
    dst[0] = 0x12; // a marker outside the coming dirty rectangle
    screen[200 * 64 + 20] = 0xFF;
    let d = conv
        .convert(
            &Source::mac_plus(&screen),
            &pal,
            PixelFormat::Bgra,
            &mut dst,
            7680,
            Scope::DirtyOnly,
        )
        .unwrap();
    assert_eq!((d.x, d.y, d.width, d.height), (160, 200, 8, 1));
    assert_eq!(dst[0], 0x12);
    assert_eq!(
        &dst[200 * 7680 + 160 * 4..200 * 7680 + 160 * 4 + 4],
        &[0, 0, 0, 0xFF]
    );
}

#[test]
fn bad_geometry_is_an_error_not_a_panic() {
    let mut conv = Converter::new();
    let pal = Palette::mono();
    let mut dst = vec![0u8; 7680 * 342];
    let small = vec![0u8; 100];
    let cases = [
        (Source::mac_plus(&small), 7680usize),
        (
            Source {
                data: &small,
                width: 0,
                height: 1,
                stride: 1,
                format: SourceFormat::Indexed8,
            },
            7680,
        ),
        (
            Source {
                data: &small,
                width: 1921,
                height: 1,
                stride: 1921,
                format: SourceFormat::Indexed8,
            },
            7680,
        ),
        (
            Source {
                data: &small,
                width: 10,
                height: 1,
                stride: 5,
                format: SourceFormat::Indexed8,
            },
            7680,
        ),
        (
            Source {
                data: &small,
                width: 10,
                height: 1,
                stride: 10,
                format: SourceFormat::Indexed8,
            },
            8, // destination stride too short
        ),
    ];
    for (src, stride) in cases {
        assert!(conv
            .convert(&src, &pal, PixelFormat::Bgra, &mut dst, stride, Scope::Full)
            .is_err());
    }
    let err = conv
        .convert(
            &Source::mac_plus(&small),
            &pal,
            PixelFormat::Bgra,
            &mut dst,
            7680,
            Scope::Full,
        )
        .unwrap_err();
    assert!(err.to_string().contains("needs"), "{err}");
}
