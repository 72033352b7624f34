//! The page's Drives panel in a real browser: `macemu-cli emulate` (demo ROM) → `macemu-cli serve
//! --disks DIR` → headless Chromium. A disk image chosen in the panel's file picker is uploaded into
//! the disk folder byte for byte and inserted in the internal floppy drive; the panel shows the drive's
//! state, the Mac reads the disk through its IWM (the demo ROM draws the volume's name, checked in the
//! emulator's own frame), the panel's Eject button empties the drive and the name goes; a file that is
//! not a disk image is refused with a message that names the formats taken, and the drive stays empty.
//! Screenshots go to `target/e2e-drives-*.png`.
//!
//! Needs root (network namespace), `ip`, `curl` and `chromium`; elsewhere it says why and passes.

use macemu_viewer::e2e::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const HTTP_PORT: u16 = 18080;
const SIGNALING_PORT: u16 = 18093;
/// The demo ROM lists inserted disks below its window (roms/demo/desk.c): rows 301..337, where
/// the desktop shows while no disk is in.
const DISK_ROWS: std::ops::Range<usize> = 301..337;

/// Pixels that differ between two frames in the disk list's rows.
fn disk_list_changes(a: &Gray, b: &Gray) -> usize {
    DISK_ROWS
        .flat_map(|y| (0..a.width).map(move |x| (x, y)))
        .filter(|&(x, y)| a.at(x, y) != b.at(x, y))
        .count()
}

/// A 400K MFS floppy named `name`: the volume information block at block 2 (Inside Macintosh II,
/// "Data Organization on Volumes"), an empty directory and block map.
fn mfs_floppy(name: &str) -> Vec<u8> {
    let mut v = vec![0u8; 409_600];
    let m = 1024;
    let put16 = |v: &mut Vec<u8>, o: usize, x: u16| v[o..o + 2].copy_from_slice(&x.to_be_bytes());
    let put32 = |v: &mut Vec<u8>, o: usize, x: u32| v[o..o + 4].copy_from_slice(&x.to_be_bytes());
    let n_alloc = (800 - 16) / 2;
    put16(&mut v, m, 0xD2D7); // drSigWord
    put16(&mut v, m + 0x0E, 4); // drDirSt
    put16(&mut v, m + 0x10, 12); // drBlLen
    put16(&mut v, m + 0x12, n_alloc); // drNmAlBlks
    put32(&mut v, m + 0x14, 1024); // drAlBlkSiz
    put32(&mut v, m + 0x18, 8192); // drClpSiz
    put16(&mut v, m + 0x1C, 16); // drAlBlSt
    put32(&mut v, m + 0x1E, 1); // drNxtFNum
    put16(&mut v, m + 0x22, n_alloc); // drFreeBks
    v[m + 0x24] = name.len() as u8; // drVN
    v[m + 0x25..m + 0x25 + name.len()].copy_from_slice(name.as_bytes());
    v
}

/// The chain, and the folder its `serve --disks` takes images into (removed after the chain stops).
struct Setup {
    chain: Chain,
    disks: TempDir,
}

fn start(cli: &Path) -> Result<Setup> {
    let disks = TempDir::new("e2e-drives-disks")?;
    let chain = Chain::start(
        cli,
        6,
        "e2e-drives",
        HTTP_PORT,
        SIGNALING_PORT,
        &[
            "--disks",
            disks.0.to_str().ok_or("a scratch path that is not UTF-8")?,
        ],
    )?;
    Ok(Setup { chain, disks })
}

/// The panel's line for `drive`: [state, text], or None while it is not shown.
fn panel_line(b: &mut Browser, drive: &str) -> Option<(String, String)> {
    let v = b
        .eval(&format!(
            "(() => {{ const li = document.querySelector('#drives li[data-drive=\"{drive}\"]'); \
             return li ? [li.dataset.state, li.textContent] : null; }})()"
        ))
        .ok()?;
    Some((v[0].as_str()?.to_owned(), v[1].as_str()?.to_owned()))
}

