//! Fuzzes the HTTP tunnel request-head parser (SPEC §11) and the credential
//! parser behind it, checking the invariants `tunnel::serve` relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::tunnel::head::{MAX_HEAD, Request, parse};
use switchboard::tunnel::token::token_of;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(token) = token_of(text) {
            assert!(!token.is_empty(), "{text:?}");
        }
    }
    let Ok(Some((request, len))) = parse(data) else {
        return;
    };
    assert!(len <= data.len() && len <= MAX_HEAD);
    // A complete head re-parses to the same length from its own bytes.
    assert!(matches!(parse(&data[..len]), Ok(Some((_, l))) if l == len));
    match &request {
        Request::Connect { host, .. } => {
            assert!(!host.is_empty());
            assert!(
                !host
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            );
        }
        Request::WebSocket { route, key, .. } => {
            assert!(!route.is_empty() && !route.contains('/') && !route.contains('?'));
            assert!(!key.is_empty());
        }
    }
    for credential in request.credentials() {
        let _ = credential.token();
    }
});
