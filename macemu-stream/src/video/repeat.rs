//! Repeating the last picture without the encoder.
//!
//! A static screen still sends a picture every refresh period (loss recovery; receivers that judge a
//! stream by its frame rate). openh264 spends as long on an unchanged picture as on a changed one
//! (16.8 ms at 1080p in screen mode), so the repeat is built here instead: a P picture whose single
//! slice codes every macroblock as P_Skip (one `mb_skip_run`). With one active reference, no list
//! reordering and no weighted prediction, each skipped macroblock copies the co-located block of the
//! latest reference picture (its predicted motion vector is zero when every neighbour is a zero-motion
//! skip), so the decoder shows exactly the picture it showed before. It costs microseconds.
//!
//! The repeat is a reference picture (sliding window), which keeps the stream conformant however many
//! repeats follow one another; the price is that the encoder's later pictures must be renumbered:
//! `frame_num` (a fixed-width field right after three Exp-Golomb values in the slice header) is
//! advanced by the repeats inserted since the last IDR, in place, and the NAL unit re-escaped. With
//! `pic_order_cnt_type` 2, as openh264 writes it, the picture order count follows `frame_num`.
//!
//! Everything is checked from the stream itself (SPS, PPS, every slice header): if the encoder ever
//! writes something this does not handle (CABAC, fields, slice groups, weighted prediction, another POC
//! type, more than one active reference, list reordering or memory management commands), repeats
//! stop until the next IDR and the caller encodes instead.

use bytes::Bytes;
use h264_reader::nal::pps::PicParameterSet;
use h264_reader::nal::slice::{
    DecRefPicMarking, ModificationOfPicNums, NumRefIdxActive, RefPicListModifications, SliceFamily,
    SliceHeader,
};
use h264_reader::nal::sps::{FrameMbsFlags, PicOrderCntType, SeqParameterSet};
use h264_reader::nal::{NalHeader, UnitType};
use h264_reader::rbsp::{decode_nal, BitRead, BitReader, BitWrite, BitWriter, ByteWriter};
use h264_reader::Context;
use std::io::Write;
use thiserror::Error;

use super::h264::nal_units;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RepeatError {
    /// A slice that must be renumbered could not be parsed: the stream cannot continue without an IDR.
    #[error("cannot renumber the encoder's slice: {0}")]
    Renumber(String),
}

/// What a repeat of the current stream needs, learnt from its parameter sets and last picture.
#[derive(Debug, Clone, Copy)]
struct Params {
    pps_id: u32,
    log2_max_frame_num: u32,
    macroblocks: u32,
    redundant_pic_cnt_present: bool,
    deblocking_control_present: bool,
}

/// Renumbers the encoder's pictures and builds repeats between them. One per encoder.
pub struct Repeater {
    ctx: Context,
    params: Option<Params>,
    /// Repeats inserted since the last IDR, added to the encoder's `frame_num`.
    inserted: u32,
    /// `frame_num` on the wire of the latest reference picture.
    last_ref_frame_num: u32,
    /// The latest picture was a reference picture that a repeat may copy.
    repeatable: bool,
    /// Repeats are off until the next IDR (something seen that they do not handle).
    off: bool,
}

impl Default for Repeater {
    fn default() -> Self {
        Self::new()
    }
}

fn ue_len(v: u32) -> u32 {
    2 * (32 - (v + 1).leading_zeros() - 1) + 1
}

impl Repeater {
    pub fn new() -> Self {
        Self {
            ctx: Context::new(),
            params: None,
            inserted: 0,
            last_ref_frame_num: 0,
            repeatable: false,
            off: true,
        }
    }

    /// Takes one access unit from the encoder (Annex-B) and returns it as it must be sent: unchanged
    /// until a repeat has been inserted since the last IDR, renumbered after.
    pub fn pass(&mut self, au: &Bytes) -> Result<Bytes, RepeatError> {
        let nals = nal_units(au);
        let idr = nals
            .iter()
            .any(|n| n.first().is_some_and(|b| b & 0x1F == 5));
        if idr {
            // A fresh start: frame_num is 0 again and nothing inserted before counts.
            self.inserted = 0;
            self.off = false;
            self.repeatable = false;
        }
        let mut out: Option<Vec<u8>> =
            (self.inserted > 0).then(|| Vec::with_capacity(au.len() + 16));
        for nal in nals {
            let patched = match NalHeader::new(*nal.first().unwrap_or(&0)) {
                Err(_) => {
                    // Not a NAL unit this can read: passed on as it is, no more repeats until an IDR.
                    self.off = true;
                    None
                }
                Ok(header) => self.nal(nal, header)?,
            };
            if let Some(o) = out.as_mut() {
                o.extend_from_slice(&[0, 0, 0, 1]);
                o.extend_from_slice(patched.as_deref().unwrap_or(nal));
            }
        }
        Ok(out.map_or_else(|| au.clone(), Bytes::from))
    }

