//! Disassembler (debugging aid).
