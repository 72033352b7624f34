//! The whole chain in a real browser: `macemu-cli emulate` (demo ROM) → `macemu-cli serve` → headless
//! Chromium on the client page. Asserts, against the emulator's own frame in shared memory:
//! H.264 frames decoded (getStats), the decoded picture matches the emulator's screen, a click on the
//! demo's button and a typed key sent through the page change the emulator's picture and reach the
//! browser, the button's tone arrives as audio, PNG mode shows the screen losslessly, and the page
//! shows a clear status once the emulator stops. Screenshots go to `target/e2e-chromium-*.png`.
//!
//! Needs root (network namespace), `ip`, `curl` and `chromium`; elsewhere it says why and passes.

use macemu_viewer::e2e::*;
use std::time::{Duration, Instant};

const HTTP_PORT: u16 = 18080;
const SIGNALING_PORT: u16 = 18091;

// The demo ROM's layout (roms/demo/desk.c): the "Beep" button and the echo area for typed keys.
const BTN: (usize, usize, usize, usize) = (376, 264, 64, 22);
const ECHO: (usize, usize, usize, usize) = (66, 110, 380, 96);
// Where the first typed characters land (the echo area's first line).
const FIRST_LINE: (usize, usize, usize, usize) = (68, 112, 64, 14);

fn in_rect(x: usize, y: usize, r: (usize, usize, usize, usize)) -> bool {
    x >= r.0 && x < r.0 + r.2 && y >= r.1 && y < r.1 + r.3
}

/// Changed pixels inside `r` between two pictures (the cursor's 16×16 box at `cursor` excluded).
fn changed_in(
    a: &Gray,
    b: &Gray,
    r: (usize, usize, usize, usize),
    cursor: (usize, usize),
) -> usize {
    let mut n = 0;
    for y in r.1..r.1 + r.3 {
        for x in r.0..r.0 + r.2 {
            let under_cursor = in_rect(
                x,
                y,
                (
                    cursor.0.saturating_sub(1),
                    cursor.1.saturating_sub(1),
                    18,
                    18,
                ),
            );
            if !under_cursor && a.at(x, y) != b.at(x, y) {
                n += 1;
            }
        }
    }
    n
}

/// Changed pixels inside `r` that are not in `mask`.
fn changed_in_masked(a: &Gray, b: &Gray, r: (usize, usize, usize, usize), mask: &[bool]) -> usize {
    let mut n = 0;
    for y in r.1..r.1 + r.3 {
        for x in r.0..r.0 + r.2 {
            if !mask[y * a.width + x] && a.at(x, y) != b.at(x, y) {
                n += 1;
            }
        }
    }
    n
}

/// Sum of absolute grey differences inside `r`.
fn sad_in(a: &Gray, b: &Gray, r: (usize, usize, usize, usize)) -> u64 {
    let mut sum = 0u64;
    for y in r.1..r.1 + r.3 {
        for x in r.0..r.0 + r.2 {
            sum += a.at(x, y).abs_diff(b.at(x, y)) as u64;
        }
    }
    sum
}

/// How well the page's picture matches the emulator's: share of 4×4 blocks whose mean grey differs by
/// more than 40 levels (codec blur of the 1-bit dither averages out within a block).
fn block_mismatch(page: &Gray, emu: &Gray) -> f64 {
    page.blocks(4).diff_share(&emu.blocks(4), 40)
}

fn start(cli: &std::path::Path) -> Result<Chain> {
    Chain::start(
        cli,
        1,
        "e2e-chromium",
        HTTP_PORT,
        SIGNALING_PORT,
        &["--codec", "h264"],
    )
}

/// Viewport point (CSS px) of frame pixel (x, y) on the given element.
fn screen_point(b: &mut Browser, selector: &str, x: usize, y: usize) -> Result<(f64, f64)> {
    let r = b.eval(&format!(
        "(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect(); \
         return [r.left, r.top, r.width, r.height]; }})()"
    ))?;
    let f = |i: usize| r[i].as_f64().unwrap_or(0.0);
    let (w, h) = (512.0, 342.0);
    Ok((
        f(0) + (x as f64 + 0.5) * f(2) / w,
        f(1) + (y as f64 + 0.5) * f(3) / h,
    ))
}

fn mouse(b: &mut Browser, ty: &str, x: f64, y: f64) -> Result<()> {
    let buttons = if ty == "mousePressed" { 1 } else { 0 };
    b.call(
        "Input.dispatchMouseEvent",
        serde_json::json!({"type": ty, "x": x, "y": y, "button": "left", "buttons": buttons, "clickCount": 1}),
    )
    .map(|_| ())
}

