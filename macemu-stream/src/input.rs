//! Browser input events → v4 input messages, sans-IO. One translator per viewer: it keeps that viewer's
//! held buttons and keys (so a viewer that goes away releases them) and its last absolute position.

use crate::datachannel::ClientEvent;
use crate::keymap;
use macemu_ipc::{InputMessage, MouseMode};
use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct InputTranslator {
    relative: bool,
    buttons: u8,
    pos: (i16, i16),
    modifiers: u8,
    held: BTreeSet<u8>,
    /// Events that mapped to nothing (unknown keys).
    pub ignored: u64,
}

/// Browser button number (0 left, 1 middle, 2 right) → v4 button bit (L 1, R 2, M 4).
fn button_bit(b: u8) -> u8 {
    match b {
        0 => 0x01,
        1 => 0x04,
        _ => 0x02,
    }
}

fn ms(t: f64) -> u64 {
    if t.is_finite() && t > 0.0 {
        t as u64
    } else {
        0
    }
}

impl InputTranslator {
    /// `mode` is the server-wide mouse mode (it persists across viewers and emulator restarts).
    pub fn new(mode: MouseMode) -> Self {
        Self {
            relative: mode == MouseMode::Relative,
            ..Self::default()
        }
    }

    pub fn mouse_mode(&self) -> MouseMode {
        if self.relative {
            MouseMode::Relative
        } else {
            MouseMode::Absolute
        }
    }

    /// Translates one event; `now_us` is the server's receive time (µs since the Unix epoch, ping t2).
    pub fn translate(&mut self, ev: ClientEvent, now_us: u64) -> Option<InputMessage> {
        Some(match ev {
            ClientEvent::MouseMove { dx, dy, t } => InputMessage::Mouse {
                x: dx,
                y: dy,
                buttons: self.buttons,
                absolute: false,
                timestamp_ms: ms(t),
            },
            ClientEvent::MouseAbs { x, y, t } => {
                self.pos = (x.min(i16::MAX as u16) as i16, y.min(i16::MAX as u16) as i16);
                InputMessage::Mouse {
                    x: self.pos.0,
                    y: self.pos.1,
                    buttons: self.buttons,
                    absolute: true,
                    timestamp_ms: ms(t),
                }
            }
            ClientEvent::MouseButton { button, down, t } => {
                let bit = button_bit(button);
                if down {
                    self.buttons |= bit;
                } else {
                    self.buttons &= !bit;
                }
                // In absolute mode the press happens where the pointer is; in relative mode it is a
                // zero-length move carrying the new buttons.
                let (x, y, absolute) = if self.relative {
                    (0, 0, false)
                } else {
                    (self.pos.0, self.pos.1, true)
                };
                InputMessage::Mouse {
                    x,
                    y,
                    buttons: self.buttons,
                    absolute,
                    timestamp_ms: ms(t),
                }
            }
            ClientEvent::Key { key_code, down, .. } => {
                let Some(code) = keymap::browser_to_mac(key_code) else {
                    self.ignored += 1;
                    return None;
                };
                if let Some(bit) = keymap::modifier_bit(code) {
                    if down {
                        self.modifiers |= bit;
                    } else {
                        self.modifiers &= !bit;
                    }
                }
                if down {
                    self.held.insert(code);
                } else {
                    self.held.remove(&code);
                }
                InputMessage::Key {
                    keycode: code,
                    down,
                    modifiers: self.modifiers,
                }
            }
            ClientEvent::Ping { sequence, t1 } => InputMessage::Ping {
                sequence,
                t1_browser_ms: ms(t1),
                t2_server_us: now_us,
                t3_emulator_us: 0,
            },
            ClientEvent::MouseMode { relative } => {
                self.relative = relative;
                InputMessage::MouseMode(self.mouse_mode())
            }
        })
    }

