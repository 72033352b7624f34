//! The Mac Plus keyboard (M0110A) and its serial protocol over the VIA shift register.
//!
//! The Mac sends one command byte (VIA shift-out, keyboard clock) and the keyboard answers with
//! one byte (VIA shift-in). Commands (Inside Macintosh III, "The Keyboard"; Guide to the
//! Macintosh Family Hardware):
//!
//! | command | answer |
//! |---|---|
//! | Inquiry `0x10` | next key transition, or Null `0x7B` if none within 1/4 s |
//! | Instant `0x14` | next key transition (or the rest of a keypad one), else Null at once |
//! | Model `0x16` | resets the keyboard; model byte: bit 0 = 1, bits 3..1 model, bits 6..4 next device |
//! | Test `0x36` | ACK `0x7D` (NAK `0x77` on failure) |
//!
//! A transition is `u k k k k k k 1`: bit 7 = 1 for key up, bits 6..1 the key code. Keypad keys
//! (and the M0110A's arrow keys, which live on the keypad matrix) are sent as the prefix `0x79`;
//! the Mac then sends Instant and receives the keypad key's transition.
//!
//! Key codes taken by [`Keyboard::key`] are the Macintosh virtual key codes (those of ADB
//! keyboards, which the browser mapping produces); the M0110A's own codes match them for the
//! main keys and keypad, and its arrows are keypad codes 0x46, 0x42, 0x48, 0x4D.

use std::collections::VecDeque;

/// CPU clocks per second.
const HZ: u64 = super::CPU_HZ;
/// The keyboard answers Inquiry with Null after a quarter of a second without a key.
pub const INQUIRY_TIMEOUT_CYCLES: u64 = HZ / 4;
/// Time from the end of a command until the keyboard has its answer ready to clock out. With
/// the eight bits that follow ([`BYTE_TO_MAC_CYCLES`]) a prompt answer takes about 3 ms.
pub const RESPONSE_CYCLES: u64 = HZ * 36 / 100_000;
/// Eight bits from keyboard to Mac at the keyboard's 330 µs clock period (Inside Macintosh III,
/// "The Keyboard"). The keyboard clocks them only into a VIA in shift-in mode, so the board
/// starts this time when the answer is ready and the VIA listens, whichever comes last.
pub const BYTE_TO_MAC_CYCLES: u64 = HZ * 8 * 330 / 1_000_000;

/// Answers.
pub const NULL: u8 = 0x7B;
pub const ACK: u8 = 0x7D;
pub const KEYPAD_PREFIX: u8 = 0x79;
/// Model byte of the M0110A (model 5, no further device), as Mini vMac documents for the Plus.
pub const MODEL_M0110A: u8 = 0x0B;

/// Commands.
pub const CMD_INQUIRY: u8 = 0x10;
pub const CMD_INSTANT: u8 = 0x14;
pub const CMD_MODEL: u8 = 0x16;
pub const CMD_TEST: u8 = 0x36;

/// Queued events are bounded so a flood of input cannot grow memory without limit.
const MAX_QUEUE: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transition {
    code: u8, // M0110A key code (0..0x7F), keypad codes have bit 6 set
    down: bool,
}

impl Transition {
    fn byte(self) -> u8 {
        ((self.code & 0x3F) << 1) | 1 | if self.down { 0 } else { 0x80 }
    }

