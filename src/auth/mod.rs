//! Who the client is and where it wants to go: the username grammar, and the
//! key + username → decision.

pub mod principal;
pub mod username;
