//! Property tests of the sans-IO input decoder.

use macemu_ipc::input::{Command, DecodeError, InputDecoder, InputMessage, MouseMode};
use proptest::prelude::*;

fn message() -> impl Strategy<Value = InputMessage> {
    prop_oneof![
        (any::<u8>(), any::<bool>(), any::<u8>()).prop_map(|(keycode, down, modifiers)| {
            InputMessage::Key {
                keycode,
                down,
                modifiers,
            }
        }),
        (
            any::<i16>(),
            any::<i16>(),
            0u8..8,
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(
                |(x, y, buttons, absolute, timestamp_ms)| InputMessage::Mouse {
                    x,
                    y,
                    buttons,
                    absolute,
                    timestamp_ms
                }
            ),
        (1u8..=5).prop_map(|c| InputMessage::Command(Command::from_u8(c).unwrap())),
        (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(sequence, t1, t2, t3)| {
                InputMessage::Ping {
                    sequence,
                    t1_browser_ms: t1,
                    t2_server_us: t2,
                    t3_emulator_us: t3,
                }
            }
        ),
        (0u32..=48_000).prop_map(|samples| InputMessage::AudioRequest { samples }),
        prop_oneof![Just(MouseMode::Absolute), Just(MouseMode::Relative)]
            .prop_map(InputMessage::MouseMode),
    ]
}

fn decode_in_chunks(
    stream: &[u8],
    cuts: &[usize],
) -> (Vec<Result<InputMessage, DecodeError>>, usize) {
    let mut d = InputDecoder::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
        let c = c.clamp(start, stream.len());
        d.push(&stream[start..c]);
        out.extend(d.by_ref());
        start = c;
    }
    (out, d.pending())
}

proptest! {
    /// Any split of a valid stream yields exactly the encoded messages.
    #[test]
    fn every_split_gives_the_same_messages(
        msgs in prop::collection::vec(message(), 0..40),
        mut cuts in prop::collection::vec(0usize..2000, 0..30),
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| m.encode()).collect();
        cuts.sort_unstable();
        let (out, pending) = decode_in_chunks(&stream, &cuts);
        let out: Vec<InputMessage> = out.into_iter().map(|r| r.unwrap()).collect();
        prop_assert_eq!(out, msgs);
        prop_assert_eq!(pending, 0);
    }

    /// Arbitrary bytes never panic, and the split never changes the outcome.
    #[test]
    fn garbage_never_panics_and_is_split_independent(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        mut cuts in prop::collection::vec(0usize..600, 0..20),
    ) {
        cuts.sort_unstable();
        let whole = decode_in_chunks(&bytes, &[]);
        let split = decode_in_chunks(&bytes, &cuts);
        prop_assert_eq!(whole, split);
    }
}
