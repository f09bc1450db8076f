//! Every trace parser (oracleGeneral, vscsi, csv, txt, klab) on arbitrary
//! bytes: requests that obey the `Request` invariants and that account for
//! the input (one per record of a binary trace, at most one per line of a
//! text trace), or an error that names the file and a place that agrees
//! with the input (a record at a multiple of the record length, a line at
//! a line start); never a panic.
#![no_main]

use std::path::Path;

use klab_trace::Format;
use klab_trace::binary::{OracleRecord, VscsiVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    for format in Format::ALL {
        match klab_trace::parse(data, format, Path::new("fuzz")) {
            Ok(reqs) => {
                for r in &reqs {
                    assert!(r.size > 0);
                }
                match format {
                    Format::OracleGeneral => assert_eq!(reqs.len() * OracleRecord::LEN, data.len()),
                    Format::Vscsi => {
                        let len = VscsiVersion::detect(data).map_or(0, VscsiVersion::record_len);
                        assert_eq!(reqs.len() * len, data.len());
                    }
                    Format::Csv | Format::Txt | Format::Klab => assert!(reqs.len() <= lines),
                }
            }
            Err(e) => {
                assert!(e.to_string().starts_with("fuzz: "), "{e}");
                let Some(at) = e.at else { continue };
                let offset = usize::try_from(at.offset).expect("offset fits");
                assert!(offset <= data.len(), "{e}");
                if at.is_line {
                    assert!(
                        offset == 0 || data[offset - 1] == b'\n',
                        "{e}: not a line start"
                    );
                    let newlines = data[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
                    assert_eq!(newlines + 1, at.record, "{e}");
                } else {
                    let len = match format {
                        Format::OracleGeneral => OracleRecord::LEN,
                        _ => VscsiVersion::detect(data).map_or(0, VscsiVersion::record_len),
                    };
                    assert_eq!(at.record * len as u64, at.offset, "{e}");
                }
            }
        }
    }
});
