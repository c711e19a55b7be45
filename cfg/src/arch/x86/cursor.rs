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
    bytes: &'b [u8],
    /// Whether the last instruction decoded is padding.
    padding: bool,
}

impl<'b> X86Cursor<'b> {
    pub(super) fn new(owner: &'b X86Decoder, bytes: &'b [u8], addr: u64) -> Self {
        X86Cursor {
            owner,
            iced: IcedDecoder::with_ip(owner.bitness, bytes, addr, DecoderOptions::NONE),
            bytes,
            padding: false,
        }
    }
}

impl Cursor for X86Cursor<'_> {
    fn next(&mut self, _prev: Option<&Insn>) -> Option<Insn> {
        self.padding = false;
        if !self.iced.can_decode() {
            return None;
        }
        let at = self.iced.position();
        // An instruction that runs past the bytes is invalid here as it is
        // for `decode` (iced reads at most 15 bytes either way).
        let ins = self.iced.decode();
        if ins.is_invalid() {
            return None;
        }
        let insn = self.owner.insn_of(&ins)?;
        // As `is_padding` decides it, from the same decoded instruction.
        self.padding = self.bytes.get(at..).and_then(|b| b.get(..2)) == Some(&[0, 0])
            || self.owner.padding_of(&ins);
        Some(insn)
    }

    fn is_padding(&self) -> bool {
        self.padding
    }
}
