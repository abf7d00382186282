//! `switchboard seed`: print a fresh random host-key seed.
//!
//! `switchboard seed > seed && kubectl create secret generic switchboard-seed --from-file=seed`

use super::Error;
use crate::hostkey::generate_seed;

/// Prints 32 random bytes, hex-encoded, on stdout.
pub fn run() -> Result<(), Error> {
    println!("{}", generate_seed());
    Ok(())
}
