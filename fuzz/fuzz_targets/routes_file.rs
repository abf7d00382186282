//! Fuzzes the routes-file parser (SPEC §4) from text, writing nothing to disk:
//! relative key paths point into a directory that does not exist.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use switchboard::routes::RouteTable;
use switchboard::routes::file::{merge, parse_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(load) = parse_str(text, Path::new("/nonexistent/switchboard-fuzz/routes.toml")) else {
        return;
    };
    for error in &load.errors {
        // Every error renders, and names the file.
        assert!(
            error
                .to_string()
                .starts_with("/nonexistent/switchboard-fuzz/routes.toml: ")
        );
    }
    let mut names: Vec<&str> = load.routes.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate route names were loaded");
    let merged = merge(&RouteTable::default(), load);
    assert!(merged.removed.is_empty() && merged.kept_previous.is_empty());
});