    fn keypad(self) -> bool {
        self.code & 0x40 != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    /// Inquiry received: answer with the next transition, or Null at `deadline`.
    Inquiry {
        deadline: u64,
    },
    /// An answer is ready to be clocked into the Mac from cycle `at`.
    Answer {
        byte: u8,
        at: u64,
    },
}

/// The keyboard.
#[derive(Clone, Debug)]
pub struct Keyboard {
    queue: VecDeque<Transition>,
    pressed: [bool; 128],
    /// Second half of a keypad transition, sent on the next Instant.
    keypad_rest: Option<u8>,
    state: State,
}

impl Default for Keyboard {
    fn default() -> Self {
        Self::new()
    }
}

/// Maps a Macintosh virtual key code to the M0110A key code, or None for keys it lacks.
pub fn m0110a_code(mac_code: u8) -> Option<u8> {
    match mac_code {
        0x00..=0x3A => Some(mac_code),
        0x41..=0x5C => Some(mac_code),
        0x7B => Some(0x46), // left
        0x7C => Some(0x42), // right
        0x7D => Some(0x48), // down
        0x7E => Some(0x4D), // up
        _ => None,
    }
}

impl Keyboard {
    pub fn new() -> Keyboard {
        Keyboard {
            queue: VecDeque::new(),
            pressed: [false; 128],
            keypad_rest: None,
            state: State::Idle,
        }
    }

    /// A key went down or up. Repeated downs of a held key and ups of a released key are
    /// dropped, so each physical transition is reported once. Returns whether it was accepted.
    ///
    /// A down is refused while [`MAX_QUEUE`] transitions wait, but an up never is: refusing it
    /// would leave the key held on the Mac. Ups cannot flood the queue, as each needs a held key,
    /// so it never holds more than `MAX_QUEUE` plus the number of keys.
    pub fn key(&mut self, mac_code: u8, down: bool) -> bool {
        let Some(code) = m0110a_code(mac_code) else {
            return false;
        };
        let i = usize::from(code);
        if self.pressed[i] == down {
            return false;
        }
        if down {
            if self.queue.len() >= MAX_QUEUE {
                return false;
            }
        } else if self.queue.len() >= MAX_QUEUE {
            // Full: if the Mac has not yet been told of this key's press, forget the press
            // instead of queueing its release.
            if let Some(at) = self.queue.iter().rposition(|t| t.code == code && t.down) {
                self.queue.remove(at);
                self.pressed[i] = false;
                return true;
            }
        }
        self.pressed[i] = down;
        self.queue.push_back(Transition { code, down });
        true
    }

    /// Releases every held key (focus lost).
    pub fn release_all(&mut self) {
        for code in 0..128u8 {
            if self.pressed[usize::from(code)] {
                self.pressed[usize::from(code)] = false;
                self.queue.push_back(Transition { code, down: false });
            }
        }
    }

