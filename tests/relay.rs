//! A TCP relay on 127.0.0.1 between `ingest` and a real server (Garage, sshd, smbd) that can
//! stall: connections are still accepted, but no byte goes through either way, as with a peer
//! whose process hangs or a link that goes dark without resetting. The stall can start at
//! once or after a budget of bytes from the client (mid-transfer). The kernel has no netem
//! here (RIGS.md), hence a relay in userspace.

// Each server's tests use part of it: with only some of the features built, the rest is unused.
#![cfg_attr(
    not(all(feature = "s3", feature = "sftp", feature = "smb-native")),
    allow(dead_code)
)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct State {
    stalled: AtomicBool,
    /// Client bytes still let through before the relay stalls by itself (`u64::MAX`: no limit).
    budget: AtomicU64,
    closed: AtomicBool,
    /// Connections accepted, and those accepted while stalled.
    connections: AtomicU64,
    stalled_connections: AtomicU64,
    /// SMB messages (4-byte length-prefixed frames) sent to the server and answered, and the
    /// most sent and not yet answered at once: requests in flight together.
    smb_sent: AtomicU64,
    smb_answered: AtomicU64,
    smb_most_in_flight: AtomicU64,
    /// HTTP request lines seen going to the server (`GET /bucket/key HTTP/1.1`).
    requests: Mutex<Vec<String>>,
}

/// The relay; it stops relaying (and lets its threads end) when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Relay {
    /// A relay to `target`, passing everything through until told otherwise.
    pub fn to(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        state.budget.store(u64::MAX, Ordering::SeqCst);
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if shared.closed.load(Ordering::SeqCst) {
                    return;
                }
                shared.connections.fetch_add(1, Ordering::SeqCst);
                if shared.stalled.load(Ordering::SeqCst) {
                    shared.stalled_connections.fetch_add(1, Ordering::SeqCst);
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(target)) else {
                    continue;
                };
                pump(&client, &server, true, &shared);
                pump(&server, &client, false, &shared);
            }
        });
        Relay { addr, state }
    }

    /// From now on nothing goes through, on open connections and new ones alike.
    pub fn stall(&self) {
        self.state.stalled.store(true, Ordering::SeqCst);
    }

    /// Stalls by itself once `bytes` more bytes came from clients.
    pub fn stall_after(&self, bytes: u64) {
        self.state.budget.store(bytes, Ordering::SeqCst);
    }

    /// Connections clients opened through the relay so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// SMB messages sent to the server so far (a compound request is one message).
    pub fn smb_messages_sent(&self) -> u64 {
        self.state.smb_sent.load(Ordering::SeqCst)
    }

    /// The most SMB requests sent through the relay and not yet answered at one time (an
    /// interim answer counts as one, so this never over-counts).
    pub fn most_smb_requests_in_flight(&self) -> u64 {
        self.state.smb_most_in_flight.load(Ordering::SeqCst)
    }

    /// Connections clients opened while the relay was stalled: each request that hangs holds
    /// one (a client cannot reuse a connection whose answer never came).
    pub fn stalled_connections(&self) -> u64 {
        self.state.stalled_connections.load(Ordering::SeqCst)
    }

    /// The HTTP request lines clients sent through the relay so far (taken: the next call
    /// returns only newer ones). Found where a chunk starts a request; enough for S3 clients,
    /// whose bodies are files that never hold a request line.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.state.requests.lock().unwrap())
    }

    /// Whether the relay is stalled (asked to, or its byte budget spent).
    pub fn is_stalled(&self) -> bool {
        self.state.stalled.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `closed`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to` on a thread of its own until either side closes or the relay goes.
fn pump(from: &TcpStream, to: &TcpStream, upstream: bool, state: &Arc<State>) {
    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
    let state = Arc::clone(state);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut frames = Frames::default();
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            note_smb_messages(&state, upstream, frames.count(&buf[..n]));
            if upstream {
                note_requests(&state, &buf[..n]);
                if spend(&state, n as u64) {
                    state.stalled.store(true, Ordering::SeqCst);
                }
            }
            // Stalled: the chunk is held, never delivered, until the relay goes.
            while state.stalled.load(Ordering::SeqCst) {
                if state.closed.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Counts the SMB messages of one direction of a connection, each a frame whose first 4 bytes
/// give its length (the direct-TCP transport's header), across chunk boundaries.
#[derive(Default)]
struct Frames {
    header: Vec<u8>,
    body_left: usize,
}

impl Frames {
    /// The frames `chunk` completes.
    fn count(&mut self, mut chunk: &[u8]) -> u64 {
        let mut done = 0;
        while !chunk.is_empty() {
            if self.body_left > 0 {
                let take = self.body_left.min(chunk.len());
                self.body_left -= take;
                chunk = &chunk[take..];
                done += u64::from(self.body_left == 0);
                continue;
            }
            let take = (4 - self.header.len()).min(chunk.len());
            self.header.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.header.len() == 4 {
                let h = std::mem::take(&mut self.header);
                self.body_left =
                    usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
                done += u64::from(self.body_left == 0);
            }
        }
        done
    }
}

/// Notes `frames` SMB messages sent (`upstream`) or answered, and the most in flight so far.
fn note_smb_messages(state: &State, upstream: bool, frames: u64) {
    if upstream {
        let sent = state.smb_sent.fetch_add(frames, Ordering::SeqCst) + frames;
        let answered = state.smb_answered.load(Ordering::SeqCst);
        let in_flight = sent.saturating_sub(answered);
        state
            .smb_most_in_flight
            .fetch_max(in_flight, Ordering::SeqCst);
    } else {
        state.smb_answered.fetch_add(frames, Ordering::SeqCst);
    }
}

/// Takes `n` bytes from the budget; true when it ran out.
fn spend(state: &State, n: u64) -> bool {
    let left = state.budget.load(Ordering::SeqCst);
    if left == u64::MAX {
        return false;
    }
    state.budget.store(left.saturating_sub(n), Ordering::SeqCst);
    left <= n
}

/// Notes the HTTP request lines in a chunk going to the server.
fn note_requests(state: &State, chunk: &[u8]) {
    let text = String::from_utf8_lossy(chunk);
    let lines = text.split("\r\n").filter(|line| {
        ["GET /", "HEAD /", "PUT /", "POST /", "DELETE /"]
            .iter()
            .any(|m| line.starts_with(m))
            && line.ends_with(" HTTP/1.1")
    });
    let mut seen = state.requests.lock().unwrap();
    seen.extend(lines.map(str::to_owned));
}
