//! Host certificates end while the gateway runs (they are read once, at
//! start): the soonest end is exported as
//! `switchboard_host_certificate_expiry_timestamp_seconds`, and each
//! certificate is logged a week before it ends (a warning) and when it ends
//! (an error: clients that trust only the CA are refused from then on).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use super::identity::{EXPIRY_WARNING, HostIdentity, timestamp};
use crate::ops::metrics;

/// The longest single sleep: the wall clock is looked at again at least this
/// often, so a clock step (or a suspended VM) delays a log line by at most a day.
const RECHECK: Duration = Duration::from_secs(24 * 3600);

/// Sets the expiry metric and starts the task that logs certificate ends;
/// `None` when no certificate ever ends (or there is none).
pub fn watch_expiry(identity: &HostIdentity) -> Option<JoinHandle<()>> {
    let mut ends: Vec<(PathBuf, u64)> = identity
        .certificates
        .iter()
        .map(|c| (c.path.clone(), c.certificate.valid_before()))
        .filter(|(_, end)| *end != u64::MAX)
        .collect();
    ends.sort_by_key(|(_, end)| *end);
    let soonest = ends.first()?.1;
    metrics::get()
        .host_certificate_expiry
        .set(i64::try_from(soonest).unwrap_or(i64::MAX));
    Some(tokio::spawn(async move {
        for (path, end) in ends {
            let warn_at = end.saturating_sub(EXPIRY_WARNING.as_secs());
            // Within the week already: the start-up check has warned.
            if now() < warn_at {
                sleep_until(warn_at).await;
                tracing::warn!(
                    "server.host_certificates: {} expires at {}; issue a new one and restart \
                     the gateway before then",
                    path.display(),
                    timestamp(end)
                );
            }
            sleep_until(end).await;
            tracing::error!(
                "server.host_certificates: {} expired at {}; clients that trust only its CA \
                 are refused until a new certificate is installed and the gateway restarted",
                path.display(),
                timestamp(end)
            );
        }
    }))
}

/// Seconds since the epoch, by the wall clock (certificates use it).
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Sleeps until the wall clock reads `unix` seconds.
async fn sleep_until(unix: u64) {
    loop {
        let left = unix.saturating_sub(now());
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(left).min(RECHECK)).await;
    }
}