    /// Whether key transitions wait to be sent.
    pub fn has_events(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The Mac finished sending command byte `cmd` at cycle `now`.
    pub fn command(&mut self, cmd: u8, now: u64) {
        let answer = |byte| State::Answer {
            byte,
            at: now + RESPONSE_CYCLES,
        };
        self.state = match cmd {
            CMD_INQUIRY => match self.next_transition() {
                Some(b) => answer(b),
                None => State::Inquiry {
                    deadline: now + INQUIRY_TIMEOUT_CYCLES,
                },
            },
            CMD_INSTANT => {
                let b = self
                    .keypad_rest
                    .take()
                    .or_else(|| self.next_transition())
                    .unwrap_or(NULL);
                answer(b)
            }
            CMD_MODEL => {
                // Model resets the keyboard: forget state and queued transitions.
                self.queue.clear();
                self.pressed = [false; 128];
                self.keypad_rest = None;
                answer(MODEL_M0110A)
            }
            CMD_TEST => answer(ACK),
            _ => State::Idle, // unknown commands are not answered
        };
    }

    fn next_transition(&mut self) -> Option<u8> {
        let t = self.queue.pop_front()?;
        if t.keypad() {
            self.keypad_rest = Some(t.byte());
            Some(KEYPAD_PREFIX)
        } else {
            Some(t.byte())
        }
    }

    /// The answer byte due by cycle `now`, if any. The caller clocks it into the VIA; if the VIA
    /// is not ready it calls [`Keyboard::unpoll`] to keep it.
    pub fn poll(&mut self, now: u64) -> Option<u8> {
        self.poll_at(now).map(|(byte, _)| byte)
    }

    /// As [`Keyboard::poll`], with the cycle at which the answer became ready to send.
    pub fn poll_at(&mut self, now: u64) -> Option<(u8, u64)> {
        match self.state {
            State::Inquiry { deadline } => {
                if let Some(b) = self.next_transition() {
                    self.state = State::Answer {
                        byte: b,
                        at: now + RESPONSE_CYCLES,
                    };
                } else if now >= deadline {
                    self.state = State::Answer {
                        byte: NULL,
                        at: now,
                    };
                }
                self.poll_answer(now)
            }
            State::Answer { .. } => self.poll_answer(now),
            State::Idle => None,
        }
    }

    fn poll_answer(&mut self, now: u64) -> Option<(u8, u64)> {
        if let State::Answer { byte, at } = self.state {
            if now >= at {
                self.state = State::Idle;
                return Some((byte, at));
            }
        }
        None
    }

    /// Puts back an answer the VIA could not take yet.
    pub fn unpoll(&mut self, byte: u8, now: u64) {
        self.state = State::Answer { byte, at: now };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inquiry_times_out_with_null() {
        let mut k = Keyboard::new();
        k.command(CMD_INQUIRY, 1000);
        assert_eq!(k.poll(1000 + INQUIRY_TIMEOUT_CYCLES - 1), None);
        assert_eq!(k.poll(1000 + INQUIRY_TIMEOUT_CYCLES), Some(NULL));
        assert_eq!(k.poll(u64::MAX), None, "one answer per command");
    }

    #[test]
    fn inquiry_answers_a_key_that_arrives_while_waiting() {
        let mut k = Keyboard::new();
        k.command(CMD_INQUIRY, 0);
        assert_eq!(k.poll(10_000), None);
        assert!(k.key(0x00, true)); // 'A'
        assert_eq!(
            k.poll(20_000),
            None,
            "the keyboard takes its processing time"
        );
        assert_eq!(k.poll(20_000 + RESPONSE_CYCLES), Some(0x01));
    }

    #[test]
    fn key_down_up_transitions_are_distinct_and_deduplicated() {
        let mut k = Keyboard::new();
        assert!(k.key(0x24, true)); // Return
        assert!(
            !k.key(0x24, true),
            "auto-repeat downs are not new transitions"
        );
        assert!(k.key(0x24, false));
        assert!(!k.key(0x24, false));
        k.command(CMD_INQUIRY, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(0x49));
        k.command(CMD_INQUIRY, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(0xC9));
        k.command(CMD_INQUIRY, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), None);
    }

    #[test]
    fn keypad_and_arrows_use_prefix_then_instant() {
        let mut k = Keyboard::new();
        k.key(0x7E, true); // up arrow -> keypad code 0x4D
        k.key(0x52, true); // keypad 0
        k.command(CMD_INQUIRY, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(KEYPAD_PREFIX));
        k.command(CMD_INSTANT, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(0x1B));
        k.command(CMD_INQUIRY, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(KEYPAD_PREFIX));
        k.command(CMD_INSTANT, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(0x25));
        // Instant with nothing pending answers Null at once.
        k.command(CMD_INSTANT, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(NULL));
    }

    #[test]
    fn model_resets_and_test_acks() {
        let mut k = Keyboard::new();
        k.key(0x01, true);
        k.command(CMD_MODEL, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(MODEL_M0110A));
        assert!(!k.has_events());
        // After the reset the held key is forgotten: pressing again is a new transition.
        assert!(k.key(0x01, true));
        k.command(CMD_TEST, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(ACK));
    }

    #[test]
    fn unknown_keys_and_commands_are_ignored() {
        let mut k = Keyboard::new();
        assert!(!k.key(0x3B, true), "no Control key on the M0110A");
        assert!(!k.key(0x7F, true));
        k.command(0x42, 0);
        assert_eq!(k.poll(u64::MAX), None);
    }

    #[test]
    fn unpoll_keeps_the_answer() {
        let mut k = Keyboard::new();
        k.command(CMD_TEST, 0);
        let b = k.poll(RESPONSE_CYCLES).unwrap();
        k.unpoll(b, RESPONSE_CYCLES);
        assert_eq!(k.poll(RESPONSE_CYCLES + 1), Some(ACK));
    }

    /// Every answer to Instant until Null: the transition bytes the Mac would receive.
    fn drain(k: &mut Keyboard) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            k.command(CMD_INSTANT, 0);
            match k.poll(RESPONSE_CYCLES) {
                Some(NULL) | None => return out,
                Some(b) => out.push(b),
            }
        }
    }

