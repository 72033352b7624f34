//! What input messages do to the machine: a pure mapping, tested without sockets or threads.
//!
//! Faults of the original fixed here: a key release never re-types the key (down and up are
//! distinct transitions), the mouse mode persists until a MOUSE_MODE message changes it, and the
//! mouse button reports transitions only.

use macemu_core::machine::Machine;
use macemu_ipc::{Command, EmulatorState, InputMessage, MouseMode};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where the control thread sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Keys, mouse, mouse mode and commands: to the 68k thread, as they came.
    Machine,
    /// An AUDIO_REQUEST for this many samples (at the server's rate).
    Audio(u32),
    /// Fully handled by the IPC layer (pings: t3 is stored and echoed with the next frame).
    Handled,
}

pub fn route(msg: &InputMessage) -> Route {
    match *msg {
        InputMessage::Key { .. }
        | InputMessage::Mouse { .. }
        | InputMessage::Command(_)
        | InputMessage::MouseMode(_) => Route::Machine,
        InputMessage::AudioRequest { samples } => Route::Audio(samples),
        InputMessage::Ping { .. } => Route::Handled,
    }
}

/// The machine operations input needs (every [`Machine`] has them; tests use a recorder).
pub trait MachineInput {
    fn key(&mut self, keycode: u8, down: bool) -> bool;
    fn release_all_keys(&mut self);
    fn mouse_relative(&mut self, dx: i32, dy: i32);
    fn mouse_absolute(&mut self, x: i16, y: i16);
    fn mouse_button(&mut self, down: bool);
    fn reset(&mut self);
    /// Where the system shows the cursor now (x, y).
    fn cursor(&self) -> (i16, i16);
}

impl<M: Machine + ?Sized> MachineInput for M {
    fn key(&mut self, keycode: u8, down: bool) -> bool {
        Machine::key(self, keycode, down)
    }
    fn release_all_keys(&mut self) {
        Machine::release_all_keys(self)
    }
    fn mouse_relative(&mut self, dx: i32, dy: i32) {
        Machine::mouse_relative(self, dx, dy)
    }
    fn mouse_absolute(&mut self, x: i16, y: i16) {
        if !Machine::mouse_absolute(self, x, y) {
            tracing::debug!(
                x,
                y,
                "absolute mouse ignored: the machine has no OS helpers on"
            );
        }
    }
    fn mouse_button(&mut self, down: bool) {
        Machine::mouse_button(self, down)
    }
    fn reset(&mut self) {
        Machine::reset(self)
    }
    fn cursor(&self) -> (i16, i16) {
        self.cursor_position().unwrap_or((0, 0))
    }
}

