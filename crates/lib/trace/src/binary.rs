//! Binary trace formats, read through checked zero-copy record views.
//!
//! A view borrows exactly one record's bytes (`&[u8; LEN]`), so every
//! accessor reads a fixed, in-bounds range; [`OracleRecord::new_checked`]
//! and [`VscsiRecord::new_checked`] are the only ways to make one from
//! untrusted input, and they also validate the fields, so code past them
//! never sees a zero size or an unknown version.
//!
//! ```text
//! oracleGeneral (libCacheSim), 24 bytes, little-endian
//!   0  u32 clock_time      seconds
//!   4  u64 obj_id
//!  12  u32 obj_size        bytes, > 0
//!  16  i64 next_access     1-based number of the next request to obj_id, or -1
//!
//! vscsi version 1, 32 bytes            vscsi version 2, 40 bytes
//!   0  u32 sn                             0  u16 cmd
//!   4  u32 len     bytes, > 0             2  u16 ver   (ver >> 8) == 2
//!   8  u32 nSG                            4  u32 sn
//!  12  u16 cmd     0x28 read, 0x2a write  8  u32 len
//!  14  u16 ver     (ver >> 8) == 1       12  u32 nSG
//!  16  u64 lbn                           16  u64 lbn
//!  24  u64 ts      microseconds          24  u64 ts
//!                                        32  u64 rt
//! ```
//!
//! As libCacheSim does, the vscsi version is told from the version field of
//! the first record read as each layout; the first record must agree.

use std::path::Path;

use crate::{ErrorKind, Format, Op, Request, TraceError};

fn u16_at<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Bytes per oracleGeneral record.
const ORACLE_LEN: usize = 24;

/// A checked view of one oracleGeneral record.
#[derive(Clone, Copy, Debug)]
pub struct OracleRecord<'a>(&'a [u8; ORACLE_LEN]);

impl<'a> OracleRecord<'a> {
    /// Bytes per record.
    pub const LEN: usize = ORACLE_LEN;

    /// A view of `bytes`, which must be one whole, valid record.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ErrorKind> {
        let arr: &[u8; ORACLE_LEN] = bytes.try_into().map_err(|_| ErrorKind::Truncated {
            need: Self::LEN,
            have: bytes.len(),
        })?;
        let r = OracleRecord(arr);
        if r.obj_size() == 0 {
            return Err(ErrorKind::Field {
                field: "obj_size",
                value: "0".into(),
                expected: "a size of at least 1 byte",
            });
        }
        let next = r.next_access_raw();
        if next < -1 || next == 0 {
            return Err(ErrorKind::Field {
                field: "next_access_vtime",
                value: next.to_string(),
                expected: "-1 or a 1-based request number",
            });
        }
        Ok(r)
    }

    /// Time of the request, seconds.
    pub fn clock_time(&self) -> u32 {
        u32_at(self.0, 0)
    }

    /// The object.
    pub fn obj_id(&self) -> u64 {
        u64_at(self.0, 4)
    }

    /// Its size in bytes.
    pub fn obj_size(&self) -> u32 {
        u32_at(self.0, 12)
    }

    fn next_access_raw(&self) -> i64 {
        u64_at(self.0, 16) as i64
    }

    /// Index (0-based) of the next request to this object, if any.
    ///
    /// libCacheSim stores the *virtual time* of the next access, which
    /// counts requests from 1 (checked on the shared cloudPhysicsIO trace:
    /// every stored value is the next request's 0-based index plus one).
    pub fn next_access(&self) -> Option<u64> {
        u64::try_from(self.next_access_raw())
            .ok()
            .and_then(|v| v.checked_sub(1))
    }

    /// The record as a request.
    pub fn request(&self) -> Request {
        Request {
            time: u64::from(self.clock_time()),
            obj_id: self.obj_id(),
            size: self.obj_size(),
            op: Op::Unknown,
            file: 0,
            next_access: self.next_access(),
        }
    }
}

/// The two vscsi layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VscsiVersion {
    /// 32-byte records.
    V1,
    /// 40-byte records.
    V2,
}

impl VscsiVersion {
    /// Bytes per record.
    pub fn record_len(self) -> usize {
        match self {
            VscsiVersion::V1 => 32,
            VscsiVersion::V2 => 40,
        }
    }

