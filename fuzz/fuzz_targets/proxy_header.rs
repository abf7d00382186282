//! Fuzzes the PROXY protocol v1/v2 header reader (SPEC §9): any bytes, split
//! at any point, from a trusted or an untrusted peer, must give a header, "no
//! header" or an error; never a panic or a hang, and the bytes after a
//! header must be exactly what followed it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::server::proxy::{ProxyPolicy, read_header};

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let first = usize::from(split).min(input.len()).max(1).min(input.len());
    let policy = ProxyPolicy {
        trusted: vec!["127.0.0.0/8".parse().expect("cidr")],
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for peer in ["127.0.0.1", "192.0.2.1"] {
        let mut buf = input[..first].to_vec();
        let mut rest = &input[first..];
        let peer = peer.parse().expect("ip");
        let result = runtime.block_on(read_header(&mut rest, &mut buf, peer, &policy));
        if let Ok(Some(_)) | Ok(None) = result {
            // What is left is a suffix of the input.
            let mut left = buf.clone();
            left.extend_from_slice(rest);
            assert!(input.ends_with(&left), "leftover is not a suffix");
        }
    }
});
