//! The POP3 front-end (RFC 1939): AUTHORIZATION in `authorization`, then TRANSACTION and
//! UPDATE in [`transaction`] on the locked maildrop of `maildrop`.

mod authorization;
mod maildrop;
pub mod transaction;

use roost_protocol::line::LineDecoder;
use roost_protocol::pop3;

use crate::listen::acceptor::Continuation;
use crate::listen::conn::{Connection, Ended};
use crate::session::SessionContext;

/// Invalid commands tolerated before the connection is closed.
const MAX_BAD_COMMANDS: u32 = 10;

/// Serves one POP3 connection from greeting to QUIT.
/// A login hands back the logged-in session, so nothing of this part stays for its life.
pub async fn serve(mut conn: Connection, ctx: SessionContext) -> Option<Continuation> {
    if conn.write(&pop3::ok("roost ready.")).await.is_err() {
        return None;
    }
    let mut lines = LineDecoder::new(pop3::MAX_LINE);
    let user = authorization::run(&mut conn, &ctx, &mut lines).await?;
    Some(user.start(conn, &ctx))
}

/// Says goodbye in POP3's words when a session ends without QUIT.
async fn farewell(conn: &mut Connection, why: Ended) {
    let line: &[u8] = match why {
        Ended::IdleTimeout => b"-ERR Disconnected for inactivity.\r\n",
        Ended::Shutdown => b"-ERR [SYS/TEMP] Server shutting down.\r\n",
        Ended::Closed => return,
    };
    let _ = conn.write(line).await;
}