    /// Fills the queue with `pairs` down/up taps of keys 1, 2, ...
    fn taps(k: &mut Keyboard, pairs: u8) {
        for code in 1..=pairs {
            assert!(k.key(code, true));
            assert!(k.key(code, false));
        }
    }

    #[test]
    fn a_release_is_accepted_when_the_queue_is_full() {
        let mut k = Keyboard::new();
        assert!(k.key(0x00, true)); // 'A', sent to the Mac below
        assert_eq!(drain(&mut k), [0x01]);
        taps(&mut k, (MAX_QUEUE / 2) as u8);
        assert_eq!(k.queue.len(), MAX_QUEUE);
        assert!(!k.key(0x38, true), "a new press waits for room");
        assert!(
            k.key(0x00, false),
            "the release of a held key is never refused"
        );
        let sent = drain(&mut k);
        assert_eq!(sent.len(), MAX_QUEUE + 1);
        assert_eq!(sent.last(), Some(&0x81), "'A' up reaches the Mac");
        // Nothing is left held: pressing 'A' again is a new transition.
        assert!(k.key(0x00, true));
    }

    #[test]
    fn a_full_queue_collapses_a_press_the_mac_has_not_seen() {
        let mut k = Keyboard::new();
        assert!(k.key(0x00, true));
        taps(&mut k, (MAX_QUEUE / 2 - 1) as u8);
        assert!(k.key(0x20, true));
        assert_eq!(k.queue.len(), MAX_QUEUE);
        assert!(k.key(0x00, false));
        assert_eq!(k.queue.len(), MAX_QUEUE - 1, "the press and release cancel");
        let sent = drain(&mut k);
        assert!(
            !sent.iter().any(|&b| b & 0x7F == 0x01),
            "neither 'A' down nor 'A' up is sent: {sent:02X?}"
        );
        assert_eq!(sent.last(), Some(&((0x20 << 1) | 1)));
        assert!(k.key(0x00, true), "'A' is not left held");
    }

    #[test]
    fn releases_keep_the_queue_bounded() {
        let mut k = Keyboard::new();
        // Hold 32 keys the Mac has seen, fill the queue with other taps, then release them all.
        for code in 0x00..0x20 {
            assert!(k.key(code, true));
        }
        drain(&mut k);
        for code in (0x20..=0x3A).chain(0x41..=0x45) {
            assert!(k.key(code, true));
            assert!(k.key(code, false));
        }
        assert_eq!(k.queue.len(), MAX_QUEUE);
        for code in 0x00..0x20 {
            assert!(k.key(code, false), "release of {code:#x}");
        }
        assert_eq!(
            k.queue.len(),
            MAX_QUEUE + 32,
            "one up per held key, no more"
        );
        let sent = drain(&mut k);
        for code in 0x00..0x20u8 {
            assert!(sent.contains(&(0x80 | (code << 1) | 1)), "up of {code:#x}");
        }
    }

    #[test]
    fn release_all_sends_ups() {
        let mut k = Keyboard::new();
        k.key(0x38, true);
        k.key(0x00, true);
        k.command(CMD_INQUIRY, 0);
        k.poll(RESPONSE_CYCLES);
        k.command(CMD_INQUIRY, 0);
        k.poll(RESPONSE_CYCLES);
        k.release_all();
        k.command(CMD_INQUIRY, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(0x81));
        k.command(CMD_INQUIRY, 0);
        assert_eq!(k.poll(RESPONSE_CYCLES), Some(0x80 | (0x38 << 1) | 1));
    }
}
