//! The SSH front: the russh server handler per client connection. It asks
//! the access layer who the client is ([`auth`]), reaches the box through
//! the box leg ([`link`]), and relays channels ([`channels`]).

mod auth;
mod channels;
pub mod handler;
mod link;
pub mod settings;
mod waiting;

use std::sync::Arc;

use crate::access::Access;
use crate::config::Config;
use crate::relay::session::PendingPool;
use crate::upstream::BoxLeg;
use crate::wake::Wakes;

/// What every SSH connection shares.
pub struct Shared {
    pub config: Arc<Config>,
    pub access: Arc<Access>,
    pub boxes: Arc<BoxLeg>,
    /// Waits for stopped or starting boxes (key mode, authorized jumps).
    pub wakes: Arc<Wakes>,
    /// The input all provisional (agent-mode) connections may hold.
    pub pending: Arc<PendingPool>,
}
