//! Key files a route refers to: `authorized_keys_file` and `identity_file`,
//! read with a size bound and parsed by the shared [`crate::routes::keys`].
//!
//! Error messages here describe the problem and never include private key
//! material. An identity file that others may read is warned about, as the
//! host-key seed is ([`unprotected_key_file`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use russh::keys::PrivateKey;
use zeroize::Zeroizing;

use super::MAX_FILE_LEN;
use crate::hostkey::unprotected_key_file;
use crate::routes::keys::{AuthorizedKeys, decode_identity, parse_authorized_keys};

/// Reads an `authorized_keys` file ([`parse_authorized_keys`]). Any bad line
/// fails the whole field, and the error names every bad line (unlike a
/// Kubernetes Secret, which degrades the route to its good keys).
pub(super) fn read_authorized_keys(path: &Path) -> Result<AuthorizedKeys, String> {
    let bytes = read_bounded(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    let parsed = parse_authorized_keys(&text);
    if parsed.problems.is_empty() {
        Ok(parsed)
    } else {
        Err(format!(
            "{}: {}",
            path.display(),
            parsed.problems.join("; ")
        ))
    }
}

/// Loads the unencrypted private key the gateway logs in to the box with.
/// (`russh::keys::load_secret_key` minus the unbounded read; the text is wiped
/// from memory once decoded.)
pub(super) fn load_identity(path: &Path) -> Result<PrivateKey, String> {
    let bytes = Zeroizing::new(
        read_bounded(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    if let Some(warning) = unprotected_key_file(path, "identity_file") {
        tracing::warn!("{warning}");
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| format!("{} is not a private key file", path.display()))?;
    decode_identity(text, &path.display().to_string())
}

/// Reads a regular file of at most [`MAX_FILE_LEN`] bytes. Devices, FIFOs and
/// directories are refused so a wrong path cannot block or exhaust the loader.
pub(crate) fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(too_large());
    }
    Ok(bytes)
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than {MAX_FILE_LEN} bytes"),
    )
}
