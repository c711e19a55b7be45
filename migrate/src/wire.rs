//! Length-prefixed frames for network mode (`talos migrate serve/send`).
//!
//! A frame is `kind (1 byte) || length (u32, big-endian) || payload`. The
//! length is checked against the limit for the kind **before** anything is
//! allocated or read, so a peer cannot make the reader buffer more than
//! [`MAX_CONTROL_FRAME`] (messages) or [`MAX_CHUNK`] (state chunks). Reads
//! and writes on sockets configured by [`configure`] time out; a timeout
//! becomes [`Error::Timeout`], a connection closed mid-frame
//! [`Error::ConnectionClosed`].
//!
//! A state travels as [`FrameKind::StateChunk`] frames followed by one
//! [`FrameKind::StateEnd`] frame holding the total length (u64, big-endian),
//! so a stream cut short is detected even before the state digest is
//! recomputed. The receiver enforces a total size limit and a deadline.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::message::MAX_MESSAGE_LEN;

/// Largest payload of a non-chunk frame (a message, hello or verdict).
pub const MAX_CONTROL_FRAME: usize = MAX_MESSAGE_LEN;
/// Largest payload of one state chunk frame.
pub const MAX_CHUNK: usize = 1024 * 1024;
/// The payload of the [`FrameKind::Hello`] frame both sides send first.
pub const HELLO: &[u8] = b"talos-migrate/1";
/// Default socket timeout for network mode.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Protocol greeting, payload [`HELLO`].
    Hello,
    /// One encoded message (challenge, bundle, receipt, release, reference).
    Message,
    /// A piece of the state.
    StateChunk,
    /// End of the state: payload is the total length (u64 BE).
    StateEnd,
    /// A verdict: payload is a UTF-8 rejection or status code.
    Verdict,
}

impl FrameKind {
    /// The kind byte.
    pub fn tag(self) -> u8 {
        match self {
            FrameKind::Hello => 1,
            FrameKind::Message => 2,
            FrameKind::StateChunk => 3,
            FrameKind::StateEnd => 4,
            FrameKind::Verdict => 5,
        }
    }

    /// The kind for a byte.
    pub fn from_tag(t: u8) -> Option<FrameKind> {
        [
            FrameKind::Hello,
            FrameKind::Message,
            FrameKind::StateChunk,
            FrameKind::StateEnd,
            FrameKind::Verdict,
        ]
        .into_iter()
        .find(|k| k.tag() == t)
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            FrameKind::Hello => "hello",
            FrameKind::Message => "message",
            FrameKind::StateChunk => "state-chunk",
            FrameKind::StateEnd => "state-end",
            FrameKind::Verdict => "verdict",
        }
    }

    /// The payload limit for this kind.
    pub fn limit(self) -> usize {
        match self {
            FrameKind::StateChunk => MAX_CHUNK,
            FrameKind::StateEnd => 8,
            _ => MAX_CONTROL_FRAME,
        }
    }
}

/// One received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its kind.
    pub kind: FrameKind,
    /// Its payload (at most the kind's limit).
    pub payload: Vec<u8>,
}

fn io_err(op: &'static str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Error::Timeout(op),
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe => Error::ConnectionClosed(op),
        _ => Error::Net { op, source: e },
    }
}

/// Write one frame.
///
/// # Errors
/// [`Error::FrameTooLarge`] when `payload` exceeds the kind's limit (nothing
/// is written); timeouts and network errors.
pub fn write_frame<W: Write + ?Sized>(w: &mut W, kind: FrameKind, payload: &[u8]) -> Result<()> {
    if payload.len() > kind.limit() {
        return Err(Error::FrameTooLarge {
            len: payload.len() as u64,
            max: kind.limit() as u64,
        });
    }
    let len = u32::try_from(payload.len()).map_err(|_| Error::FrameTooLarge {
        len: payload.len() as u64,
        max: u64::from(u32::MAX),
    })?;
    let mut header = [0u8; 5];
    header[0] = kind.tag();
    header[1..].copy_from_slice(&len.to_be_bytes());
    w.write_all(&header)
        .and_then(|()| w.write_all(payload))
        .map_err(|e| io_err("sending a frame", e))
}