    /// One NAL unit of an encoder access unit; `Some` when it must be sent changed.
    fn nal(&mut self, nal: &[u8], header: NalHeader) -> Result<Option<Vec<u8>>, RepeatError> {
        Ok(match header.nal_unit_type() {
            UnitType::SeqParameterSet => {
                self.learn_sps(nal);
                None
            }
            UnitType::PicParameterSet => {
                self.learn_pps(nal);
                None
            }
            UnitType::SliceLayerWithoutPartitioningIdr => {
                self.check_slice(nal, header);
                self.last_ref_frame_num = 0;
                self.repeatable = true;
                None
            }
            UnitType::SliceLayerWithoutPartitioningNonIdr => self.renumber(nal, header)?,
            _ => None,
        })
    }

    /// An access unit showing the latest picture again, or `None` when this stream cannot have one now
    /// (no IDR yet, the latest picture not a reference, or a feature repeats do not handle).
    pub fn repeat(&mut self) -> Option<Bytes> {
        if self.off || !self.repeatable {
            return None;
        }
        let p = self.params?;
        let max = 1u32 << p.log2_max_frame_num;
        let frame_num = (self.last_ref_frame_num + 1) % max;
        let mut rbsp = Vec::with_capacity(16);
        {
            let mut w = BitWriter::new(&mut rbsp);
            let ok = (|| -> std::io::Result<()> {
                w.write_ue(0)?; // first_mb_in_slice
                w.write_ue(5)?; // slice_type: P, and every slice of the picture is P
                w.write_ue(p.pps_id)?;
                w.write_var(p.log2_max_frame_num, frame_num)?;
                if p.redundant_pic_cnt_present {
                    w.write_ue(0)?;
                }
                w.write_bit(true)?; // num_ref_idx_active_override_flag: one reference
                w.write_ue(0)?;
                w.write_bit(false)?; // ref_pic_list_modification_flag_l0
                w.write_bit(false)?; // adaptive_ref_pic_marking_mode_flag: sliding window
                w.write_se(0)?; // slice_qp_delta
                if p.deblocking_control_present {
                    w.write_ue(1)?; // disable_deblocking_filter_idc: nothing to filter in a copy
                }
                w.write_ue(p.macroblocks)?; // mb_skip_run: the whole picture
                w.write_rbsp_trailing_bits()
            })();
            ok.ok()?;
        }
        let mut au = vec![0, 0, 0, 1, 0x41]; // nal_ref_idc 2, coded slice of a non-IDR picture
        let mut bw = ByteWriter::new(&mut au);
        bw.write_all(&rbsp).ok()?;
        self.inserted = self.inserted.wrapping_add(1) % max;
        self.last_ref_frame_num = frame_num;
        Some(Bytes::from(au))
    }

    fn learn_sps(&mut self, nal: &[u8]) {
        let sps = decode_nal(nal)
            .ok()
            .and_then(|r| SeqParameterSet::from_bits(BitReader::new(&r[..])).ok());
        match sps {
            Some(s) => self.ctx.put_seq_param_set(s),
            None => self.off = true,
        }
    }

    fn learn_pps(&mut self, nal: &[u8]) {
        let pps = decode_nal(nal)
            .ok()
            .and_then(|r| PicParameterSet::from_bits(&self.ctx, BitReader::new(&r[..])).ok());
        match pps {
            Some(p) => self.ctx.put_pic_param_set(p),
            None => self.off = true,
        }
    }

