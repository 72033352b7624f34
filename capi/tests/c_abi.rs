//! C programs compiled by the system `cc` against include/macemu_ipc.h and libmacemu_ipc.a:
//! the layout seen by C (and C++) against the table in docs/ipc-v4-abi.md, the v4 helpers, a C
//! emulator talking to the Rust `Subscriber`, and a plain v4 reader talking to the Rust
//! `Publisher`.

use ipc::{FrameMeta, InputMessage, PixelFormat, Publisher, Rect, Subscriber};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// `target/<profile>` of this test executable (`target/<profile>/deps/c_abi-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

#[path = "../../macemu-viewer/src/cargo.rs"]
mod cargo;
use cargo::cargo_command;

/// The static library of this profile, built (or brought up to date) by cargo first.
fn static_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = profile_dir();
        let target = dir.parent().expect("target dir");
        let profile = dir
            .file_name()
            .and_then(|s| s.to_str())
            .expect("profile name");
        let mut cmd = cargo_command();
        // `-p macemu-cli` only joins the feature resolution: with it (and its workspace-hack
        // dependency) the library's dependencies get the features `cargo test --workspace` gave
        // them, so they are the ones already built instead of a second build of each.
        cmd.args([
            "build",
            "-q",
            "-p",
            "macemu-capi",
            "-p",
            "macemu-cli",
            "--lib",
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(repo_root());
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            p => {
                cmd.args(["--profile", p]);
            }
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p macemu-capi failed");
        let lib = dir.join("libmacemu_ipc.a");
        assert!(lib.exists(), "{} missing", lib.display());
        lib
    })
}

