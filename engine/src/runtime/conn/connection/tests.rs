//! A connection's behaviour over the in-memory transport, on one core:
//! pipelining, back-pressure, the auth gate, refusing large values.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::serve;
use crate::runtime::conn::memory::{pair, MemoryStream};
use crate::runtime::server::auth::{AuthConfig, AuthMode, PasswordFile};
use crate::runtime::server::core::testing::{settings, with_core};
use crate::runtime::server::core::Core;

/// The client's end of a connection served on `core`, each direction
/// holding at most `capacity` bytes.
fn connect(core: &Rc<Core>, capacity: usize) -> MemoryStream {
    let (client, server) = pair(capacity);
    glommio::spawn_local(serve(core.clone(), server)).detach();
    client
}

/// Sends `request` and checks the reply is exactly `expected`.
async fn exchange(client: &mut MemoryStream, request: &[u8], expected: &[u8]) {
    client.write_all(request).await.expect("write");
    let mut got = vec![0; expected.len()];
    client.read_exact(&mut got).await.expect("reply");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply to {:?}",
        String::from_utf8_lossy(&request[..request.len().min(80)])
    );
}

/// Lets the core run its other tasks for a while.
async fn settle() {
    glommio::timer::sleep(Duration::from_millis(50)).await;
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    with_core(settings(), |core| async move {
        let mut c = connect(&core, 1 << 20);
        exchange(
            &mut c,
            b"set a 0 0 1\r\n1\r\nset b 5 0 2\r\n22\r\nget a b\r\ndelete a\r\nget a\r\nmn\r\n",
            b"STORED\r\nSTORED\r\nVALUE a 0 1\r\n1\r\nVALUE b 5 2\r\n22\r\nEND\r\nDELETED\r\nEND\r\nMN\r\n",
        )
        .await;
        // A request split anywhere is answered once it is whole.
        c.write_all(b"get ").await.unwrap();
        settle().await;
        exchange(&mut c, b"b\r\n", b"VALUE b 5 2\r\n22\r\nEND\r\n").await;
    });
}

#[test]
fn a_client_that_does_not_read_stalls_only_itself() {
    with_core(settings(), |core| async move {
        let mut admin = connect(&core, 1 << 20);
        let value = vec![b'v'; 500_000];
        let mut set = b"set big 0 0 500000\r\n".to_vec();
        set.extend_from_slice(&value);
        set.extend_from_slice(b"\r\n");
        exchange(&mut admin, &set, b"STORED\r\n").await;

        // 400 gets of the 500 KB value, 200 MB of replies, never read.
        let mut greedy = connect(&core, 64 << 10);
        let gets = b"get big\r\n".repeat(400);
        greedy.write_all(&gets).await.unwrap();
        settle().await;
        assert_eq!(greedy.unread(), 64 << 10, "replies fill the pipe and stop");
        let lent = core.buffers.usage().lent;
        assert!(lent <= 4, "{lent} buffers lent");
        // Everyone else is served meanwhile.
        let mut other = connect(&core, 1 << 20);
        exchange(
            &mut other,
            b"set k 0 0 2\r\nok\r\nget k\r\n",
            b"STORED\r\nVALUE k 0 2\r\nok\r\nEND\r\n",
        )
        .await;
        // Once it reads, its replies come, whole and in order.
        let mut header = [0u8; 21];
        greedy.read_exact(&mut header).await.unwrap();
        assert_eq!(&header, b"VALUE big 0 500000\r\nv");
    });
}

#[test]
fn the_auth_gate_comes_first() {
    let mut config = settings();
    config.auth = Some(std::sync::Arc::new(AuthConfig::new(
        AuthMode::Ascii,
        PasswordFile::parse(b"foo:bar").expect("users"),
        None,
    )));
    with_core(config, |core| async move {
        let mut c = connect(&core, 1 << 20);
        exchange(&mut c, b"get k\r\n", b"CLIENT_ERROR unauthenticated\r\n").await;
        exchange(
            &mut c,
            b"set k 0 0 7\r\nfoo bab\r\n",
            b"CLIENT_ERROR authentication failure\r\n",
        )
        .await;
        exchange(&mut c, b"set k 0 0 7\r\nfoo bar\r\n", b"STORED\r\n").await;
        exchange(
            &mut c,
            b"set k 0 0 2\r\nhi\r\nget k\r\n",
            b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n",
        )
        .await;
        let counters = *core.counters.borrow();
        assert_eq!((counters.auth_cmds, counters.auth_errors), (2, 1));
        // Another connection is not authenticated by the first.
        let mut c2 = connect(&core, 1 << 20);
        exchange(&mut c2, b"get k\r\n", b"CLIENT_ERROR unauthenticated\r\n").await;
    });
}

#[test]
fn a_value_without_room_is_refused_and_the_connection_goes_on() {
    let mut config = settings();
    config.large_request_bytes = 0;
    with_core(config, |core| async move {
        let mut c = connect(&core, 1 << 20);
        let mut set = b"set big 0 0 100000\r\n".to_vec();
        set.extend_from_slice(&vec![b'v'; 100_000]);
        set.extend_from_slice(b"\r\nget big\r\n");
        exchange(
            &mut c,
            &set,
            b"SERVER_ERROR out of memory storing object\r\nEND\r\n",
        )
        .await;
        exchange(&mut c, b"set small 0 0 2\r\nok\r\n", b"STORED\r\n").await;
        assert_eq!(core.counters.borrow().read_buf_oom, 1);
    });
}