    /// The version a trace's first record shows, as libCacheSim decides:
    /// version 1 if the v1 version field says 1, else version 2 if the v2
    /// field says 2.
    pub fn detect(bytes: &[u8]) -> Option<VscsiVersion> {
        let v1 = bytes
            .get(14..16)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) >> 8);
        let v2 = bytes
            .get(2..4)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) >> 8);
        if bytes.len() >= 32 && v1 == Some(1) {
            Some(VscsiVersion::V1)
        } else if bytes.len() >= 40 && v2 == Some(2) {
            Some(VscsiVersion::V2)
        } else {
            None
        }
    }
}

/// A checked view of one vscsi record (either layout).
#[derive(Clone, Copy, Debug)]
pub enum VscsiRecord<'a> {
    /// Version 1.
    V1(&'a [u8; 32]),
    /// Version 2.
    V2(&'a [u8; 40]),
}

impl<'a> VscsiRecord<'a> {
    /// A view of `bytes`, which must be one whole, valid record of `version`.
    pub fn new_checked(bytes: &'a [u8], version: VscsiVersion) -> Result<Self, ErrorKind> {
        let truncated = || ErrorKind::Truncated {
            need: version.record_len(),
            have: bytes.len(),
        };
        let r = match version {
            VscsiVersion::V1 => VscsiRecord::V1(bytes.try_into().map_err(|_| truncated())?),
            VscsiVersion::V2 => VscsiRecord::V2(bytes.try_into().map_err(|_| truncated())?),
        };
        let want = match version {
            VscsiVersion::V1 => 1,
            VscsiVersion::V2 => 2,
        };
        if r.ver() >> 8 != want {
            return Err(ErrorKind::Field {
                field: "ver",
                value: format!("{:#06x}", r.ver()),
                expected: "the version of the trace's first record",
            });
        }
        if r.len() == 0 {
            return Err(ErrorKind::Field {
                field: "len",
                value: "0".into(),
                expected: "a size of at least 1 byte",
            });
        }
        Ok(r)
    }

    /// The version field.
    pub fn ver(&self) -> u16 {
        match self {
            VscsiRecord::V1(b) => u16_at(b, 14),
            VscsiRecord::V2(b) => u16_at(b, 2),
        }
    }

    /// The SCSI opcode.
    pub fn cmd(&self) -> u16 {
        match self {
            VscsiRecord::V1(b) => u16_at(b, 12),
            VscsiRecord::V2(b) => u16_at(b, 0),
        }
    }

    /// Request length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u32 {
        match self {
            VscsiRecord::V1(b) => u32_at(b, 4),
            VscsiRecord::V2(b) => u32_at(b, 8),
        }
    }

    /// Logical block number (512-byte sectors).
    pub fn lbn(&self) -> u64 {
        match self {
            VscsiRecord::V1(b) => u64_at(b, 16),
            VscsiRecord::V2(b) => u64_at(b, 16),
        }
    }

    /// Timestamp, microseconds.
    pub fn ts(&self) -> u64 {
        match self {
            VscsiRecord::V1(b) => u64_at(b, 24),
            VscsiRecord::V2(b) => u64_at(b, 24),
        }
    }

    /// The operation: SCSI READ(6/10/12/16) or WRITE(6/10/12/16).
    pub fn op(&self) -> Op {
        match self.cmd() {
            0x08 | 0x28 | 0xa8 | 0x88 => Op::Read,
            0x0a | 0x2a | 0xaa | 0x8a => Op::Write,
            _ => Op::Unknown,
        }
    }

    /// The record as a request (the object is the block number).
    pub fn request(&self) -> Request {
        Request {
            time: self.ts(),
            obj_id: self.lbn(),
            size: self.len(),
            op: self.op(),
            file: 0,
            next_access: None,
        }
    }
}

/// Parses a whole oracleGeneral trace.
pub fn parse_oracle(bytes: &[u8], path: &Path) -> Result<Vec<Request>, TraceError> {
    crate::parse(bytes, Format::OracleGeneral, path)
}

