//! The ELF core reader (program headers, notes, NT_FILE, NT_PRSTATUS,
//! NT_AUXV) and everything that runs on what it reads: module discovery,
//! the in-memory ELF header and build-id, byte comparison, GOT checks, CFI
//! unwinding and the flow checks, then the snapshot writer.
//!
//! Every file a mapping names resolves to /bin/true (a real binary with
//! .eh_frame, a GOT and init/fini arrays), so the checks run on real code
//! against arbitrary memory. Properties: never a panic; every region holds
//! at most its length in bytes; a dump that was read writes a core that
//! reads back with the same regions.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/dump.rs"]
mod dump;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = talos_introspect::core::parse(data) else {
        return;
    };
    dump::check_regions(&d);
    dump::check_verify(&d, &dump::resolver());
    let mut out = Vec::new();
    if talos_introspect::snapshot::write_core(&d, &mut out).is_ok() {
        let again = talos_introspect::core::parse(&out).expect("a written core reads back");
        assert_eq!(again.regions.len(), d.regions.len());
        for (a, b) in again.regions.iter().zip(&d.regions) {
            assert_eq!((a.start, a.end, &a.bytes), (b.start, b.end, &b.bytes));
        }
        assert_eq!(again.threads.len(), d.threads.len());
    }
});