fn run(s: &mut Chain) -> Result<()> {
    let out = target_dir();
    let pid = s.emu.pid();
    let b = &mut s.browser;
    b.navigate(&format!("http://127.0.0.1:{HTTP_PORT}/"))?;

    // 1. H.264 frames decoded, at the emulator's size.
    let stats = wait_for(Duration::from_secs(30), || {
        b.rtp_stats().ok().filter(|st| st.frames_decoded >= 10)
    });
    let stats = stats.ok_or_else(|| {
        format!(
            "fewer than 10 H.264 frames decoded in 30 s: {:?}",
            b.rtp_stats()
        )
    })?;
    if !stats.codec.to_lowercase().contains("h264") || (stats.width, stats.height) != (512, 342) {
        return Err(format!("expected H.264 at 512x342, got {stats:?}"));
    }

    // 1b. Zero playout delay is negotiated: the server's offer carries the RTP header extension
    // and Chromium's answer accepts it, so every video packet asks it to show frames at once.
    let sdp = b.eval(
        "(() => { const pc = window.__pcs[window.__pcs.length - 1]; \
           return [pc.remoteDescription.sdp, pc.localDescription.sdp]; })()",
    )?;
    for (side, text) in ["server offer", "Chromium answer"].iter().zip(0..2) {
        let sdp = sdp[text].as_str().unwrap_or_default();
        if !sdp.contains(macemu_stream::video::rtp::PLAYOUT_DELAY_URI) {
            return Err(format!(
                "the {side} lacks the playout-delay extension:\n{sdp}"
            ));
        }
    }
    let jitter = b.eval(
        "(async () => { let j = null; for (const pc of window.__pcs) (await pc.getStats()).forEach(r => { \
           if (r.type === 'inbound-rtp' && r.kind === 'video' && r.jitterBufferEmittedCount) \
             j = 1000 * r.jitterBufferDelay / r.jitterBufferEmittedCount; }); return j; })()",
    )?;
    eprintln!("playout delay 0 negotiated; mean jitter buffer {jitter} ms");

    // 2. The decoded picture is the emulator's screen.
    let emu = emulator_frame(pid)?;
    if emu.levels() < 2 {
        return Err("the emulator's frame is blank".into());
    }
    let picture_matches = |b: &mut Browser, png: bool| -> Result<(Gray, Gray, f64)> {
        let mut last = None;
        for _ in 0..20 {
            let page = page_picture(b, png)?;
            let emu = emulator_frame(pid)?;
            let m = if png {
                page.diff_share(&emu, 0)
            } else {
                block_mismatch(&page, &emu)
            };
            // PNG is lossless: only what changed between the two reads may differ (clock, caret).
            if m < if png { 0.005 } else { 0.02 } {
                return Ok((page, emu, m));
            }
            last = Some((page, emu, m));
            std::thread::sleep(Duration::from_millis(200));
        }
        let (page, emu, m) = last.expect("at least one try");
        let _ = page.save_png(&out.join("e2e-chromium-page.png"));
        let _ = emu.save_png(&out.join("e2e-chromium-emulator.png"));
        Err(format!(
            "page and emulator pictures differ in {:.1} % (see target/e2e-chromium-*.png)",
            m * 100.0
        ))
    };
    let (_, _, m) = picture_matches(b, false)?;
    eprintln!(
        "H.264: {} frames decoded; picture mismatch {:.2} % of blocks",
        stats.frames_decoded,
        m * 100.0
    );

    // 3. A click on the Beep button through the page: the button inverts while held and a tone plays.
    let before = emulator_frame(pid)?;
    let energy_before = b.rtp_stats()?.audio_energy;
    std::thread::sleep(Duration::from_millis(1500));
    let quiet_energy = b.rtp_stats()?.audio_energy - energy_before;
    let (bx, by) = (BTN.0 + BTN.2 / 2, BTN.1 + BTN.3 / 2);
    let (cx, cy) = screen_point(b, "video", bx, by)?;
    mouse(b, "mouseMoved", cx, cy)?;
    std::thread::sleep(Duration::from_millis(200));
    let audio_at_click = b.rtp_stats()?;
    mouse(b, "mousePressed", cx, cy)?;
    let pressed = wait_for(Duration::from_secs(3), || {
        let f = emulator_frame(pid).ok()?;
        (changed_in(&before, &f, BTN, (bx, by)) > 300).then_some(f)
    });
    mouse(b, "mouseReleased", cx, cy)?;
    if pressed.is_none() {
        return Err(
            "clicking the page's screen on the Beep button did not invert it in the emulator"
                .into(),
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    let audio_after = b.rtp_stats()?;
    let tone_energy = audio_after.audio_energy - audio_at_click.audio_energy;
    eprintln!(
        "audio: {} samples received; energy over 1.5 s: {quiet_energy:.4} quiet, {tone_energy:.4} with the tone",
        audio_after.audio_samples
    );
    if audio_after.audio_samples <= audio_at_click.audio_samples {
        return Err(format!("no audio samples arrive: {audio_after:?}"));
    }
    if tone_energy <= quiet_energy * 2.0 + 1e-4 {
        return Err(format!(
            "the tone did not reach the browser: energy {tone_energy} vs {quiet_energy} quiet"
        ));
    }

    // 4. Keys typed into the page appear in the emulator's echo area, one by one, then in the browser.
    let before_typing = emulator_frame(pid)?;
    for (code, key) in [(72, "h"), (73, "i"), (77, "m"), (87, "w")] {
        // The caret blinks where the next character goes: learn it before each key.
        let restless = restless_mask(pid, Duration::from_millis(800))?;
        let before = emulator_frame(pid)?;
        b.key(code, key)?;
        wait_for(Duration::from_secs(3), || {
            let f = emulator_frame(pid).ok()?;
            (changed_in_masked(&before, &f, ECHO, &restless) > 4).then_some(())
        })
        .ok_or_else(|| {
            format!("key {key:?} typed into the page did not reach the emulator's echo area")
        })?;
    }
    // Where the characters went, the browser's picture becomes the new one, not the old (the video
    // may trail the emulator by a few frames).
    let mut last = (0, 0);
    let shown = wait_for(Duration::from_secs(5), || {
        let page = page_picture(b, false).ok()?;
        let emu = emulator_frame(pid).ok()?;
        let to_new = sad_in(&page, &emu, FIRST_LINE);
        let to_old = sad_in(&page, &before_typing, FIRST_LINE);
        last = (to_new, to_old);
        (to_old >= 2 * to_new + 2000).then_some(())
    });
    let (to_new, to_old) = last;
    eprintln!("typed line: grey difference {to_new} to the emulator's frame, {to_old} to the one before typing");
    if shown.is_none() {
        return Err(format!(
            "the browser's picture does not show the typed keys ({to_new} vs {to_old})"
        ));
    }
    picture_matches(b, false)?;
    b.screenshot(&out.join("e2e-chromium-h264.png"))?;

    // 5. PNG mode, switched from the page's own control: the canvas equals the emulator's frame.
    b.eval("(() => { const s = document.getElementById('codec'); s.value = 'png'; s.dispatchEvent(new Event('change')); })()")?;
    let png_ready = wait_for(Duration::from_secs(15), || {
        let st = b
            .eval("document.getElementById('screen').dataset.codec")
            .ok()?;
        (st == "png").then_some(())?;
        page_picture(b, true).ok().filter(|p| p.levels() > 1)
    });
    if png_ready.is_none() {
        return Err(format!("PNG mode did not come up:\n{}", s.serve.tail()));
    }
    let (_, _, m) = picture_matches(b, true)?;
    eprintln!(
        "PNG: canvas differs from the emulator's frame in {:.3} % of pixels",
        m * 100.0
    );
    // Typing works there too, and the canvas follows.
    let before = emulator_frame(pid)?;
    b.key(74, "j")?;
    wait_for(Duration::from_secs(3), || {
        let f = emulator_frame(pid).ok()?;
        (changed_in(&before, &f, ECHO, (bx, by)) > 0).then_some(())
    })
    .ok_or("a key typed in PNG mode did not reach the emulator")?;
    picture_matches(b, true)?;
    b.screenshot(&out.join("e2e-chromium-png.png"))?;

    // 6. The emulator stops: the page says so.
    s.emu.stop(Duration::from_secs(3));
    let t0 = Instant::now();
    let shown = wait_for(Duration::from_secs(8), || {
        let v = b
            .eval("[document.getElementById('status').dataset.state, document.getElementById('status-text').textContent]")
            .ok()?;
        (v[0] == "emulator-stopped").then(|| v[1].as_str().unwrap_or("").to_owned())
    });
    let text =
        shown.ok_or_else(|| format!("the page shows no stopped status:\n{}", s.serve.tail()))?;
    eprintln!(
        "stopped status after {:.1} s: {text:?}",
        t0.elapsed().as_secs_f64()
    );
    b.screenshot(&out.join("e2e-chromium-stopped.png"))?;
    Ok(())
}

#[test]
fn browser_plays_the_stream() {
    let Some(cli) = e2e_cli() else { return };
    let _one_at_a_time = exclusive();
    let mut s = match start(&cli) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let r = run(&mut s);
    if let Err(e) = r {
        let _ = s
            .browser
            .screenshot(&target_dir().join("e2e-chromium-failure.png"));
        // Keep the whole logs for a person to read (the scratch directory goes away).
        let logs = target_dir().join("e2e-chromium-logs");
        let _ = std::fs::create_dir_all(&logs);
        for p in [&s.serve.log, &s.emu.log] {
            if let Some(name) = p.file_name() {
                let _ = std::fs::copy(p, logs.join(name));
            }
        }
        panic!(
            "{e}\n--- serve ---\n{}\n--- emulate ---\n{}",
            s.serve.tail(),
            s.emu.tail()
        );
    }
}
