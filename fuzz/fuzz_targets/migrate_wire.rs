//! talos-migrate network mode: the frame reader, the greeting and the state
//! receiver on an arbitrary byte stream from a peer. Whatever the bytes, the
//! reader must stop with an error or a bounded result, and a received state
//! is never longer than the cap nor different from what the end frame
//! announced.
#![no_main]

use std::io::Cursor;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use talos_migrate::wire;

const CAP: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // As the target reads a connection: greeting, then control frames.
    let mut r = Cursor::new(data);
    if wire::expect_hello(&mut r).is_ok() {
        for _ in 0..8 {
            match wire::read_frame(&mut r, wire::MAX_CONTROL_FRAME) {
                Ok(f) => assert!(f.payload.len() <= f.kind.limit()),
                Err(_) => break,
            }
        }
    }
    // As the state receiver reads the streamed state.
    let mut r = Cursor::new(data);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    if let Ok(n) = wire::recv_state(&mut r, &mut out, CAP, deadline) {
        assert_eq!(n, out.len() as u64);
        assert!(n <= CAP);
    }
});