/// Parses a whole vscsi trace (either version).
pub fn parse_vscsi(bytes: &[u8], path: &Path) -> Result<Vec<Request>, TraceError> {
    crate::parse(bytes, Format::Vscsi, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle(time: u32, id: u64, size: u32, next: i64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&time.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&next.to_le_bytes());
        v
    }

    #[test]
    fn oracle_record_fields() {
        // The first record of cloudPhysicsIO.oracleGeneral.bin.
        let bytes = [
            0x6a, 0xf7, 0x55, 0x00, 0x09, 0x1a, 0x8f, 0x02, 0, 0, 0, 0, 0x00, 0x02, 0, 0, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        let r = OracleRecord::new_checked(&bytes).unwrap();
        assert_eq!(r.clock_time(), 5633898);
        assert_eq!(r.obj_id(), 42932745);
        assert_eq!(r.obj_size(), 512);
        assert_eq!(r.next_access(), None);
    }

    #[test]
    fn oracle_errors_name_record_offset_and_field() {
        let mut bytes = oracle(1, 2, 3, 5);
        bytes.extend(oracle(1, 2, 0, -1));
        let e = parse_oracle(&bytes, Path::new("t.bin")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.bin: record 1 at offset 24: obj_size field is 0; expected a size of at least 1 byte"
        );
        let mut bytes = oracle(1, 2, 3, -2);
        let e = parse_oracle(&bytes, Path::new("t.bin")).unwrap_err();
        assert!(
            e.to_string().contains("next_access_vtime field is -2"),
            "{e}"
        );
        let e = parse_oracle(&oracle(1, 2, 3, 0), Path::new("t.bin")).unwrap_err();
        assert!(
            e.to_string().contains("next_access_vtime field is 0"),
            "{e}"
        );
        assert_eq!(
            parse_oracle(&oracle(1, 2, 3, 5), Path::new("t")).unwrap()[0].next_access,
            Some(4)
        );
        bytes = oracle(1, 2, 3, 4);
        bytes.extend_from_slice(&[1, 2, 3]);
        let e = parse_oracle(&bytes, Path::new("t.bin")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.bin: record 1 at offset 24: truncated record: 3 of 24 bytes"
        );
    }

    fn vscsi_v1(len: u32, cmd: u16, ver: u16, lbn: u64, ts: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&7u32.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&cmd.to_le_bytes());
        v.extend_from_slice(&ver.to_le_bytes());
        v.extend_from_slice(&lbn.to_le_bytes());
        v.extend_from_slice(&ts.to_le_bytes());
        v
    }

    fn vscsi_v2(len: u32, cmd: u16, lbn: u64, ts: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&cmd.to_le_bytes());
        v.extend_from_slice(&0x0200u16.to_le_bytes());
        v.extend_from_slice(&7u32.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&lbn.to_le_bytes());
        v.extend_from_slice(&ts.to_le_bytes());
        v.extend_from_slice(&99u64.to_le_bytes());
        v
    }

    #[test]
    fn vscsi_versions_are_detected_and_read() {
        let mut b = vscsi_v1(512, 0x2a, 0x0100, 42932745, 5633898368802);
        b.extend(vscsi_v1(4096, 0x28, 0x0100, 10, 11));
        let reqs = parse_vscsi(&b, Path::new("t")).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            (reqs[0].obj_id, reqs[0].size, reqs[0].op),
            (42932745, 512, Op::Write)
        );
        assert_eq!((reqs[1].time, reqs[1].op), (11, Op::Read));

        let b = vscsi_v2(1024, 0x28, 5, 6);
        let reqs = parse_vscsi(&b, Path::new("t")).unwrap();
        assert_eq!(
            (reqs[0].obj_id, reqs[0].size, reqs[0].op, reqs[0].time),
            (5, 1024, Op::Read, 6)
        );
    }

    #[test]
    fn vscsi_version_change_and_zero_length_are_errors() {
        let mut b = vscsi_v1(512, 0x2a, 0x0100, 1, 1);
        b.extend(vscsi_v1(512, 0x2a, 0x0300, 1, 1));
        let e = parse_vscsi(&b, Path::new("t")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t: record 1 at offset 32: ver field is 0x0300; expected the version of the trace's first record"
        );
        let b = vscsi_v1(0, 0x2a, 0x0100, 1, 1);
        let e = parse_vscsi(&b, Path::new("t")).unwrap_err();
        assert!(
            e.to_string()
                .contains("record 0 at offset 0: len field is 0"),
            "{e}"
        );
        let e = parse_vscsi(&[0u8; 40], Path::new("t")).unwrap_err();
        assert!(
            e.to_string()
                .contains("expected a vscsi version 1 or 2 record"),
            "{e}"
        );
    }
}