/// Read one frame, refusing (before reading the payload) a length over
/// `max_len` or over the kind's own limit.
///
/// # Errors
/// [`Error::FrameTooLarge`], [`Error::Malformed`] (unknown kind),
/// [`Error::Timeout`], [`Error::ConnectionClosed`], network errors.
pub fn read_frame<R: Read + ?Sized>(r: &mut R, max_len: usize) -> Result<Frame> {
    let mut payload = Vec::new();
    let kind = read_frame_into(r, max_len, &mut payload)?;
    Ok(Frame { kind, payload })
}

/// [`read_frame`] into a buffer the caller reuses (a state stream of many
/// 1 MiB chunks then allocates once, not once per chunk). `buf` holds the
/// payload afterwards.
///
/// # Errors
/// As [`read_frame`].
pub fn read_frame_into<R: Read + ?Sized>(
    r: &mut R,
    max_len: usize,
    buf: &mut Vec<u8>,
) -> Result<FrameKind> {
    let mut header = [0u8; 5];
    r.read_exact(&mut header)
        .map_err(|e| io_err("reading a frame header", e))?;
    let [tag, l0, l1, l2, l3] = header;
    let kind = FrameKind::from_tag(tag)
        .ok_or_else(|| Error::malformed("frame", format!("unknown frame kind {tag}")))?;
    let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    let max = max_len.min(kind.limit());
    if len > max {
        return Err(Error::FrameTooLarge {
            len: len as u64,
            max: max as u64,
        });
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)
        .map_err(|e| io_err("reading a frame payload", e))?;
    Ok(kind)
}

/// Read one frame of kind `kind` and return its payload.
///
/// # Errors
/// [`Error::UnexpectedFrame`] for another kind, else as [`read_frame`].
pub fn expect_frame<R: Read + ?Sized>(r: &mut R, kind: FrameKind) -> Result<Vec<u8>> {
    let f = read_frame(r, kind.limit())?;
    if f.kind != kind {
        return Err(Error::UnexpectedFrame {
            expected: kind.name(),
            got: f.kind.name().to_owned(),
        });
    }
    Ok(f.payload)
}

/// Send the greeting frame.
///
/// # Errors
/// As [`write_frame`].
pub fn send_hello<W: Write + ?Sized>(w: &mut W) -> Result<()> {
    write_frame(w, FrameKind::Hello, HELLO)
}

/// Read the peer's greeting and check the protocol version.
///
/// # Errors
/// [`Error::Malformed`] for another protocol, else as [`expect_frame`].
pub fn expect_hello<R: Read + ?Sized>(r: &mut R) -> Result<()> {
    let p = expect_frame(r, FrameKind::Hello)?;
    if p != HELLO {
        return Err(Error::malformed(
            "hello",
            format!(
                "peer speaks {:?}, this is talos-migrate/1",
                String::from_utf8_lossy(&p)
            ),
        ));
    }
    Ok(())
}

/// Stream all of `src` as state chunks of at most `chunk` bytes (clamped to
/// 1..=[`MAX_CHUNK`]) followed by the end frame. Returns the byte count.
///
/// # Errors
/// Read errors of `src` as [`Error::Io`]; network errors.
pub fn send_state<R: Read + ?Sized, W: Write + ?Sized>(
    src: &mut R,
    w: &mut W,
    chunk: usize,
) -> Result<u64> {
    let mut buf = vec![0u8; chunk.clamp(1, MAX_CHUNK)];
    let mut total: u64 = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading", "state", e)),
        };
        write_frame(w, FrameKind::StateChunk, buf.get(..n).unwrap_or_default())?;
        total = total.saturating_add(n as u64);
    }
    write_frame(w, FrameKind::StateEnd, &total.to_be_bytes())?;
    w.flush().map_err(|e| io_err("sending the state", e))?;
    Ok(total)
}

