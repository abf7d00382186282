//! Fuzzes the username grammar (SPEC §5) with both grammars and several
//! separators, checking the invariants callers rely on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::access::username::{MAX_USERNAME_LEN, parse};
use switchboard::config::UsernameGrammar;

const SEPARATORS: [&str; 4] = ["@", "+", "::", "é"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let separator = SEPARATORS[usize::from(selector) % SEPARATORS.len()];
    for grammar in [UsernameGrammar::Default, UsernameGrammar::Sealos] {
        let Ok(target) = parse(raw, separator, grammar) else {
            continue;
        };
        assert!(raw.len() <= MAX_USERNAME_LEN);
        for part in target.user.iter().chain(target.route.iter()) {
            assert!(!part.is_empty(), "{raw:?}: empty part");
            assert!(
                !part.chars().any(|c| c.is_control() || c.is_whitespace()),
                "{raw:?}"
            );
        }
        if let Some(route) = &target.route {
            match grammar {
                UsernameGrammar::Default => assert!(!route.contains(separator), "{raw:?}"),
                UsernameGrammar::Sealos => assert!(route.contains(".ns-"), "{raw:?}"),
            }
        }
    }
});
