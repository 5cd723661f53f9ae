//! After `server_close`, the process's descriptors, threads and child
//! processes are back to their baseline. One test function, so no other test
//! thread disturbs the counts.

mod support;

use std::time::Duration;

use socketserver::{Echo, EchoDatagram, Sequential};
use socketserver_std::{
    Forking, ForkingTCPServer, ForkingUDPServer, TCPServer, Threading, ThreadingTCPServer,
    ThreadingUDPServer, ThreadingUnixStreamServer,
};
use support::behaviour;

fn baseline() -> (usize, usize, usize) {
    (support::open_fds(), support::threads(), support::children())
}

fn settled(want: (usize, usize, usize)) -> bool {
    support::eventually(Duration::from_secs(5), || baseline() == want)
}

macro_rules! serve_some {
    ($server:expr, $check:expr) => {{
        let mut server = $server.expect("bind");
        let stop = server.shutdown_handle();
        let address = server.server_address().clone();
        let serving = std::thread::spawn(move || {
            server.serve_forever(Duration::from_millis(100)).unwrap();
            server.server_close();
        });
        $check(address);
        stop.shutdown();
        serving.join().unwrap();
    }};
}

#[test]
fn servers_return_to_baseline_after_close() {
    let base = baseline();

    // bpo-22435: a failed bind closes its socket.
    let taken = TCPServer::new("127.0.0.1:0", Sequential::new(Echo::<64>)).unwrap();
    for _ in 0..500 {
        TCPServer::new(*taken.server_address(), Sequential::new(Echo::<64>)).unwrap_err();
    }
    drop(taken);
    assert!(
        settled(base),
        "after bind failures: {:?} vs {base:?}",
        baseline()
    );

    serve_some!(
        ThreadingTCPServer::new("127.0.0.1:0", Threading::new(Echo::<64>)),
        |a| {
            for _ in 0..20 {
                behaviour::echo_round_trip(&behaviour::tcp(a)).unwrap();
            }
            behaviour::concurrent_open(&behaviour::tcp(a), 16, Duration::from_secs(2)).unwrap();
        }
    );
    assert!(
        settled(base),
        "after threading: {:?} vs {base:?}",
        baseline()
    );

    let path = support::temp_socket("leaks");
    serve_some!(
        ThreadingUnixStreamServer::new(&path, Threading::new(Echo::<64>)),
        |_| {
            behaviour::echo_large(&behaviour::unix(&path), 256 * 1024).unwrap();
        }
    );
    let _ = std::fs::remove_file(&path);
    assert!(settled(base), "after unix: {:?} vs {base:?}", baseline());

    serve_some!(
        ForkingTCPServer::new("127.0.0.1:0", Forking::new(Echo::<64>)),
        |a| {
            for _ in 0..20 {
                behaviour::echo_round_trip(&behaviour::tcp(a)).unwrap();
            }
        }
    );
    assert!(settled(base), "after forking: {:?} vs {base:?}", baseline());

    serve_some!(
        ThreadingUDPServer::new("127.0.0.1:0", Threading::new(EchoDatagram)),
        |a| {
            behaviour::datagram_one_reply_each(&behaviour::udp(a), 10).unwrap();
        }
    );
    serve_some!(
        ForkingUDPServer::new("127.0.0.1:0", Forking::new(EchoDatagram)),
        |a| {
            behaviour::datagram_one_reply_each(&behaviour::udp(a), 10).unwrap();
        }
    );
    assert!(
        settled(base),
        "after datagrams: {:?} vs {base:?}",
        baseline()
    );
}
