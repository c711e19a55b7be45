//! Sequential x86 decoding with one iced decoder per run.

use iced_x86::{Decoder as IcedDecoder, DecoderOptions};

use super::X86Decoder;
use crate::arch::{Cursor, Insn};

/// Decodes a run of instructions with one iced decoder: the decoder is a
/// few hundred bytes of handler tables, and setting one up for each
/// instruction cost more than decoding it.
pub(super) struct X86Cursor<'b> {
    owner: &'b X86Decoder,
    iced: IcedDecoder<'b>,
}

impl<'b> X86Cursor<'b> {
    pub(super) fn new(owner: &'b X86Decoder, bytes: &'b [u8], addr: u64) -> Self {
        X86Cursor {
            owner,
            iced: IcedDecoder::with_ip(owner.bitness, bytes, addr, DecoderOptions::NONE),
        }
    }
}

impl Cursor for X86Cursor<'_> {
    fn next(&mut self, _prev: Option<&Insn>) -> Option<Insn> {
        if !self.iced.can_decode() {
            return None;
        }
        // An instruction that runs past the bytes is invalid here as it is
        // for `decode` (iced reads at most 15 bytes either way).
        let ins = self.iced.decode();
        if ins.is_invalid() {
            return None;
        }
        self.owner.insn_of(&ins)
    }
}
