//! Test fixtures for the routes file: throwaway keys and a temp dir to write into.

use std::fs;
use std::path::PathBuf;

use tempfile::TempDir;

use super::{FileLoad, load};

pub const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPy79bNUuWn+Hzm/i/zTG1Hj9xvS6X51TAd4Et/u9VRb test@switchboard";
pub const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBSpbomY3iHpVUk8yXqJIfBBfee8U1H2nLb92omhd23N other";
/// The private half of `KEY_A` (a throwaway test key).
pub const IDENTITY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACD8u/WzVLlp/h85v4v80xtR4/cb0ul+dUwHeBLf7vVUWwAAAJiGa7wBhmu8
AQAAAAtzc2gtZWQyNTUxOQAAACD8u/WzVLlp/h85v4v80xtR4/cb0ul+dUwHeBLf7vVUWw
AAAEA2BZE+wf/sHVEVZzNC8GRaoud63ifbBZrpHGIF+BH8Q/y79bNUuWn+Hzm/i/zTG1Hj
9xvS6X51TAd4Et/u9VRbAAAAEHRlc3RAc3dpdGNoYm9hcmQBAgMEBQ==
-----END OPENSSH PRIVATE KEY-----
";
/// A passphrase-protected key (passphrase `pw`).
pub const ENCRYPTED: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABBxMYoBz5
3Mq50wWetacAx4AAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAILp+w5ZIGwO41ejk
IoAhc02iKyFvFpmVxUeb9pl0ekabAAAAkJCV+9VNUGdwypOSu8qgV4mEHa7eEeA5O4tiO9
OhPGjhnHzCU4XT/VjJAYacaQRHErKjPARLJucC43YZX/6dXw9EQpxEoqO82RjKpOhZJbmt
8p3IRnc0oXup/R+eTj8NAucx47iK3KhjMJ21xcdlQ+QFpljj2nwvHMt1Wnr64is9hwDBKx
uB0OzJ1KExgfi7fQ==
-----END OPENSSH PRIVATE KEY-----
";

/// A temp dir with key files, and a routes file written on demand.
pub(super) struct Fixture {
    pub dir: TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("keys")).expect("mkdir");
        fs::write(dir.path().join("keys/alice"), IDENTITY).expect("write");
        fs::write(dir.path().join("keys/encrypted"), ENCRYPTED).expect("write");
        fs::write(
            dir.path().join("keys/alice.pub"),
            format!("# alice\n\n{KEY_A}\n  {KEY_B} second\n"),
        )
        .expect("write");
        Self { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("routes.toml")
    }

    pub fn write(&self, text: &str) -> PathBuf {
        let path = self.path();
        fs::write(&path, text).expect("write routes");
        path
    }

    pub fn load(&self, text: &str) -> FileLoad {
        load(&self.write(text)).expect("file loads")
    }
}