fn message(b: &mut Browser) -> String {
    b.eval("document.getElementById('drives-msg').textContent")
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Chooses `path` in the panel's file picker, as a user would (Chromium fires `change`).
fn choose_file(b: &mut Browser, path: &Path) -> Result<()> {
    let r = b.call(
        "Runtime.evaluate",
        json!({"expression": "document.getElementById('disk-file')"}),
    )?;
    let object = r["result"]["objectId"]
        .as_str()
        .ok_or("the page has no #disk-file picker")?
        .to_owned();
    b.call(
        "DOM.setFileInputFiles",
        json!({"files": [path.to_string_lossy()], "objectId": object}),
    )
    .map(|_| ())
}

fn run(s: &mut Chain, disks: &Path) -> Result<()> {
    let out = target_dir();
    let pid = s.emu.pid();
    let b = &mut s.browser;
    b.navigate(&format!("http://127.0.0.1:{HTTP_PORT}/"))?;

    // 1. Every drive the emulator reported is listed, all empty.
    let listed = wait_for(Duration::from_secs(20), || {
        let v: Value = b
            .eval("[...document.querySelectorAll('#drives li')].map(li => li.dataset.drive + '=' + li.dataset.state)")
            .ok()?;
        let lines: Vec<String> = v
            .as_array()?
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect();
        (lines.len() == 9).then_some(lines)
    })
    .ok_or_else(|| format!("the panel never listed 9 drives: {:?}", panel_line(b, "floppy0")))?;
    if listed.iter().any(|l| !l.ends_with("=empty")) {
        return Err(format!("drives not all empty at start: {listed:?}"));
    }
    let before = emulator_frame(pid)?;

    // 2. Upload through the picker: the file lands in the disk folder byte for byte and goes into
    //    the internal drive.
    let image = mfs_floppy("Dropped Disk");
    let src = s.tmp.0.join("Dropped.dsk");
    std::fs::write(&src, &image).map_err(|e| e.to_string())?;
    choose_file(b, &src)?;
    let line = wait_for(Duration::from_secs(15), || {
        panel_line(b, "floppy0").filter(|(state, _)| state == "inserted")
    })
    .ok_or_else(|| format!("floppy0 never shown inserted; message: {:?}", message(b)))?;
    if !line.1.contains("Dropped.dsk") || !line.1.contains("400 KB") {
        return Err(format!("floppy0's line does not name the image: {line:?}"));
    }
    let landed = std::fs::read(disks.join("Dropped.dsk")).map_err(|e| e.to_string())?;
    if landed != image {
        return Err(format!(
            "the uploaded file differs: {} bytes vs {}",
            landed.len(),
            image.len()
        ));
    }
    eprintln!("panel after upload: {:?} / {:?}", line.1, message(b));

    // 3. The Mac reads the disk through the IWM: the demo ROM draws its volume name.
    let drawn = wait_for(Duration::from_secs(15), || {
        let f = emulator_frame(pid).ok()?;
        let n = disk_list_changes(&before, &f);
        (n > 200).then_some(n)
    })
    .ok_or("the emulator's screen never showed the inserted disk")?;
    eprintln!("{drawn} pixels changed when the disk was read");
    b.screenshot(&out.join("e2e-drives-inserted.png"))?;

    // 4. Eject from the panel: the drive is empty again, in the panel and on the Mac's screen.
    b.eval("document.querySelector('#drives button[data-eject=\"floppy0\"]').click()")?;
    wait_for(Duration::from_secs(10), || {
        panel_line(b, "floppy0").filter(|(state, _)| state == "empty")
    })
    .ok_or_else(|| {
        format!(
            "floppy0 not empty after Eject: {:?}",
            panel_line(b, "floppy0")
        )
    })?;
    wait_for(Duration::from_secs(15), || {
        let f = emulator_frame(pid).ok()?;
        (disk_list_changes(&before, &f) == 0).then_some(())
    })
    .ok_or("the volume name stayed on the emulator's screen after the eject")?;

    // 5. A file that is no disk image: uploaded, refused by the drive with the formats named, and
    //    the drive stays empty; the image the Mac saw is untouched.
    let junk = s.tmp.0.join("notes.img");
    std::fs::write(&junk, vec![0x4Eu8; 1000]).map_err(|e| e.to_string())?;
    choose_file(b, &junk)?;
    let said = wait_for(Duration::from_secs(15), || {
        let m = message(b);
        m.contains("400K").then_some(m)
    })
    .ok_or_else(|| format!("no refusal naming the formats; message: {:?}", message(b)))?;
    eprintln!("refusal shown: {said:?}");
    let still = panel_line(b, "floppy0").map(|l| l.0);
    if still.as_deref() != Some("empty") {
        return Err(format!("floppy0 after a refused insert: {still:?}"));
    }
    let kept = std::fs::read(disks.join("Dropped.dsk")).map_err(|e| e.to_string())?;
    if kept != image {
        return Err("the first image changed".into());
    }
    b.screenshot(&out.join("e2e-drives-refused.png"))?;
    Ok(())
}

#[test]
fn the_drives_panel_uploads_inserts_and_ejects() {
    let Some(cli) = e2e_cli() else { return };
    let _one_at_a_time = exclusive();
    let mut setup = start(&cli).unwrap_or_else(|e| panic!("{e}"));
    let s = &mut setup.chain;
    if let Err(e) = run(s, &setup.disks.0) {
        let _ = s
            .browser
            .screenshot(&target_dir().join("e2e-drives-failure.png"));
        panic!(
            "{e}\n--- serve ---\n{}\n--- emulate ---\n{}",
            s.serve.tail(),
            s.emu.tail()
        );
    }
}