    /// Parses a slice header, records what a repeat needs, and turns repeats off when the stream uses
    /// something they do not handle. Returns the header's `frame_num` and where it starts in the RBSP
    /// (bits after the NAL header byte).
    fn check_slice(&mut self, nal: &[u8], header: NalHeader) -> Option<(u32, u32)> {
        let rbsp = decode_nal(nal).ok()?;
        let parsed = {
            let mut r = BitReader::new(&rbsp[..]);
            SliceHeader::from_bits(&self.ctx, &mut r, header, None).ok()
        };
        let Some((sh, sps, pps)) = parsed else {
            self.off = true;
            return None;
        };
        // Where frame_num starts: after first_mb_in_slice, slice_type and pic_parameter_set_id.
        let mut r = BitReader::new(&rbsp[..]);
        let mut at = 0;
        for name in ["first_mb_in_slice", "slice_type", "pic_parameter_set_id"] {
            at += ue_len(r.read_ue(name).ok()?);
        }
        if sps.chroma_info.separate_colour_plane_flag {
            at += 2;
        }
        let one_ref = match &sh.num_ref_idx_active {
            Some(NumRefIdxActive::P {
                num_ref_idx_l0_active_minus1,
            }) => *num_ref_idx_l0_active_minus1 == 0,
            Some(_) => false,
            None => {
                sh.slice_type.family == SliceFamily::I
                    || pps.num_ref_idx_l0_default_active_minus1 == 0
            }
        };
        let family_ok = matches!(sh.slice_type.family, SliceFamily::I | SliceFamily::P);
        let no_reorder = sh
            .ref_pic_list_modification
            .as_ref()
            .is_none_or(|m| match m {
                RefPicListModifications::I => true,
                // openh264 names the previous picture explicitly (CurrPicNum - 1). A renumbered picture
                // still means the previous reference on the wire: the repeat, which is a copy of it.
                RefPicListModifications::P {
                    ref_pic_list_modification_l0,
                } => matches!(
                    ref_pic_list_modification_l0[..],
                    [] | [ModificationOfPicNums::Subtract(0)]
                ),
                _ => false,
            });
        let marking_ok = matches!(
            sh.dec_ref_pic_marking,
            None | Some(DecRefPicMarking::SlidingWindow)
                | Some(DecRefPicMarking::Idr {
                    long_term_reference_flag: false,
                    ..
                })
        );
        let supported = matches!(sps.pic_order_cnt, PicOrderCntType::TypeTwo)
            && matches!(sps.frame_mbs_flags, FrameMbsFlags::Frames)
            && sps.max_num_ref_frames >= 1
            && !pps.entropy_coding_mode_flag
            && pps.slice_groups.is_none()
            && !pps.weighted_pred_flag
            && one_ref
            && no_reorder
            && marking_ok
            && family_ok;
        if !supported {
            tracing::debug!(
                poc = ?sps.pic_order_cnt, refs = sps.max_num_ref_frames, cabac = pps.entropy_coding_mode_flag,
                weighted = pps.weighted_pred_flag, one_ref, no_reorder, marking = ?sh.dec_ref_pic_marking,
                "repeats off: the encoder's stream uses what they do not handle"
            );
            self.off = true;
        }
        self.params = Some(Params {
            pps_id: pps.pic_parameter_set_id.id().into(),
            log2_max_frame_num: u32::from(sps.log2_max_frame_num_minus4) + 4,
            macroblocks: sps
                .pic_width_in_mbs()
                .saturating_mul(sps.pic_height_in_map_units()),
            redundant_pic_cnt_present: pps.redundant_pic_cnt_present_flag,
            deblocking_control_present: pps.deblocking_filter_control_present_flag,
        });
        Some((u32::from(sh.frame_num), at))
    }

