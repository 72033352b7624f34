//! The 68000 single-step vectors (../shared/testdata): every file is its own test and must
//! match final registers, SR, PC, prefetch queue and RAM, the clock count and the sequence of
//! bus cycles in every case (`macemu-cli cpu-test FILE` shows the differences).

use std::path::PathBuf;

use macemu_core::cpu::vectors;

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata")
        .join(rel)
}

fn check(rel: &str) {
    let path = shared(rel);
    let rep = vectors::run_file(&path, 5).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{rel}: {}/{} state, {} cycle counts, {} bus sequences, {} excluded",
        rep.passed,
        rep.total,
        rep.cycles_ok,
        rep.bus_ok,
        rep.excluded.len()
    );
    for (case, why) in &rep.excluded {
        println!("  excluded {case}: {why}");
    }
    assert!(rep.total > 0, "{rel}: no cases");
    assert!(
        rep.failed == 0,
        "{rel}: {} of {} cases differ; first: {:#?}",
        rep.failed,
        rep.total,
        rep.failures
    );
    assert_eq!(rep.cycles_ok, rep.total, "{rel}: clock counts differ");
    assert_eq!(rep.bus_ok, rep.total, "{rel}: bus cycle sequences differ");
}

macro_rules! vector_files {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check($file);
            }
        )*
    };
}