/// Receive a streamed state into `dst`: at most `max_total` bytes, finished
/// before `deadline`, and exactly the length the end frame announces.
/// Returns the byte count.
///
/// # Errors
/// [`Error::FrameTooLarge`] past `max_total`, [`Error::Timeout`] past the
/// deadline, [`Error::Malformed`] on a length mismatch,
/// [`Error::UnexpectedFrame`], network errors, write errors of `dst`.
pub fn recv_state<R: Read + ?Sized, W: Write + ?Sized>(
    r: &mut R,
    dst: &mut W,
    max_total: u64,
    deadline: Instant,
) -> Result<u64> {
    let mut total: u64 = 0;
    loop {
        if Instant::now() >= deadline {
            return Err(Error::Timeout("receiving the state"));
        }
        let f = read_frame(r, MAX_CHUNK)?;
        match f.kind {
            FrameKind::StateChunk => {
                total = total.saturating_add(f.payload.len() as u64);
                if total > max_total {
                    return Err(Error::FrameTooLarge {
                        len: total,
                        max: max_total,
                    });
                }
                dst.write_all(&f.payload)
                    .map_err(|e| Error::io("writing", "received state", e))?;
            }
            FrameKind::StateEnd => {
                let announced: [u8; 8] = f
                    .payload
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::malformed("state end", "payload is not 8 bytes"))?;
                let announced = u64::from_be_bytes(announced);
                if announced != total {
                    return Err(Error::malformed(
                        "state",
                        format!("received {total} bytes, sender announced {announced}"),
                    ));
                }
                dst.flush()
                    .map_err(|e| Error::io("writing", "received state", e))?;
                return Ok(total);
            }
            other => {
                return Err(Error::UnexpectedFrame {
                    expected: "state-chunk or state-end",
                    got: other.name().to_owned(),
                });
            }
        }
    }
}

/// Set read and write timeouts and disable Nagle on a socket.
///
/// # Errors
/// Network errors.
pub fn configure(stream: &TcpStream, timeout: Duration) -> Result<()> {
    let t = Some(timeout.max(Duration::from_millis(1)));
    stream
        .set_read_timeout(t)
        .and_then(|()| stream.set_write_timeout(t))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| Error::Net {
            op: "configuring the socket",
            source: e,
        })
}