    /// A non-IDR slice: learn from it, and shift its `frame_num` by the repeats inserted so far.
    fn renumber(&mut self, nal: &[u8], header: NalHeader) -> Result<Option<Vec<u8>>, RepeatError> {
        let found = self.check_slice(nal, header);
        if self.off {
            self.repeatable = false;
            if self.inserted > 0 {
                // Repeats were inserted and the stream changed under them: only an IDR can resync.
                return Err(RepeatError::Renumber(
                    "the encoder's stream stopped being repeatable".into(),
                ));
            }
            return Ok(None);
        }
        let (Some(p), Some((frame_num, at))) = (self.params, found) else {
            return Ok(None);
        };
        let max = 1u32 << p.log2_max_frame_num;
        let wire = (frame_num % max + self.inserted % max) % max;
        let reference = header.nal_ref_idc() != 0;
        if reference {
            self.last_ref_frame_num = wire;
        }
        self.repeatable = reference;
        if self.inserted == 0 {
            return Ok(None);
        }
        let Ok(rbsp) = decode_nal(nal) else {
            return Err(RepeatError::Renumber("bad escaping".into()));
        };
        let mut rbsp = rbsp.into_owned();
        let bits = p.log2_max_frame_num;
        if (at + bits) as usize > rbsp.len() * 8 {
            return Err(RepeatError::Renumber("slice header too short".into()));
        }
        for i in 0..bits {
            let bit = (wire >> (bits - 1 - i)) & 1;
            let pos = (at + i) as usize;
            let mask = 0x80u8 >> (pos % 8);
            if bit == 1 {
                rbsp[pos / 8] |= mask;
            } else {
                rbsp[pos / 8] &= !mask;
            }
        }
        let mut nal_out = Vec::with_capacity(nal.len() + 4);
        nal_out.push(nal[0]);
        ByteWriter::new(&mut nal_out)
            .write_all(&rbsp)
            .map_err(|e| RepeatError::Renumber(e.to_string()))?;
        Ok(Some(nal_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::h264::tests::test_picture;
    use crate::video::h264::{H264Config, H264Encoder, PictureEncoder};
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;

    enum Step {
        /// An encoder picture with this much typed text.
        Encode(usize),
        Repeat,
    }

    /// Runs the steps; returns the stream as sent and, for each encoder picture, its access unit as
    /// the encoder wrote it (the reference stream without repeats).
    fn run(w: usize, h: usize, steps: &[Step]) -> (Vec<Bytes>, Vec<Bytes>, u32) {
        let mut enc = H264Encoder::new(H264Config::default());
        let mut rep = Repeater::new();
        let (mut sent, mut plain, mut repeats) = (Vec::new(), Vec::new(), 0);
        for (i, s) in steps.iter().enumerate() {
            match s {
                Step::Encode(typed) => {
                    let f = enc
                        .encode(&test_picture(w, h, *typed), false, i as u64 * 16)
                        .unwrap()
                        .unwrap();
                    sent.push(rep.pass(&f.data).unwrap());
                    plain.push(f.data);
                }
                Step::Repeat => {
                    sent.push(rep.repeat().expect("a repeat is possible"));
                    repeats += 1;
                }
            }
        }
        (sent, plain, repeats)
    }

    fn luma(d: &openh264::decoder::DecodedYUV<'_>) -> Vec<u8> {
        let (w, h) = d.dimensions();
        let (ys, _, _) = d.strides();
        (0..h)
            .flat_map(|r| d.y()[r * ys..r * ys + w].to_vec())
            .collect()
    }

    fn openh264_decode(aus: &[Bytes]) -> Vec<Vec<u8>> {
        let mut dec = Decoder::new().unwrap();
        aus.iter()
            .map(|au| luma(&dec.decode(au).unwrap().expect("a picture per access unit")))
            .collect()
    }

    /// FFmpeg's H.264 decoder (the one browsers use for software decoding), luma of every frame.
    fn ffmpeg_decode(aus: &[Bytes], w: usize, h: usize) -> Vec<Vec<u8>> {
        use std::io::Read;
        use std::process::{Command, Stdio};
        let mut child = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "h264",
                "-i",
                "pipe:0",
                "-fps_mode",
                "passthrough",
            ])
            .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffmpeg runs (scripts/setup.sh installs it)");
        let stream: Vec<u8> = aus.iter().flat_map(|a| a.to_vec()).collect();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&stream));
        let mut raw = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut raw).unwrap();
        writer.join().unwrap().unwrap();
        let out = child.wait_with_output().unwrap();
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && errors.trim().is_empty(),
            "ffmpeg: {errors}"
        );
        // Planar 4:2:0 as decoded (no conversion): the luma plane leads each frame.
        raw.chunks(w * h * 3 / 2)
            .map(|f| f[..w * h].to_vec())
            .collect()
    }

    /// Every encoder picture decodes exactly as in the stream without repeats, and every repeat shows
    /// exactly the picture before it.
    fn check(decoded: &[Vec<u8>], reference: &[Vec<u8>], steps: &[Step], who: &str) {
        assert_eq!(decoded.len(), steps.len(), "{who}: pictures out");
        let mut k = 0;
        for (i, s) in steps.iter().enumerate() {
            match s {
                Step::Encode(_) => {
                    assert!(
                        decoded[i] == reference[k],
                        "{who}: encoder picture {k} (step {i}) differs"
                    );
                    k += 1;
                }
                Step::Repeat => {
                    assert!(
                        decoded[i] == decoded[i - 1],
                        "{who}: repeat at step {i} changed the picture"
                    )
                }
            }
        }
    }

    fn steps() -> Vec<Step> {
        use Step::*;
        vec![
            Encode(0),
            Encode(1),
            Encode(2),
            Repeat,
            Repeat,
            Repeat,
            Repeat,
            Encode(3),
            Encode(5),
            Repeat,
            Repeat,
            Repeat,
            Encode(8),
            Repeat,
            Encode(9),
            Encode(9),
            Repeat,
            Repeat,
        ]
    }

    #[test]
    fn repeats_are_exact_copies_and_the_encoder_stream_decodes_unchanged() {
        let (w, h) = (512, 342);
        let steps = steps();
        let (sent, plain, repeats) = run(w, h, &steps);
        assert_eq!(repeats, 10);
        let reference = openh264_decode(&plain);
        check(&openh264_decode(&sent), &reference, &steps, "openh264");
        check(&ffmpeg_decode(&sent, w, h), &reference, &steps, "ffmpeg");
        // The encoder's pictures and ours agree with the reference decoder too.
        assert_eq!(ffmpeg_decode(&plain, w, h), reference);
        // A repeat is a few bytes where the encoder spends hundreds on an unchanged picture.
        let r = &sent[3];
        assert!(r.len() < 16, "repeat of {} bytes", r.len());
    }

    #[test]
    fn renumbering_follows_frame_num_across_its_wrap() {
        // frame_num has 2^log2_max_frame_num values; go past them with repeats.
        let (w, h) = (64, 48);
        let mut steps = vec![Step::Encode(0), Step::Encode(1)];
        let mut rep = Repeater::new();
        let mut enc = H264Encoder::new(H264Config::default());
        let f = enc
            .encode(&test_picture(w, h, 0), false, 0)
            .unwrap()
            .unwrap();
        rep.pass(&f.data).unwrap();
        let max = 1usize << rep.params.unwrap().log2_max_frame_num;
        steps.extend((0..max + 3).map(|_| Step::Repeat));
        steps.extend([Step::Encode(2), Step::Repeat, Step::Encode(3)]);
        let (sent, plain, _) = run(w, h, &steps);
        let reference = openh264_decode(&plain);
        check(&openh264_decode(&sent), &reference, &steps, "openh264");
        check(&ffmpeg_decode(&sent, w, h), &reference, &steps, "ffmpeg");
    }

    #[test]
    fn a_repeat_is_the_slice_it_claims_to_be() {
        let (sent, _, _) = run(512, 342, &steps());
        let mut ctx = Context::new();
        let mut seen = Vec::new();
        for au in &sent {
            for nal in nal_units(au) {
                let hdr = NalHeader::new(nal[0]).unwrap();
                let rbsp = decode_nal(nal).unwrap();
                match hdr.nal_unit_type() {
                    UnitType::SeqParameterSet => ctx.put_seq_param_set(
                        SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).unwrap(),
                    ),
                    UnitType::PicParameterSet => {
                        let p =
                            PicParameterSet::from_bits(&ctx, BitReader::new(&rbsp[..])).unwrap();
                        ctx.put_pic_param_set(p)
                    }
                    _ => {
                        let mut r = BitReader::new(&rbsp[..]);
                        let (sh, _, _) = SliceHeader::from_bits(&ctx, &mut r, hdr, None).unwrap();
                        // Skip run over every macroblock, then nothing but the trailing bits.
                        if sh.slice_type.family == SliceFamily::P && nal.len() < 16 {
                            assert_eq!(r.read_ue("mb_skip_run").unwrap(), 32 * 22);
                            assert!(!r.has_more_rbsp_data("end").unwrap());
                        }
                        seen.push((sh.frame_num, hdr.nal_ref_idc() != 0));
                    }
                }
            }
        }
        // One reference picture after another, frame_num counting up from the IDR without a gap.
        let nums: Vec<u16> = seen.iter().map(|s| s.0).collect();
        assert_eq!(nums, (0..sent.len() as u16).collect::<Vec<_>>());
        assert!(seen.iter().all(|s| s.1));
    }

    #[test]
    fn no_repeat_before_an_idr_or_for_a_stream_it_cannot_follow() {
        let mut rep = Repeater::new();
        assert!(rep.repeat().is_none(), "nothing to repeat yet");
        // A slice of a stream whose parameter sets were never seen cannot be followed.
        let orphan = Bytes::from_static(&[0, 0, 0, 1, 0x41, 0x9A, 0x02, 0x00]);
        assert_eq!(rep.pass(&orphan).unwrap(), orphan);
        assert!(rep.repeat().is_none());
    }
}