/// Compiles `sources` (paths or generated text written to a temp file) into an executable.
fn compile(name: &str, source: &Path, cplusplus: bool) -> PathBuf {
    let out_dir = std::env::temp_dir().join(format!("macemu-capi-tests-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(name);
    let compiler = if cplusplus { "c++" } else { "cc" };
    let mut cmd = Command::new(compiler);
    if cplusplus {
        cmd.args(["-x", "c++", "-std=c++17"]);
    } else {
        cmd.arg("-std=c11");
    }
    let out = cmd
        .args([
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wno-unused-parameter",
            "-Wno-missing-field-initializers",
            "-D_GNU_SOURCE",
        ])
        .arg("-I")
        .arg(repo_root().join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(source)
        .args(if cplusplus {
            vec!["-x", "none"]
        } else {
            vec![]
        })
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm"])
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "{compiler} {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn c_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(name)
}

/// Rows of the layout tables: (struct, field, offset, size) and (type, size, align).
/// (struct, field, offset, size) rows and (type, size, align) rows.
type Tables = (
    Vec<(String, String, usize, usize)>,
    Vec<(String, usize, usize)>,
);

fn abi_tables() -> Tables {
    let doc = repo_root().join("../shared/docs/ipc-v4-abi.md");
    let text = std::fs::read_to_string(&doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    let mut fields = Vec::new();
    let mut types = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if !cells[0].starts_with("MacEmu") {
            continue;
        }
        match cells.as_slice() {
            [s, f, o, z] if f.starts_with('`') => fields.push((
                s.to_string(),
                f.trim_matches('`').to_string(),
                o.parse().unwrap(),
                z.parse().unwrap(),
            )),
            [t, z, a] => types.push((t.to_string(), z.parse().unwrap(), a.parse().unwrap())),
            _ => {}
        }
    }
    assert!(
        fields.len() >= 40 && types.len() >= 10,
        "layout tables not found in {}",
        doc.display()
    );
    (fields, types)
}

fn check_layout(cplusplus: bool) {
    let (fields, types) = abi_tables();
    let mut src = String::from(
        "#include \"macemu_ipc.h\"\n#include <stddef.h>\n#include <stdio.h>\n\
         #ifdef __cplusplus\n#define ALIGN(T) alignof(T)\n#else\n#define ALIGN(T) _Alignof(T)\n#endif\n\
         #define F(T, f) printf(\"%s %s %zu %zu\\n\", #T, #f, offsetof(T, f), sizeof(((T *)0)->f));\n\
         #define S(T) printf(\"%s %zu %zu\\n\", #T, sizeof(T), (size_t)ALIGN(T));\nint main(void) {\n",
    );
    for (s, f, _, _) in &fields {
        src += &format!("F({s}, {f})\n");
    }
    for (t, _, _) in &types {
        src += &format!("S({t})\n");
    }
    src += "return 0; }\n";
    let dir = std::env::temp_dir().join(format!("macemu-capi-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(if cplusplus {
        "layout_cpp.c"
    } else {
        "layout.c"
    });
    std::fs::write(&path, src).unwrap();
    let exe = compile(
        if cplusplus { "layout_cpp" } else { "layout" },
        &path,
        cplusplus,
    );
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    for (s, f, o, z) in &fields {
        assert_eq!(
            lines.next().unwrap(),
            format!("{s} {f} {o} {z}"),
            "field {s}.{f}"
        );
    }
    for (t, z, a) in &types {
        assert_eq!(lines.next().unwrap(), format!("{t} {z} {a}"), "type {t}");
    }
}

#[test]
fn c_layout_matches_the_v4_table() {
    check_layout(false);
}

#[test]
fn cplusplus_layout_matches_the_v4_table() {
    check_layout(true);
}

#[test]
fn v4_helpers_behave_as_ipc_protocol_h() {
    let exe = compile("helpers", &c_source("helpers.c"), false);
    let out = Command::new(&exe).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "helpers ok");
}

#[test]
fn c_emulator_with_rust_subscriber() {
    let exe = compile("emulator", &c_source("emulator.c"), false);
    let mut child = Command::new(&exe).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    let pid: u32 = ready
        .strip_prefix("READY ")
        .expect("READY line")
        .parse()
        .unwrap();
    assert_eq!(pid, child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sub = loop {
        match Subscriber::connect(pid) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect: {e}"),
        }
    };
    let sender = sub.sender();
    let mut expect_lines = Vec::new();
    for k in 0..4u8 {
        sender
            .send(&InputMessage::Command(ipc::Command::Start))
            .unwrap();
        expect_lines.push("COMMAND 1".to_string());
        let v = sub
            .wait_frame(Duration::from_secs(5))
            .unwrap()
            .expect("frame from C");
        assert_eq!(
            (v.width, v.height, v.pixel_format),
            (320, 200, PixelFormat::Bgra)
        );
        assert_eq!(
            v.dirty,
            Rect {
                x: 8,
                y: 16,
                width: 32,
                height: 64
            }
        );
        assert_eq!(
            (v.cursor_x, v.cursor_y, v.cursor_visible),
            (100 + k as u16, 50, true)
        );
        for y in [0u32, 99, 199] {
            for (x, px) in v.row(y).chunks_exact(4).enumerate() {
                assert_eq!(
                    px,
                    [k, x as u8, y as u8, 0xFF],
                    "pixel {x},{y} of frame {k}"
                );
            }
        }
        drop(v);
        let a = sub.read_audio().unwrap();
        assert_eq!((a.rate, a.channels, a.silence), (22_050, 2, false));
        let want: Vec<i16> = (0..882).map(|i: i32| (i * 10 - k as i32) as i16).collect();
        assert_eq!(a.samples, want);
    }
    assert!(sub.read_audio().unwrap().silence);
    let msgs = [
        (
            InputMessage::Key {
                keycode: 0x31,
                down: true,
                modifiers: 2,
            },
            "KEY 49 1 2",
        ),
        (
            InputMessage::Mouse {
                x: -3,
                y: 400,
                buttons: 5,
                absolute: true,
                timestamp_ms: 1_700_000_000_123,
            },
            "MOUSE -3 400 5 1 1700000000123",
        ),
        (
            InputMessage::Ping {
                sequence: 9,
                t1_browser_ms: 77,
                t2_server_us: 5,
                t3_emulator_us: 0,
            },
            "PING 9 77 1",
        ),
        (InputMessage::MouseMode(ipc::MouseMode::Relative), "MODE 1"),
        (InputMessage::AudioRequest { samples: 960 }, "AUDIOREQ 960"),
        (InputMessage::Command(ipc::Command::Stop), "COMMAND 2"),
    ];
    sender
        .send_all(&msgs.iter().map(|(m, _)| *m).collect::<Vec<_>>())
        .unwrap();
    expect_lines.extend(msgs.iter().map(|(_, l)| l.to_string()));
    expect_lines.push("BYE".into());
    let got: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(got, expect_lines);
    assert!(child.wait().unwrap().success());
    assert!(
        !Path::new(&format!("/dev/shm/macemu-video-{pid}")).exists(),
        "destroy unlinks the shm"
    );
    assert!(matches!(
        sub.wait_frame(Duration::from_secs(2)),
        Err(ipc::IpcError::EmulatorGone { .. })
    ));
}

#[test]
fn plain_v4_reader_with_rust_publisher() {
    const FRAMES: u32 = 300;
    let exe = compile("v4_reader", &c_source("v4_reader.c"), false);
    let pid = std::process::id();
    let (mut frames, _audio, mut input) = Publisher::create(pid).unwrap().split();
    let reader = Command::new(&exe)
        .args([pid.to_string(), FRAMES.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut published = 0u32;
    // Lock-step: each KEY acknowledgement from the reader carries the first byte of the frame it
    // read; then the next frame is published.
    while published < FRAMES {
        assert!(
            Instant::now() < deadline,
            "v4 reader stalled at {published}"
        );
        match input.recv_timeout(Duration::from_millis(100)).unwrap() {
            Some(InputMessage::Key { keycode, .. }) => {
                assert_eq!(
                    keycode, published as u8,
                    "reader saw the frame just published"
                );
                published += 1;
                let mut f = frames.frame_mut(64, 48, PixelFormat::Bgra).unwrap();
                for y in 0..48 {
                    f.row_mut(y).fill(published as u8);
                }
                frames
                    .publish(&FrameMeta {
                        dirty: Rect::full(64, 48),
                        ..Default::default()
                    })
                    .unwrap();
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    // Last acknowledgement.
    while input
        .recv_timeout(Duration::from_millis(100))
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline);
    }
    let out = reader.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("frames {FRAMES} bad 0")
    );
}