vector_files! {
    m68000_abcd => "m68000/v1/ABCD.json.bin.gz",
    m68000_add_b => "m68000/v1/ADD.b.json.bin.gz",
    m68000_add_l => "m68000/v1/ADD.l.json.bin.gz",
    m68000_add_w => "m68000/v1/ADD.w.json.bin.gz",
    m68000_adda_l => "m68000/v1/ADDA.l.json.bin.gz",
    m68000_adda_w => "m68000/v1/ADDA.w.json.bin.gz",
    m68000_addx_b => "m68000/v1/ADDX.b.json.bin.gz",
    m68000_addx_l => "m68000/v1/ADDX.l.json.bin.gz",
    m68000_addx_w => "m68000/v1/ADDX.w.json.bin.gz",
    m68000_and_b => "m68000/v1/AND.b.json.bin.gz",
    m68000_and_l => "m68000/v1/AND.l.json.bin.gz",
    m68000_and_w => "m68000/v1/AND.w.json.bin.gz",
    m68000_anditoccr => "m68000/v1/ANDItoCCR.json.bin.gz",
    m68000_anditosr => "m68000/v1/ANDItoSR.json.bin.gz",
    m68000_asl_b => "m68000/v1/ASL.b.json.bin.gz",
    m68000_asl_l => "m68000/v1/ASL.l.json.bin.gz",
    m68000_asl_w => "m68000/v1/ASL.w.json.bin.gz",
    m68000_asr_b => "m68000/v1/ASR.b.json.bin.gz",
    m68000_asr_l => "m68000/v1/ASR.l.json.bin.gz",
    m68000_asr_w => "m68000/v1/ASR.w.json.bin.gz",
    m68000_bchg => "m68000/v1/BCHG.json.bin.gz",
    m68000_bclr => "m68000/v1/BCLR.json.bin.gz",
    m68000_bset => "m68000/v1/BSET.json.bin.gz",
    m68000_bsr => "m68000/v1/BSR.json.bin.gz",
    m68000_btst => "m68000/v1/BTST.json.bin.gz",
    m68000_bcc => "m68000/v1/Bcc.json.bin.gz",
    m68000_chk => "m68000/v1/CHK.json.bin.gz",
    m68000_clr_b => "m68000/v1/CLR.b.json.bin.gz",
    m68000_clr_l => "m68000/v1/CLR.l.json.bin.gz",
    m68000_clr_w => "m68000/v1/CLR.w.json.bin.gz",
    m68000_cmp_b => "m68000/v1/CMP.b.json.bin.gz",
    m68000_cmp_l => "m68000/v1/CMP.l.json.bin.gz",
    m68000_cmp_w => "m68000/v1/CMP.w.json.bin.gz",
    m68000_cmpa_l => "m68000/v1/CMPA.l.json.bin.gz",
    m68000_cmpa_w => "m68000/v1/CMPA.w.json.bin.gz",
    m68000_dbcc => "m68000/v1/DBcc.json.bin.gz",
    m68000_divs => "m68000/v1/DIVS.json.bin.gz",
    m68000_divu => "m68000/v1/DIVU.json.bin.gz",
    m68000_eor_b => "m68000/v1/EOR.b.json.bin.gz",
    m68000_eor_l => "m68000/v1/EOR.l.json.bin.gz",
    m68000_eor_w => "m68000/v1/EOR.w.json.bin.gz",
    m68000_eoritoccr => "m68000/v1/EORItoCCR.json.bin.gz",
    m68000_eoritosr => "m68000/v1/EORItoSR.json.bin.gz",
    m68000_exg => "m68000/v1/EXG.json.bin.gz",
    m68000_ext_l => "m68000/v1/EXT.l.json.bin.gz",
    m68000_ext_w => "m68000/v1/EXT.w.json.bin.gz",
    m68000_illegal_linea => "m68000/v1/ILLEGAL_LINEA.json.bin.gz",
    m68000_illegal_linef => "m68000/v1/ILLEGAL_LINEF.json.bin.gz",
    m68000_jmp => "m68000/v1/JMP.json.bin.gz",
    m68000_jsr => "m68000/v1/JSR.json.bin.gz",
    m68000_lea => "m68000/v1/LEA.json.bin.gz",
    m68000_link => "m68000/v1/LINK.json.bin.gz",
    m68000_lsl_b => "m68000/v1/LSL.b.json.bin.gz",
    m68000_lsl_l => "m68000/v1/LSL.l.json.bin.gz",
    m68000_lsl_w => "m68000/v1/LSL.w.json.bin.gz",
    m68000_lsr_b => "m68000/v1/LSR.b.json.bin.gz",
    m68000_lsr_l => "m68000/v1/LSR.l.json.bin.gz",
    m68000_lsr_w => "m68000/v1/LSR.w.json.bin.gz",
    m68000_move_b => "m68000/v1/MOVE.b.json.bin.gz",
    m68000_move_l => "m68000/v1/MOVE.l.json.bin.gz",
    m68000_move_q => "m68000/v1/MOVE.q.json.bin.gz",
    m68000_move_w => "m68000/v1/MOVE.w.json.bin.gz",
    m68000_movea_l => "m68000/v1/MOVEA.l.json.bin.gz",
    m68000_movea_w => "m68000/v1/MOVEA.w.json.bin.gz",
    m68000_movem_l => "m68000/v1/MOVEM.l.json.bin.gz",
    m68000_movem_w => "m68000/v1/MOVEM.w.json.bin.gz",
    m68000_movep_l => "m68000/v1/MOVEP.l.json.bin.gz",
    m68000_movep_w => "m68000/v1/MOVEP.w.json.bin.gz",
    m68000_movefromsr => "m68000/v1/MOVEfromSR.json.bin.gz",
    m68000_movefromusp => "m68000/v1/MOVEfromUSP.json.bin.gz",
    m68000_movetoccr => "m68000/v1/MOVEtoCCR.json.bin.gz",
    m68000_movetosr => "m68000/v1/MOVEtoSR.json.bin.gz",
    m68000_movetousp => "m68000/v1/MOVEtoUSP.json.bin.gz",
    m68000_muls => "m68000/v1/MULS.json.bin.gz",
    m68000_mulu => "m68000/v1/MULU.json.bin.gz",
    m68000_nbcd => "m68000/v1/NBCD.json.bin.gz",
    m68000_neg_b => "m68000/v1/NEG.b.json.bin.gz",
    m68000_neg_l => "m68000/v1/NEG.l.json.bin.gz",
    m68000_neg_w => "m68000/v1/NEG.w.json.bin.gz",
    m68000_negx_b => "m68000/v1/NEGX.b.json.bin.gz",
    m68000_negx_l => "m68000/v1/NEGX.l.json.bin.gz",
    m68000_negx_w => "m68000/v1/NEGX.w.json.bin.gz",
    m68000_nop => "m68000/v1/NOP.json.bin.gz",
    m68000_not_b => "m68000/v1/NOT.b.json.bin.gz",
    m68000_not_l => "m68000/v1/NOT.l.json.bin.gz",
    m68000_not_w => "m68000/v1/NOT.w.json.bin.gz",
    m68000_or_b => "m68000/v1/OR.b.json.bin.gz",
    m68000_or_l => "m68000/v1/OR.l.json.bin.gz",
    m68000_or_w => "m68000/v1/OR.w.json.bin.gz",
    m68000_oritoccr => "m68000/v1/ORItoCCR.json.bin.gz",
    m68000_oritosr => "m68000/v1/ORItoSR.json.bin.gz",
    m68000_pea => "m68000/v1/PEA.json.bin.gz",
    m68000_reset => "m68000/v1/RESET.json.bin.gz",
    m68000_rol_b => "m68000/v1/ROL.b.json.bin.gz",
    m68000_rol_l => "m68000/v1/ROL.l.json.bin.gz",
    m68000_rol_w => "m68000/v1/ROL.w.json.bin.gz",
    m68000_ror_b => "m68000/v1/ROR.b.json.bin.gz",
    m68000_ror_l => "m68000/v1/ROR.l.json.bin.gz",
    m68000_ror_w => "m68000/v1/ROR.w.json.bin.gz",
    m68000_roxl_b => "m68000/v1/ROXL.b.json.bin.gz",
    m68000_roxl_l => "m68000/v1/ROXL.l.json.bin.gz",
    m68000_roxl_w => "m68000/v1/ROXL.w.json.bin.gz",
    m68000_roxr_b => "m68000/v1/ROXR.b.json.bin.gz",
    m68000_roxr_l => "m68000/v1/ROXR.l.json.bin.gz",
    m68000_roxr_w => "m68000/v1/ROXR.w.json.bin.gz",
    m68000_rte => "m68000/v1/RTE.json.bin.gz",
    m68000_rtr => "m68000/v1/RTR.json.bin.gz",
    m68000_rts => "m68000/v1/RTS.json.bin.gz",
    m68000_sbcd => "m68000/v1/SBCD.json.bin.gz",
    m68000_stop => "m68000/v1/STOP.json.bin.gz",
    m68000_sub_b => "m68000/v1/SUB.b.json.bin.gz",
    m68000_sub_l => "m68000/v1/SUB.l.json.bin.gz",
    m68000_sub_w => "m68000/v1/SUB.w.json.bin.gz",
    m68000_suba_l => "m68000/v1/SUBA.l.json.bin.gz",
    m68000_suba_w => "m68000/v1/SUBA.w.json.bin.gz",
    m68000_subx_b => "m68000/v1/SUBX.b.json.bin.gz",
    m68000_subx_l => "m68000/v1/SUBX.l.json.bin.gz",
    m68000_subx_w => "m68000/v1/SUBX.w.json.bin.gz",
    m68000_swap => "m68000/v1/SWAP.json.bin.gz",
    m68000_scc => "m68000/v1/Scc.json.bin.gz",
    m68000_tas => "m68000/v1/TAS.json.bin.gz",
    m68000_trap => "m68000/v1/TRAP.json.bin.gz",
    m68000_trapv => "m68000/v1/TRAPV.json.bin.gz",
    m68000_tst_b => "m68000/v1/TST.b.json.bin.gz",
    m68000_tst_l => "m68000/v1/TST.l.json.bin.gz",
    m68000_tst_w => "m68000/v1/TST.w.json.bin.gz",
    m68000_unlink => "m68000/v1/UNLINK.json.bin.gz",
    harte_exg => "680x0-samples/EXG.json.gz",
    harte_nop => "680x0-samples/NOP.json.gz",
}
