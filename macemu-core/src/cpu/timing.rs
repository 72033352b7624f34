//! Data-dependent internal clock counts (beyond bus cycles) of the multiply and divide
//! instructions, following the 68000's microcode loops.

/// MULU: 38 + 2 per set bit of the source, minus the 4-clock prefetch counted as a bus cycle.
#[inline]
pub(crate) fn mulu(src: u16) -> u32 {
    34 + 2 * src.count_ones()
}

/// MULS: 38 + 2 per 01/10 transition in the source (with a 0 appended below bit 0).
#[inline]
pub(crate) fn muls(src: u16) -> u32 {
    let s = u32::from(src) << 1;
    34 + 2 * ((s ^ (s >> 1)) & 0xFFFF).count_ones()
}

/// DIVU internal clocks (excluding the final prefetch).
pub(crate) fn divu(dividend: u32, divisor: u16) -> u32 {
    let divisor = u32::from(divisor);
    if (dividend >> 16) >= divisor {
        return 10 - 4;
    }
    let mut mcycles = 38u32;
    let hdivisor = divisor << 16;
    let mut dividend = dividend;
    for _ in 0..15 {
        let temp = dividend;
        dividend <<= 1;
        if (temp as i32) < 0 {
            dividend = dividend.wrapping_sub(hdivisor);
        } else if dividend >= hdivisor {
            dividend -= hdivisor;
            mcycles += 1;
        } else {
            mcycles += 2;
        }
    }
    mcycles * 2 - 4
}

/// DIVS internal clocks (excluding the final prefetch).
pub(crate) fn divs(dividend: i32, divisor: i16) -> u32 {
    let mut mcycles = 6u32;
    if dividend < 0 {
        mcycles += 1;
    }
    let adividend = dividend.unsigned_abs();
    let adivisor = u32::from(divisor.unsigned_abs());
    if (adividend >> 16) >= adivisor {
        return (mcycles + 2) * 2 - 4;
    }
    let mut aquot = adividend / adivisor;
    mcycles += 55;
    if divisor >= 0 {
        if dividend >= 0 {
            mcycles -= 1;
        } else {
            mcycles += 1;
        }
    }
    for _ in 0..15 {
        if (aquot as i16) >= 0 {
            mcycles += 1;
        }
        aquot <<= 1;
    }
    mcycles * 2 - 4
}
