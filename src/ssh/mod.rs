//! The SSH layer: the russh server handler per client connection (auth,
//! route choice, channels) and the upstream client that logs in to the box.

mod box_handler;
mod channels;
pub mod handler;
mod login;
pub mod messages;
pub mod settings;
pub mod upstream;

pub use box_handler::{BoxHandler, ClientLink};

use std::sync::Arc;

use crate::config::Config;
use crate::routes::SharedRoutes;

/// What every connection shares.
pub struct Context {
    pub config: Arc<Config>,
    pub routes: SharedRoutes,
    /// russh settings for the box leg.
    pub client_settings: Arc<russh::client::Config>,
}