    /// Key-ups and a button release for everything this viewer still holds (it disconnected or lost focus).
    pub fn release_all(&mut self) -> Vec<InputMessage> {
        let mut out = Vec::new();
        let held = std::mem::take(&mut self.held);
        for code in held {
            if let Some(bit) = keymap::modifier_bit(code) {
                self.modifiers &= !bit;
            }
            out.push(InputMessage::Key {
                keycode: code,
                down: false,
                modifiers: self.modifiers,
            });
        }
        if self.buttons != 0 {
            self.buttons = 0;
            out.push(InputMessage::Mouse {
                x: 0,
                y: 0,
                buttons: 0,
                absolute: false,
                timestamp_ms: 0,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_and_carry_modifiers() {
        let mut t = InputTranslator::new(MouseMode::Absolute);
        assert_eq!(
            t.translate(
                ClientEvent::Key {
                    key_code: 16,
                    down: true,
                    t: 1.0
                },
                0
            ),
            Some(InputMessage::Key {
                keycode: 0x38,
                down: true,
                modifiers: keymap::modifier_bits::SHIFT
            })
        );
        assert_eq!(
            t.translate(
                ClientEvent::Key {
                    key_code: 65,
                    down: true,
                    t: 2.0
                },
                0
            ),
            Some(InputMessage::Key {
                keycode: 0x00,
                down: true,
                modifiers: keymap::modifier_bits::SHIFT
            })
        );
        assert_eq!(
            t.translate(
                ClientEvent::Key {
                    key_code: 999,
                    down: true,
                    t: 2.0
                },
                0
            ),
            None
        );
        assert_eq!(t.ignored, 1);
        // Leaving releases A and Shift.
        let r = t.release_all();
        assert_eq!(
            r,
            vec![
                InputMessage::Key {
                    keycode: 0x00,
                    down: false,
                    modifiers: keymap::modifier_bits::SHIFT
                },
                InputMessage::Key {
                    keycode: 0x38,
                    down: false,
                    modifiers: 0
                },
            ]
        );
        assert!(t.release_all().is_empty());
    }

    #[test]
    fn mouse_buttons_absolute_and_relative() {
        let mut t = InputTranslator::new(MouseMode::Absolute);
        t.translate(
            ClientEvent::MouseAbs {
                x: 100,
                y: 50,
                t: 5.0,
            },
            0,
        );
        assert_eq!(
            t.translate(
                ClientEvent::MouseButton {
                    button: 0,
                    down: true,
                    t: 6.0
                },
                0
            ),
            Some(InputMessage::Mouse {
                x: 100,
                y: 50,
                buttons: 1,
                absolute: true,
                timestamp_ms: 6
            })
        );
        assert_eq!(
            t.translate(
                ClientEvent::MouseButton {
                    button: 2,
                    down: true,
                    t: 7.0
                },
                0
            ),
            Some(InputMessage::Mouse {
                x: 100,
                y: 50,
                buttons: 3,
                absolute: true,
                timestamp_ms: 7
            })
        );
        assert_eq!(
            t.translate(ClientEvent::MouseMode { relative: true }, 0),
            Some(InputMessage::MouseMode(MouseMode::Relative))
        );
        assert_eq!(
            t.translate(
                ClientEvent::MouseMove {
                    dx: -3,
                    dy: 4,
                    t: 8.0
                },
                0
            ),
            Some(InputMessage::Mouse {
                x: -3,
                y: 4,
                buttons: 3,
                absolute: false,
                timestamp_ms: 8
            })
        );
        assert_eq!(
            t.translate(
                ClientEvent::MouseButton {
                    button: 1,
                    down: true,
                    t: 9.0
                },
                0
            ),
            Some(InputMessage::Mouse {
                x: 0,
                y: 0,
                buttons: 7,
                absolute: false,
                timestamp_ms: 9
            })
        );
        assert_eq!(
            t.release_all().last(),
            Some(&InputMessage::Mouse {
                x: 0,
                y: 0,
                buttons: 0,
                absolute: false,
                timestamp_ms: 0
            })
        );
    }

    #[test]
    fn ping_gets_the_server_time() {
        let mut t = InputTranslator::new(MouseMode::Absolute);
        assert_eq!(
            t.translate(
                ClientEvent::Ping {
                    sequence: 5,
                    t1: 1234.9
                },
                777
            ),
            Some(InputMessage::Ping {
                sequence: 5,
                t1_browser_ms: 1234,
                t2_server_us: 777,
                t3_emulator_us: 0
            })
        );
    }
}
