//! Who may use the sessions API (`[admin] read_token_file`,
//! `write_token_file`): bearer tokens read once at start, kept only as
//! SHA-256 digests and compared in constant time; never logged.
//!
//! - Reading (`GET /sessions`): with a read token, that token (or the write
//!   token) is required from everyone; without one, loopback clients may
//!   read, and others only with the write token.
//! - Writing (ending a session): only with the write token; without one
//!   configured, refused.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hyper::StatusCode;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::config::AdminConfig;
use crate::ops::source::canonical;

/// The configured tokens, as digests.
#[derive(Default)]
pub struct AdminAuth {
    read: Option<[u8; 32]>,
    write: Option<[u8; 32]>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("read", &self.read.map(|_| "<redacted>"))
            .field("write", &self.write.map(|_| "<redacted>"))
            .finish()
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
}

/// A refused request: its status and the one line it is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    pub status: StatusCode,
    pub reason: &'static str,
}

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{field}: cannot read {}: {source}", path.display())]
    Read {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{field}: {} holds no token", path.display())]
    Empty { field: &'static str, path: PathBuf },
}

const NEED_TOKEN: Denied = Denied {
    status: StatusCode::UNAUTHORIZED,
    reason: "missing or wrong bearer token (Authorization: Bearer TOKEN)",
};

const READ_LOOPBACK_ONLY: Denied = Denied {
    status: StatusCode::FORBIDDEN,
    reason: "without [admin] read_token_file only loopback clients may read sessions",
};

const WRITE_DISABLED: Denied = Denied {
    status: StatusCode::FORBIDDEN,
    reason: "ending sessions is disabled; set [admin] write_token_file",
};

impl AdminAuth {
    /// Reads the configured token files (each trimmed of surrounding
    /// whitespace; an empty one is an error).
    pub fn load(config: &AdminConfig) -> Result<Self, TokenError> {
        let read = config.read_token_file.as_deref();
        let write = config.write_token_file.as_deref();
        Ok(Self {
            read: read
                .map(|p| digest_file(p, "admin.read_token_file"))
                .transpose()?,
            write: write
                .map(|p| digest_file(p, "admin.write_token_file"))
                .transpose()?,
        })
    }

    /// From the tokens themselves (tests).
    pub fn from_tokens(read: Option<&[u8]>, write: Option<&[u8]>) -> Self {
        Self {
            read: read.map(digest),
            write: write.map(digest),
        }
    }

    /// Whether a request from `peer` with `authorization` (the header's
    /// value) may do what it needs.
    pub fn check(
        &self,
        need: Need,
        peer: IpAddr,
        authorization: Option<&[u8]>,
    ) -> Result<(), Denied> {
        let presented = authorization.and_then(bearer).map(digest);
        let (read_ok, write_ok) = match &presented {
            Some(p) => (
                matches(p, self.read.as_ref()),
                matches(p, self.write.as_ref()),
            ),
            None => (false, false),
        };
        match need {
            Need::Write if self.write.is_none() => Err(WRITE_DISABLED),
            Need::Write if write_ok => Ok(()),
            Need::Write => Err(NEED_TOKEN),
            Need::Read if read_ok || write_ok => Ok(()),
            Need::Read if self.read.is_some() => Err(NEED_TOKEN),
            Need::Read if canonical(peer).is_loopback() => Ok(()),
            Need::Read => Err(READ_LOOPBACK_ONLY),
        }
    }
}

/// The token of `Bearer TOKEN` (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Constant time in the token; `false` when none is configured.
fn matches(presented: &[u8; 32], configured: Option<&[u8; 32]>) -> bool {
    let Some(configured) = configured else {
        return false;
    };
    let ok: Choice = presented.ct_eq(configured);
    ok.into()
}

fn digest_file(path: &Path, field: &'static str) -> Result<[u8; 32], TokenError> {
    let text = Zeroizing::new(fs::read(path).map_err(|source| TokenError::Read {
        field,
        path: path.to_owned(),
        source,
    })?);
    let token = text.trim_ascii();
    if token.is_empty() {
        return Err(TokenError::Empty {
            field,
            path: path.to_owned(),
        });
    }
    Ok(digest(token))
}
