//! `switchboard version`: what this binary is, for a bug report or a rollout
//! check: the version, the git commit it was built from (when the build said),
//! the target, the profile and the optional features compiled in.

use super::Error;

/// The git commit, when the build had `GIT_COMMIT` set (e.g.
/// `GIT_COMMIT=$(git rev-parse --short HEAD) cargo build --release`; CI
/// systems often set it themselves). No build script: reading `.git` would
/// rebuild the crate on every commit.
const COMMIT: Option<&str> = option_env!("GIT_COMMIT");

/// Prints the version block on stdout.
pub fn run() -> Result<(), Error> {
    print!("{}", text());
    Ok(())
}

fn text() -> String {
    let commit = COMMIT
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("unknown (built without GIT_COMMIT)");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let features = if cfg!(feature = "kubernetes") {
        "kubernetes"
    } else {
        "none"
    };
    format!(
        "switchboard {}\ncommit:   {commit}\ntarget:   {}-{}\nprofile:  {profile}\nfeatures: {features}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_line_is_name_and_version() {
        let text = super::text();
        assert!(
            text.starts_with(&format!("switchboard {}\n", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        assert!(text.contains("\ncommit:   "), "{text}");
    }
}