/// Connect to `addr` within `timeout` (per resolved address) and
/// [`configure`] the socket with the same timeout.
///
/// # Errors
/// Resolution, timeout and connection errors.
pub fn connect<A: ToSocketAddrs>(addr: A, timeout: Duration) -> Result<TcpStream> {
    let addrs = addr.to_socket_addrs().map_err(|e| Error::Net {
        op: "resolving the address",
        source: e,
    })?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                configure(&s, timeout)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => io_err("connecting", e),
        None => Error::BadArgument("address resolves to nothing".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let client = connect(addr, Duration::from_secs(5)).unwrap();
        let (server, _) = l.accept().unwrap();
        configure(&server, Duration::from_secs(5)).unwrap();
        (client, server)
    }

    #[test]
    fn frames_and_state_round_trip_over_loopback() {
        let (mut c, mut s) = pair();
        let state: Vec<u8> = (0..3 * 1024 * 1024 + 1)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let expected = state.clone();
        let t = thread::spawn(move || {
            send_hello(&mut c).unwrap();
            write_frame(&mut c, FrameKind::Message, b"bundle bytes").unwrap();
            let n = send_state(&mut state.as_slice(), &mut c, 64 * 1024).unwrap();
            assert_eq!(n, state.len() as u64);
            expect_frame(&mut c, FrameKind::Verdict).unwrap()
        });
        expect_hello(&mut s).unwrap();
        assert_eq!(
            expect_frame(&mut s, FrameKind::Message).unwrap(),
            b"bundle bytes"
        );
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let n = recv_state(&mut s, &mut got, 16 * 1024 * 1024, deadline).unwrap();
        assert_eq!(n, expected.len() as u64);
        assert_eq!(got, expected);
        write_frame(&mut s, FrameKind::Verdict, b"accepted").unwrap();
        assert_eq!(t.join().unwrap(), b"accepted");
    }

    #[test]
    fn oversized_length_is_refused_before_reading_the_payload() {
        let (mut c, mut s) = pair();
        // Announce 1 GiB and send nothing more: the reader must fail at once,
        // not wait for (or allocate) the payload.
        c.write_all(&[FrameKind::Message.tag(), 0x40, 0, 0, 0])
            .unwrap();
        let start = Instant::now();
        let e = read_frame(&mut s, MAX_CONTROL_FRAME).unwrap_err();
        assert!(
            matches!(
                e,
                Error::FrameTooLarge {
                    len: 0x4000_0000,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.rejection(), Some(crate::Rejection::Malformed));
        assert!(start.elapsed() < Duration::from_secs(2));
        // A chunk frame may be larger than a control frame, but not past
        // MAX_CHUNK.
        c.write_all(&[FrameKind::StateChunk.tag(), 0, 0x10, 0, 1])
            .unwrap();
        assert!(matches!(
            read_frame(&mut s, usize::MAX),
            Err(Error::FrameTooLarge { .. })
        ));
        // And the writer refuses to send oversized frames at all.
        let big = vec![0u8; MAX_CONTROL_FRAME + 1];
        assert!(matches!(
            write_frame(&mut c, FrameKind::Message, &big),
            Err(Error::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn silent_peer_times_out() {
        let (_c, s) = pair();
        configure(&s, Duration::from_millis(200)).unwrap();
        let start = Instant::now();
        let e = read_frame(&mut &s, MAX_CONTROL_FRAME).unwrap_err();
        assert_eq!(e.code(), "timeout", "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn peer_closing_mid_frame_is_reported() {
        let (mut c, mut s) = pair();
        c.write_all(&[FrameKind::Message.tag(), 0, 0, 0, 10, 1, 2, 3])
            .unwrap();
        drop(c);
        assert_eq!(
            read_frame(&mut s, MAX_CONTROL_FRAME).unwrap_err().code(),
            "connection-closed"
        );
    }

    #[test]
    fn garbage_and_unexpected_frames_are_refused() {
        let (mut c, mut s) = pair();
        c.write_all(&[0xee, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            read_frame(&mut s, MAX_CONTROL_FRAME).unwrap_err().code(),
            "malformed"
        );
        write_frame(&mut c, FrameKind::Verdict, b"x").unwrap();
        assert_eq!(
            expect_frame(&mut s, FrameKind::Message).unwrap_err().code(),
            "unexpected-frame"
        );
        write_frame(&mut c, FrameKind::Hello, b"talos-migrate/9").unwrap();
        assert_eq!(expect_hello(&mut s).unwrap_err().code(), "malformed");
    }

    #[test]
    fn state_limits_length_and_deadline_are_enforced() {
        // Over the total limit.
        let (mut c, mut s) = pair();
        let t = thread::spawn(move || {
            let _ = send_state(&mut [7u8; 5000].as_slice(), &mut c, 1000);
        });
        let e = recv_state(
            &mut s,
            &mut Vec::new(),
            4096,
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(matches!(e, Error::FrameTooLarge { max: 4096, .. }), "{e}");
        t.join().unwrap();

        // Announced length differs from what was sent (truncated stream).
        let (mut c, mut s) = pair();
        write_frame(&mut c, FrameKind::StateChunk, &[1, 2, 3]).unwrap();
        write_frame(&mut c, FrameKind::StateEnd, &4u64.to_be_bytes()).unwrap();
        let e = recv_state(
            &mut s,
            &mut Vec::new(),
            100,
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(e.to_string().contains("announced 4"), "{e}");

        // Deadline already passed.
        let (_c, mut s) = pair();
        let e = recv_state(&mut s, &mut Vec::new(), 100, Instant::now()).unwrap_err();
        assert_eq!(e.code(), "timeout");
    }
}
