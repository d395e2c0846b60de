//! The network edge: one acceptor per configured protocol, TLS, connection limits, graceful
//! shutdown and the registry of live sessions.

pub mod acceptor;
pub mod conn;
pub mod limits;
pub mod registry;
pub mod shards;
pub mod shutdown;
pub mod tls;
pub mod watch;
