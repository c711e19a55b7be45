//! Network mode over loopback TCP: `talos migrate serve --once` against
//! `talos migrate send`, and against a hand-driven hostile peer speaking
//! the `talos_migrate::wire` frames (tampered state in transit, a stream
//! cut short, garbage and oversized frames).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod migrate_common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use migrate_common::*;
use talos_migrate::wire::{self, FrameKind};

/// A running `serve --once` and the address it listens on.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(w: &World, host: &str, binary: &std::path::Path) -> Server {
        let mut child = Command::new(talos_bin())
            .args(["migrate", "serve", "--state-dir", &w.dir(host)])
            .args(["--listen", "127.0.0.1:0", "--once", "--timeout", "10"])
            .args(["--format", "json", "--binary", binary.to_str().unwrap()])
            .env_remove("TALOS_FAILPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("talos: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        });
        Server { child, addr }
    }

    /// Wait for the verdict of its one exchange.
    fn finish(self) -> (i32, serde_json::Value) {
        let out = self.child.wait_with_output().unwrap();
        parse(&out)
    }
}

fn send(w: &World, host: &str, addr: &str, dump: &std::path::Path) -> (i32, serde_json::Value) {
    w.run(
        host,
        &[
            "send",
            "--to",
            addr,
            "--app",
            APP,
            "--reference",
            &w.s("ref"),
            "--dump",
            dump.to_str().unwrap(),
            "--timeout",
            "10",
        ],
    )
}

#[test]
fn serve_and_send_migrate_over_loopback_then_a_replay_is_refused() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    let core = c.core("sk.gcore-7f.core");
    let server = Server::start(&w, "t", &c.sk_bin());
    let (code, v) = send(&w, "s", &server.addr, &core);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (0, Some("accepted")),
        "{v:#}"
    );
    assert_eq!(v["epoch"], 1);
    let (code, sv) = server.finish();
    assert_eq!(
        (code, sv["verdict"].as_str()),
        (0, Some("accepted")),
        "{sv:#}"
    );
    // The state arrived byte for byte.
    let kept = sv["state-file"].as_str().unwrap();
    assert_eq!(std::fs::read(kept).unwrap(), std::fs::read(&core).unwrap());
    assert_eq!(w.app_status("s"), "migrated-away");
    assert_eq!(w.app_status("t"), "launched");

    // The same migration again: the source has nothing left to send.
    let server = Server::start(&w, "t", &c.sk_bin());
    let (code, v) = send(&w, "s", &server.addr, &core);
    assert_rejected(code, &v, "migrated-away");
    let (code, sv) = server.finish();
    assert_rejected(code, &sv, "migrated-away");
    assert_eq!(sv["by"], "peer");
    assert_eq!(w.status("t")["accepted"].as_array().unwrap().len(), 1);
    assert_eq!(w.running_hosts(&["s", "t"]), 1);
}

fn connect(addr: &str) -> TcpStream {
    let mut s = wire::connect(addr, Duration::from_secs(10)).unwrap();
    wire::send_hello(&mut s).unwrap();
    wire::expect_hello(&mut s).unwrap();
    s
}

#[test]
fn a_state_tampered_in_transit_is_state_mismatch_and_the_target_keeps_nothing() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    let core = c.core("sk.gcore-7f.core");
    let server = Server::start(&w, "t", &c.sk_bin());
    // A source that seals honestly but streams another state.
    let mut s = connect(&server.addr);
    wire::write_frame(
        &mut s,
        FrameKind::Message,
        &std::fs::read(w.p("ref")).unwrap(),
    )
    .unwrap();
    let chal = wire::expect_frame(&mut s, FrameKind::Message).unwrap();
    std::fs::write(w.p("net-chal"), &chal).unwrap();
    let (code, v) = w.seal("s", "net-chal", &core, "net-bundle");
    assert_eq!(code, 0, "{v}");
    let bundle = std::fs::read(w.p("net-bundle")).unwrap();
    wire::write_frame(&mut s, FrameKind::Message, &bundle).unwrap();
    let mut state = std::fs::read(&core).unwrap();
    let mid = writable_offset(&core) as usize;
    state[mid] ^= 0xff;
    wire::send_state(&mut state.as_slice(), &mut s, 1 << 20).unwrap();
    let verdict = wire::expect_frame(&mut s, FrameKind::Verdict).unwrap();
    assert_eq!(verdict, b"state-mismatch");
    drop(s);
    let (code, sv) = server.finish();
    assert_rejected(code, &sv, "state-mismatch");
    let inbox: Vec<_> = std::fs::read_dir(format!("{}/inbox", w.dir("t")))
        .unwrap()
        .collect();
    assert!(inbox.is_empty(), "a refused state must not be kept");
    assert_eq!(w.app_status("t"), "absent");
    assert_eq!(w.app_status("s"), "frozen");
}

/// Start a server on `t`, let `talk` speak on the connection, and check
/// that the server answers and ends with the rejection `reason`.
fn assert_server_refuses(w: &World, c: &Corpus, reason: &str, talk: impl FnOnce(&mut TcpStream)) {
    let server = Server::start(w, "t", &c.sk_bin());
    let mut s = connect(&server.addr);
    talk(&mut s);
    assert_eq!(
        wire::expect_frame(&mut s, FrameKind::Verdict).unwrap(),
        reason.as_bytes()
    );
    let (code, sv) = server.finish();
    assert_rejected(code, &sv, reason);
}

#[test]
fn garbage_oversized_cut_short_and_unpinned_are_refused() {
    let c = corpus_or_skip!();
    let w = World::sk(c, &["s", "t"]);
    // An unknown frame kind instead of the reference.
    assert_server_refuses(&w, c, "malformed", |s| {
        s.write_all(&[0xee, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    });

    // A reference by an owner the target has not pinned earns no challenge.
    w.unpinned_reference(c, "owner2", "ref2");
    assert_server_refuses(&w, c, "untrusted-key", |s| {
        wire::write_frame(s, FrameKind::Message, &std::fs::read(w.p("ref2")).unwrap()).unwrap();
    });
    assert!(w.status("t")["pending"].as_array().unwrap().is_empty());

    // A message frame announcing 1 GiB: refused before it is read.
    assert_server_refuses(&w, c, "malformed", |s| {
        s.write_all(&[FrameKind::Message.tag(), 0x40, 0, 0, 0])
            .unwrap();
    });

    // Garbage bytes in a well-formed message frame.
    assert_server_refuses(&w, c, "malformed", |s| {
        wire::write_frame(s, FrameKind::Message, b"TALOSMSG\x01\x01 not a reference").unwrap();
    });

    // A state stream that announces more bytes than it sent.
    assert_server_refuses(&w, c, "malformed", |s| {
        wire::write_frame(s, FrameKind::Message, &std::fs::read(w.p("ref")).unwrap()).unwrap();
        let chal = wire::expect_frame(s, FrameKind::Message).unwrap();
        std::fs::write(w.p("c"), &chal).unwrap();
        let (code, v) = w.seal("s", "c", &c.core("sk.gcore-7f.core"), "b");
        assert_eq!(code, 0, "{v}");
        wire::write_frame(s, FrameKind::Message, &std::fs::read(w.p("b")).unwrap()).unwrap();
        wire::write_frame(s, FrameKind::StateChunk, &[1, 2, 3]).unwrap();
        wire::write_frame(s, FrameKind::StateEnd, &4u64.to_be_bytes()).unwrap();
    });
    assert_eq!(w.app_status("t"), "absent");
}