/// Mouse state kept across messages.
#[derive(Clone, Copy, Debug, Default)]
pub struct MouseState {
    pub mode: MouseModeState,
    pub button_down: bool,
    /// Where absolute mode last put the cursor, to apply relative deltas to in absolute mode;
    /// `None` when something else moved it since (relative mode, a mode switch, a reset), so
    /// the next delta starts from the machine's own cursor.
    pub pos: Option<(i16, i16)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MouseModeState {
    #[default]
    Absolute,
    Relative,
}

/// Applies one message that [`route`] sends to the machine (others do nothing here). Commands
/// change `state`: START powers a stopped machine on (reset) and runs
/// it, STOP stops it, RESET resets and keeps the state, PAUSE/RESUME hold and continue.
pub fn apply<M: MachineInput + ?Sized>(
    msg: &InputMessage,
    mac: &mut M,
    mouse: &mut MouseState,
    state: &AtomicU32,
) {
    let set = |s: EmulatorState| state.store(s as u32, Ordering::SeqCst);
    let current =
        EmulatorState::from_u32(state.load(Ordering::SeqCst)).unwrap_or(EmulatorState::Stopped);
    match *msg {
        InputMessage::Key { keycode, down, .. } => {
            if !mac.key(keycode, down) {
                tracing::debug!(
                    keycode,
                    down,
                    "key ignored (no such key on this keyboard, or no change)"
                );
            }
        }
        InputMessage::MouseMode(m) => {
            mouse.pos = None;
            mouse.mode = match m {
                MouseMode::Absolute => MouseModeState::Absolute,
                MouseMode::Relative => MouseModeState::Relative,
            };
        }
        InputMessage::Mouse {
            x,
            y,
            buttons,
            absolute,
            ..
        } => {
            if absolute {
                mouse.pos = Some((x, y));
                mac.mouse_absolute(x, y);
            } else if mouse.mode == MouseModeState::Absolute {
                // Deltas while the browser tracks an absolute cursor: keep the two in step,
                // starting from where the cursor is. The position is kept here rather than
                // read back each time, as the system moves the cursor only at the next VBL.
                let (px, py) = mouse.pos.unwrap_or_else(|| mac.cursor());
                let pos = (px.saturating_add(x), py.saturating_add(y));
                mouse.pos = Some(pos);
                mac.mouse_absolute(pos.0, pos.1);
            } else if x != 0 || y != 0 {
                mouse.pos = None;
                mac.mouse_relative(i32::from(x), i32::from(y));
            }
            let down = buttons & 0x07 != 0;
            if down != mouse.button_down {
                mouse.button_down = down;
                mac.mouse_button(down);
            }
        }
        InputMessage::Command(c) => match c {
            Command::Start => {
                if current == EmulatorState::Stopped {
                    mouse.pos = None;
                    mac.reset();
                }
                set(EmulatorState::Running);
            }
            Command::Stop => {
                mac.release_all_keys();
                set(EmulatorState::Stopped);
            }
            Command::Reset => {
                mouse.pos = None;
                mac.release_all_keys();
                mac.reset();
            }
            Command::Pause => {
                if current == EmulatorState::Running {
                    set(EmulatorState::Paused);
                }
            }
            Command::Resume => {
                if current == EmulatorState::Paused {
                    set(EmulatorState::Running);
                }
            }
        },
        InputMessage::AudioRequest { .. } | InputMessage::Ping { .. } => {}
    }
}

/// Mouse input latency: server-stamped time of a mouse message to its arrival here.
#[derive(Debug, Default)]
pub struct LatencyStats {
    avg_tenths_ms: f64,
    samples: u32,
}

impl LatencyStats {
    /// Updates with a message; returns (average in tenths of ms, samples) after a mouse message.
    pub fn observe(&mut self, msg: &InputMessage) -> Option<(u32, u32)> {
        let InputMessage::Mouse { timestamp_ms, .. } = *msg else {
            return None;
        };
        let now_ms = macemu_ipc::realtime_us() / 1000;
        // Only plausible stamps (0–10 s old): senders that put other clocks here are ignored.
        let age = now_ms.checked_sub(timestamp_ms).filter(|&a| a <= 10_000)?;
        let sample = age as f64 * 10.0;
        self.samples = self.samples.saturating_add(1);
        let weight = 1.0 / f64::from(self.samples.min(32));
        self.avg_tenths_ms += (sample - self.avg_tenths_ms) * weight;
        Some((self.avg_tenths_ms.round() as u32, self.samples))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs calls; its cursor sits at `.1`.
    #[derive(Default)]
    struct Recorder(Vec<String>, (i16, i16));

    impl MachineInput for Recorder {
        fn key(&mut self, keycode: u8, down: bool) -> bool {
            self.0.push(format!("key {keycode} {down}"));
            true
        }
        fn release_all_keys(&mut self) {
            self.0.push("release all".into());
        }
        fn mouse_relative(&mut self, dx: i32, dy: i32) {
            self.0.push(format!("rel {dx} {dy}"));
        }
        fn mouse_absolute(&mut self, x: i16, y: i16) {
            self.0.push(format!("abs {x} {y}"));
        }
        fn mouse_button(&mut self, down: bool) {
            self.0.push(format!("button {down}"));
        }
        fn reset(&mut self) {
            self.0.push("reset".into());
        }
        fn cursor(&self) -> (i16, i16) {
            self.1
        }
    }

    fn key(keycode: u8, down: bool) -> InputMessage {
        InputMessage::Key {
            keycode,
            down,
            modifiers: 0,
        }
    }

    fn run(events: &[InputMessage], state: EmulatorState) -> (Vec<String>, EmulatorState) {
        run_at((0, 0), events, state)
    }

    fn run_at(
        cursor: (i16, i16),
        events: &[InputMessage],
        state: EmulatorState,
    ) -> (Vec<String>, EmulatorState) {
        let mut mac = Recorder(Vec::new(), cursor);
        let mut mouse = MouseState::default();
        let st = AtomicU32::new(state as u32);
        for e in events {
            apply(e, &mut mac, &mut mouse, &st);
        }
        (
            mac.0,
            EmulatorState::from_u32(st.load(Ordering::SeqCst)).unwrap(),
        )
    }

    #[test]
    fn key_release_is_a_release() {
        let (log, _) = run(&[key(0, true), key(0, false)], EmulatorState::Running);
        assert_eq!(log, ["key 0 true", "key 0 false"]);
    }

    #[test]
    fn mouse_mode_persists_and_buttons_report_transitions() {
        let mv = |x, y, buttons, absolute| InputMessage::Mouse {
            x,
            y,
            buttons,
            absolute,
            timestamp_ms: 0,
        };
        let (log, _) = run(
            &[
                InputMessage::MouseMode(MouseMode::Relative),
                mv(3, -2, 0, false),
                mv(1, 1, 1, false),
                mv(1, 1, 1, false),
                mv(0, 0, 0, false),
                InputMessage::MouseMode(MouseMode::Absolute),
                mv(100, 50, 0, true),
                mv(5, 5, 0, false),
            ],
            EmulatorState::Running,
        );
        assert_eq!(
            log,
            [
                "rel 3 -2",
                "rel 1 1",
                "button true",
                "rel 1 1",
                "button false",
                "abs 100 50",
                "abs 105 55"
            ]
        );
    }

    #[test]
    fn deltas_in_absolute_mode_start_from_the_cursor() {
        let mv = |x, y, absolute| InputMessage::Mouse {
            x,
            y,
            buttons: 0,
            absolute,
            timestamp_ms: 0,
        };
        // Before any absolute position: from the machine's cursor, not from (0, 0).
        let (log, _) = run_at(
            (256, 171),
            &[mv(4, -3, false), mv(1, 1, false)],
            EmulatorState::Running,
        );
        assert_eq!(log, ["abs 260 168", "abs 261 169"]);
        // After relative mode moved the cursor, switching back starts from where it is now.
        let (log, _) = run_at(
            (300, 200),
            &[
                mv(100, 50, true),
                InputMessage::MouseMode(MouseMode::Relative),
                mv(7, 7, false),
                InputMessage::MouseMode(MouseMode::Absolute),
                mv(-10, 5, false),
            ],
            EmulatorState::Running,
        );
        assert_eq!(log, ["abs 100 50", "rel 7 7", "abs 290 205"]);
        // A reset puts the cursor back where the system wants it: start from there too.
        let (log, _) = run_at(
            (20, 30),
            &[
                mv(100, 50, true),
                InputMessage::Command(Command::Reset),
                mv(1, 2, false),
            ],
            EmulatorState::Running,
        );
        assert_eq!(log, ["abs 100 50", "release all", "reset", "abs 21 32"]);
    }

    #[test]
    fn commands_follow_the_state_machine() {
        use Command::*;
        let cmd = InputMessage::Command;
        assert_eq!(
            run(&[cmd(Reset)], EmulatorState::Running).1,
            EmulatorState::Running
        );
        assert_eq!(
            run(&[cmd(Reset)], EmulatorState::Running).0,
            ["release all", "reset"]
        );
        assert_eq!(
            run(&[cmd(Pause)], EmulatorState::Running).1,
            EmulatorState::Paused
        );
        assert_eq!(
            run(&[cmd(Pause), cmd(Resume)], EmulatorState::Running).1,
            EmulatorState::Running
        );
        // RESUME does not start a stopped machine; START does, from power-on.
        assert_eq!(
            run(&[cmd(Stop), cmd(Resume)], EmulatorState::Running).1,
            EmulatorState::Stopped
        );
        let (log, st) = run(&[cmd(Stop), cmd(Start)], EmulatorState::Running);
        assert_eq!(st, EmulatorState::Running);
        assert_eq!(log, ["release all", "reset"]);
        // START while running changes nothing.
        assert!(run(&[cmd(Start)], EmulatorState::Running).0.is_empty());
    }

    #[test]
    fn routes() {
        assert_eq!(
            route(&InputMessage::AudioRequest { samples: 960 }),
            Route::Audio(960)
        );
        assert_eq!(route(&key(1, true)), Route::Machine);
        assert_eq!(
            route(&InputMessage::Command(Command::Pause)),
            Route::Machine
        );
        assert_eq!(
            route(&InputMessage::Ping {
                sequence: 1,
                t1_browser_ms: 0,
                t2_server_us: 0,
                t3_emulator_us: 0
            }),
            Route::Handled
        );
    }

    #[test]
    fn latency_ignores_implausible_stamps() {
        let mut s = LatencyStats::default();
        let now = macemu_ipc::realtime_us() / 1000;
        let m = |t| InputMessage::Mouse {
            x: 0,
            y: 0,
            buttons: 0,
            absolute: false,
            timestamp_ms: t,
        };
        assert_eq!(s.observe(&m(0)), None);
        assert_eq!(s.observe(&m(now + 60_000)), None);
        let (avg, n) = s.observe(&m(now.saturating_sub(2))).unwrap();
        assert_eq!(n, 1);
        assert!(avg <= 100, "{avg}");
    }
}
