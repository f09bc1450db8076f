//! The frame parser and both engines on arbitrary bytes: never a panic,
//! every frame comes out once, the accounting holds.
#![no_main]

use klab_lro::{Checksum, Engine, Frag, GroConfig, LinkType, LroConfig, LroMgr, Lookup, Skb, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: link type and knobs (bit 3: checksums trusted); the rest:
    // frames split on a marker.
    let Some((&ctl, rest)) = data.split_first() else { return };
    let link = match ctl % 3 {
        0 => LinkType::Ethernet,
        1 => LinkType::RawIp,
        _ => LinkType::LinuxSll,
    };
    let frames: Vec<&[u8]> = rest.split(|b| *b == 0xA5).collect();
    for f in &frames {
        if let Ok(s) = wire::parse(link, f) {
            s.assert_invariants(f.len());
            // A full verdict is exactly a verified checksum.
            let full = matches!(wire::check_tcp_checksum(&s, &[f]), wire::TcpCsum::Full(_));
            assert_eq!(full, wire::verify_tcp_checksum(&s, &[f]).is_some());
        }
    }
    let lookup = if ctl & 0x10 != 0 { Lookup::Linear } else { Lookup::Hashed };
    let checksum = if ctl & 0x08 != 0 { Checksum::Trust } else { Checksum::Verify };
    let cfg = LroConfig { max_desc: 1 + usize::from(ctl >> 5), max_aggr: 1 + u32::from(ctl & 7), lookup, checksum, ..LroConfig::default() };
    let gro = GroConfig { checksum, ..GroConfig::default() };
    let engines: [Engine<&[u8]>; 2] = [Engine::lro(cfg, link).unwrap(), Engine::gro(gro, link).unwrap()];
    for mut e in engines {
        let mut out = 0u64;
        let mut count = |s: Skb<&[u8]>| out += u64::from(s.segs());
        for f in &frames {
            e.receive(*f, &mut count);
        }
        e.flush_all(&mut count);
        e.assert_invariants();
        assert_eq!(out, frames.len() as u64);
    }
    // The frags path: each frame cut in two page fragments.
    let mut m: LroMgr<&[u8]> = LroMgr::new(cfg, link).unwrap();
    let mut n = 0u64;
    for f in &frames {
        let cut = usize::from(ctl).min(f.len());
        let (a, b) = f.split_at(cut);
        m.receive_frags(vec![Frag::whole(a), Frag::whole(b)], 4096, &mut |s: Skb<&[u8]>| n += u64::from(s.segs()));
    }
    m.flush_all(&mut |s: Skb<&[u8]>| n += u64::from(s.segs()));
    m.assert_invariants();
    assert_eq!(n, frames.len() as u64);
});
