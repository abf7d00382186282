//! Trust on first use for boxes without a pin (`host_key_policy =
//! "pinned-or-accept"`): the first host key a backend — a route at one
//! address, so one pod for Kubernetes routes — presents is remembered for
//! the gateway's lifetime, and a different key from the same backend is
//! refused. A server that takes over a box's address later cannot pose as
//! the box.

use std::collections::HashMap;
use std::sync::Mutex;

use russh::keys::PublicKey;
use russh::keys::ssh_key::public::KeyData;

/// Backends remembered at most. Past it an arbitrary entry is forgotten
/// (that backend is trusted on first use again), so memory stays bounded
/// however many addresses routes move through.
const MAX_BACKENDS: usize = 65_536;

/// What the first-use table says of a presented key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Never seen from this backend: remembered now.
    First,
    /// The key this backend presented before.
    Known,
    /// A different key than before: refused.
    Changed,
}

/// Host keys seen per backend.
#[derive(Default)]
pub struct SeenKeys {
    table: Mutex<HashMap<(String, String), KeyData>>,
}

impl SeenKeys {
    /// Checks `key` from `route` at `address`, remembering it on first use.
    pub fn check(&self, route: &str, address: &str, key: &PublicKey) -> Seen {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let backend = (route.to_owned(), address.to_owned());
        match table.get(&backend) {
            Some(known) if known == key.key_data() => return Seen::Known,
            Some(_) => return Seen::Changed,
            None => {}
        }
        if table.len() >= MAX_BACKENDS
            && let Some(victim) = table.keys().next().cloned()
        {
            table.remove(&victim);
        }
        table.insert(backend, key.key_data().clone());
        Seen::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{PrivateKey, ssh_key::private::Ed25519Keypair};

    fn key(n: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[n; 32]))
            .public_key()
            .clone()
    }

    #[test]
    fn first_key_per_backend_is_kept_and_a_change_refused() {
        let seen = SeenKeys::default();
        assert_eq!(seen.check("alice-ws", "10.0.0.1:22", &key(1)), Seen::First);
        assert_eq!(seen.check("alice-ws", "10.0.0.1:22", &key(1)), Seen::Known);
        assert_eq!(
            seen.check("alice-ws", "10.0.0.1:22", &key(2)),
            Seen::Changed
        );
        // Still the first key after a refusal.
        assert_eq!(seen.check("alice-ws", "10.0.0.1:22", &key(1)), Seen::Known);
        // Another pod (address) or another route is another backend.
        assert_eq!(seen.check("alice-ws", "10.0.0.2:22", &key(2)), Seen::First);
        assert_eq!(seen.check("bob-ws", "10.0.0.1:22", &key(2)), Seen::First);
    }
}
