//! The portable packet pipe against the running kernel's, side by side:
//! every scenario runs on both through [`PipePair`] and must give the same
//! results, errno for errno and byte for byte.
//!
//! The three LTP checks are a port of `testcases/kernel/syscalls/pipe2/
//! pipe2_03.c` (Yang Xu, 2020): one packet per write and per read, a write
//! over PIPE_BUF split into packets, a short read discarding the rest of
//! its packet. LTP forks a reader; here one thread does both sides with
//! non-blocking ends where the order matters, which the kernel allows.
//!
//! A kernel without packet pipes (before 3.4) makes these tests print why
//! and return; this machine's kernel has them.

use klab_uapi::pipe::{HostPair, PipeConfig, PipeFlags, PipePair, PortablePair, host};
use proptest::prelude::*;
use rustix::io::Errno;

/// The kernel splits packets at the page size (PIPE_BUF is 4096 on every
/// Linux; it equals the page size on x86).
fn page() -> usize {
    rustix::param::page_size()
}

/// Both pipes with the same flags, or `None` (with a message) when the
/// kernel has no packet pipes.
fn pairs(flags: PipeFlags) -> Option<(HostPair, PortablePair)> {
    match HostPair::new(flags) {
        Ok(h) => Some((h, PortablePair::new(PipeConfig::host(), flags))),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

#[track_caller]
fn read_n(p: &mut dyn PipePair, n: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; n];
    let got = p.read(&mut buf)?;
    buf.truncate(got);
    Ok(buf)
}

/// Runs `scenario` on both pipes and requires identical transcripts.
#[track_caller]
fn same_on_both<T: std::fmt::Debug + PartialEq>(
    flags: PipeFlags,
    scenario: impl Fn(&mut dyn PipePair) -> T,
) -> Option<T> {
    let (mut h, mut p) = pairs(flags)?;
    let kernel = scenario(&mut h);
    let portable = scenario(&mut p);
    assert_eq!(portable, kernel, "portable pipe differs from the kernel's");
    Some(kernel)
}

const PACKET_NONBLOCK: PipeFlags = PipeFlags {
    packet: true,
    nonblock: true,
};

#[test]
fn ltp_check_peer_rw_one_packet_per_write_and_per_read() {
    let t = same_on_both(PACKET_NONBLOCK, |p| {
        let pipe_size = p.pipe_size().unwrap();
        let packet_num = pipe_size / page();
        let writes: Vec<_> = (0..packet_num).map(|_| p.write(b"x")).collect();
        let extra = p.write(b"x");
        let reads: Vec<_> = (0..packet_num)
            .map(|_| read_n(p, pipe_size).map(|v| v.len()))
            .collect();
        (pipe_size, writes, extra, reads)
    });
    if let Some((pipe_size, writes, extra, reads)) = t {
        assert_eq!(pipe_size, 16 * page(), "16 buffers by default");
        assert!(writes.iter().all(|w| *w == Ok(1)));
        assert_eq!(
            extra,
            Err(Errno::AGAIN),
            "the 17th one-byte packet does not fit"
        );
        assert!(
            reads.iter().all(|r| *r == Ok(1)),
            "each read returns one packet"
        );
    }
}

#[test]
fn ltp_check_split_a_write_over_pipe_buf_is_two_packets() {
    let t = same_on_both(PACKET_NONBLOCK, |p| {
        let w = p.write(&vec![b'x'; 2 * page()]);
        let size = p.pipe_size().unwrap();
        let r1 = read_n(p, size).map(|v| v.len());
        let r2 = read_n(p, size).map(|v| v.len());
        let r3 = read_n(p, size).map(|v| v.len());
        (w, r1, r2, r3)
    });
    if let Some((w, r1, r2, r3)) = t {
        assert_eq!(w, Ok(2 * page()));
        assert_eq!((r1, r2), (Ok(page()), Ok(page())));
        assert_eq!(r3, Err(Errno::AGAIN));
    }
}

#[test]
fn ltp_check_discard_a_short_read_drops_the_rest_of_the_packet() {
    let t = same_on_both(PACKET_NONBLOCK, |p| {
        p.write(&vec![b'x'; page()]).unwrap();
        p.write(b"1").unwrap();
        let first = read_n(p, 20);
        let second = read_n(p, 20);
        (first, second)
    });
    if let Some((first, second)) = t {
        assert_eq!(first, Ok(vec![b'x'; 20]));
        assert_eq!(second, Ok(b"1".to_vec()));
    }
}

#[test]
fn zero_length_writes_make_no_packet() {
    let t = same_on_both(PACKET_NONBLOCK, |p| {
        let w = p.write(b"");
        let queued = p.bytes_queued();
        let r = read_n(p, 10);
        p.close_reader();
        let w_no_reader = p.write(b"");
        let w_epipe = p.write(b"x");
        (w, queued, r, w_no_reader, w_epipe)
    });
    if let Some(t) = t {
        assert_eq!(
            t,
            (Ok(0), Ok(0), Err(Errno::AGAIN), Ok(0), Err(Errno::PIPE))
        );
    }
}

#[test]
fn capacity_follows_f_setpipe_sz_in_packets() {
    let t = same_on_both(PACKET_NONBLOCK, |p| {
        let sizes = [0, 5000, 3 * page()].map(|s| p.set_pipe_size(s));
        let writes: Vec<_> = (0..5).map(|i| p.write(&[i; 3])).collect();
        let shrink = p.set_pipe_size(page());
        let queued = p.bytes_queued();
        (sizes, writes, shrink, queued)
    });
    if let Some((sizes, writes, shrink, queued)) = t {
        let pg = page();
        assert_eq!(
            sizes,
            [Ok(pg), Ok(2 * pg), Ok(4 * pg)],
            "rounded to powers of two pages"
        );
        assert_eq!(writes, [Ok(3), Ok(3), Ok(3), Ok(3), Err(Errno::AGAIN)]);
        assert_eq!(shrink, Err(Errno::BUSY), "four packets do not fit one slot");
        assert_eq!(queued, Ok(12));
    }
}

#[test]
fn end_of_file_after_the_last_packet() {
    let t = same_on_both(PACKET_NONBLOCK, |p| {
        p.write(b"last").unwrap();
        p.close_writer();
        (read_n(p, 2), read_n(p, 2))
    });
    if let Some(t) = t {
        assert_eq!(t, (Ok(b"la".to_vec()), Ok(Vec::new())));
    }
}

#[test]
fn mixed_stream_and_packet_writers_read_the_same() {
    // F_SETFL O_DIRECT on the write end (Linux 4.5+) switches modes between
    // writes. pipe_write() decides merging by the *last buffer's* flag: while
    // the last buffer is a stream page with room, packet writes merge into
    // it like stream writes, so all four writes here make one buffer.
    let t = same_on_both(
        PipeFlags {
            packet: false,
            nonblock: true,
        },
        |p| {
            p.write(b"stream").unwrap();
            p.set_packet(true).unwrap();
            p.write(b"joins").unwrap();
            p.write(b"alone").unwrap();
            p.set_packet(false).unwrap();
            p.write(b"tail").unwrap();
            let one = read_n(p, 100);
            // A packet into an empty pipe is a packet again.
            p.set_packet(true).unwrap();
            p.write(b"packet").unwrap();
            p.write(b"next").unwrap();
            (one, read_n(p, 3), read_n(p, 100), read_n(p, 100))
        },
    );
    if let Some(t) = t {
        assert_eq!(
            t,
            (
                Ok(b"streamjoinsalonetail".to_vec()),
                Ok(b"pac".to_vec()),
                Ok(b"next".to_vec()),
                Err(Errno::AGAIN)
            )
        );
    }
}

#[test]
fn the_host_reports_packet_mode_on_the_write_end_only() {
    let Ok((r, w)) = host::pipe(PipeFlags::PACKET) else {
        eprintln!("skipped: no packet pipes on this kernel");
        return;
    };
    assert_eq!(w.is_packet(), Ok(true));
    let rfl = rustix::fs::fcntl_getfl(&r).unwrap();
    assert!(
        !rfl.contains(rustix::fs::OFlags::DIRECT),
        "create_pipe_files(): O_DIRECT on the writer"
    );
}

/// One operation of the differential test.
#[derive(Clone, Debug)]
enum Op {
    Write(usize),
    Read(usize),
    Packet(bool),
    SetSize(usize),
    Queued,
}

fn op() -> impl Strategy<Value = Op> {
    let pg = 4096usize;
    prop_oneof![
        4 => (0..3 * pg + 100).prop_map(Op::Write),
        4 => (0..3 * pg + 100).prop_map(Op::Read),
        3 => prop_oneof![Just(1usize), Just(7), Just(299), Just(300), Just(304)].prop_map(Op::Write),
        1 => any::<bool>().prop_map(Op::Packet),
        1 => prop_oneof![Just(0usize), Just(pg), Just(2 * pg), Just(5 * pg), Just(16 * pg)]
            .prop_map(Op::SetSize),
        1 => Just(Op::Queued),
    ]
}

/// Runs the operations; every result, and every byte read, goes into the
/// transcript.
fn run(p: &mut dyn PipePair, ops: &[Op]) -> Vec<String> {
    let mut next = 0u8;
    let mut out = Vec::new();
    for o in ops {
        let line = match *o {
            Op::Write(n) => {
                let data: Vec<u8> = (0..n)
                    .map(|_| {
                        next = next.wrapping_add(1);
                        next
                    })
                    .collect();
                let r = p.write(&data);
                // Bytes not accepted will be offered again by the next write.
                if let Ok(k) = r {
                    next = next.wrapping_sub((n - k) as u8);
                } else {
                    next = next.wrapping_sub(n as u8);
                }
                format!("write {n}: {r:?}")
            }
            Op::Read(n) => format!("read {n}: {:?}", read_n(p, n)),
            Op::Packet(on) => format!("packet {on}: {:?}", p.set_packet(on)),
            Op::SetSize(s) => format!("setsize {s}: {:?}", p.set_pipe_size(s)),
            Op::Queued => format!("queued: {:?}", p.bytes_queued()),
        };
        out.push(line);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random sequences of writes (either mode), reads, mode switches and
    /// resizes on non-blocking ends give the kernel's transcript exactly.
    #[test]
    fn random_operations_match_the_kernel(
        packet in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        if page() != 4096 {
            return Ok(());
        }
        let flags = PipeFlags { packet, nonblock: true };
        let Some((mut h, mut p)) = pairs(flags) else { return Ok(()); };
        let kernel = run(&mut h, &ops);
        let portable = run(&mut p, &ops);
        prop_assert_eq!(portable, kernel);
    }
}
