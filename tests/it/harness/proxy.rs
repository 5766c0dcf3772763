//! A loopback TCP proxy in front of the test PostgreSQL that can be switched to swallow every
//! byte in both directions without closing anything: a half-open network, as a dropped NAT
//! entry or a frozen middlebox leaves it. It also reads the client's side of the protocol and
//! keeps the text of every statement sent (simple `Query` and extended `Parse` messages), so a
//! test can check what a run sends after connecting. Plain threads, so it keeps working while a
//! test blocks on a child process.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct Proxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    held: Arc<AtomicBool>,
    hold_at: Arc<Mutex<Option<String>>>,
    cut_after: Arc<Mutex<Option<String>>>,
    refuse_after_cut: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    statements: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards each connection to `127.0.0.1:target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let stalled = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicBool::new(false));
        let hold_at = Arc::new(Mutex::new(None));
        let cut_after = Arc::new(Mutex::new(None));
        // Set once a cut the test asked to be final has happened: new connections close at once.
        let refusing = Arc::new(AtomicBool::new(false));
        let refuse_after_cut = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let statements = Arc::new(Mutex::new(Vec::new()));
        let (flag, holding, trigger, cutting, carried, seen) = (
            stalled.clone(),
            held.clone(),
            hold_at.clone(),
            cut_after.clone(),
            sockets.clone(),
            statements.clone(),
        );
        let (refuse, then_refuse) = (refusing.clone(), refuse_after_cut.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if refuse.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                {
                    let mut carried = carried.lock().unwrap();
                    carried.push(client.try_clone().expect("clone socket"));
                    carried.push(server.try_clone().expect("clone socket"));
                }
                let cut_now = Arc::new(AtomicBool::new(false));
                let sniffer = Sniffer {
                    buffer: Vec::new(),
                    started: false,
                    statements: seen.clone(),
                    hold_at: trigger.clone(),
                    held: holding.clone(),
                    cut_after: cutting.clone(),
                    cut_now: cut_now.clone(),
                    refusing: refuse.clone(),
                    refuse_after_cut: then_refuse.clone(),
                };
                let modes = Modes {
                    stalled: flag.clone(),
                    held: holding.clone(),
                    cut: cut_now,
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    modes.clone(),
                    Some(sniffer),
                );
                pipe(server, client, modes, None);
            }
        });
        Proxy {
            port,
            stalled,
            held,
            hold_at,
            cut_after,
            refuse_after_cut,
            sockets,
            statements,
        }
    }

    /// The statements clients sent through the proxy so far, in order (a multi-statement simple
    /// query is one entry: one request, one round trip).
    pub fn statements(&self) -> Vec<String> {
        self.statements.lock().unwrap().clone()
    }

    pub fn forget_statements(&self) {
        self.statements.lock().unwrap().clear();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test database's URL through this proxy, without TLS, so the proxy can read the
    /// statements sent.
    pub fn url_for(&self, db: &super::TestDb) -> String {
        let direct = format!("127.0.0.1:{}/", super::pg().port());
        assert!(db.url.contains(&direct), "{}", db.url);
        let url = db.url.replace(&direct, &format!("127.0.0.1:{}/", self.port));
        let joiner = if url.contains('?') { '&' } else { '?' };
        format!("{url}{joiner}sslmode=disable")
    }

    /// From now on every byte either side sends is read and dropped; nothing is closed.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// From the first client message whose statement text contains `fragment`, that message
    /// included, every byte either side sends is kept, in order, and delivered only at
    /// [`Proxy::release`] (a client's close too): a link that stalls exactly as that request
    /// leaves, and comes back later.
    pub fn hold_at(&self, fragment: &str) {
        *self.hold_at.lock().unwrap() = Some(fragment.to_string());
    }

    /// Delivers the first client message whose statement text is `statement` (and what came
    /// with it) to the server, then closes the client's side: a connection lost right after a
    /// request was sent, whose answer never arrives.
    pub fn cut_after(&self, statement: &str) {
        *self.cut_after.lock().unwrap() = Some(format!("={statement}"));
    }

    /// As [`Proxy::cut_after`], at the first message whose statement text contains `fragment`.
    pub fn cut_after_containing(&self, fragment: &str) {
        *self.cut_after.lock().unwrap() = Some(fragment.to_string());
    }

    /// As [`Proxy::cut_after`], and from that cut on every new connection is closed at once: the
    /// database cannot be reached again to ask what happened.
    pub fn cut_after_for_good(&self, statement: &str) {
        self.refuse_after_cut.store(true, Ordering::SeqCst);
        self.cut_after(statement);
    }

    /// Delivers what [`Proxy::hold_at`] kept, and forwards again.
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
    }

    /// Closes every connection it carried, as a network that finally gives up does.
    pub fn cut(&self) {
        for socket in self.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Splits the client's bytes into protocol messages: an untyped startup (after any SSLRequest or
/// GSSENCRequest, also untyped), then `type, length, body` messages.
struct Sniffer {
    buffer: Vec<u8>,
    started: bool,
    statements: Arc<Mutex<Vec<String>>>,
    hold_at: Arc<Mutex<Option<String>>>,
    held: Arc<AtomicBool>,
    cut_after: Arc<Mutex<Option<String>>>,
    /// Set when the message `cut_after` names passed: the pipe closes the client after this chunk.
    cut_now: Arc<AtomicBool>,
    refusing: Arc<AtomicBool>,
    refuse_after_cut: Arc<AtomicBool>,
}

impl Sniffer {
    fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        loop {
            let head = usize::from(self.started);
            if self.buffer.len() < head + 4 {
                return;
            }
            let length = u32::from_be_bytes(self.buffer[head..head + 4].try_into().unwrap()) as usize;
            let total = head + length;
            if self.buffer.len() < total {
                return;
            }
            let message: Vec<u8> = self.buffer.drain(..total).collect();
            if !self.started {
                // 80877103: SSLRequest, 80877104: GSSENCRequest; anything else is the startup.
                let code = u32::from_be_bytes(message[4..8].try_into().unwrap());
                self.started = !matches!(code, 80_877_103 | 80_877_104);
                continue;
            }
            let body = &message[5..];
            let text = match message[0] {
                b'Q' => body.split(|b| *b == 0).next(),
                // Parse: the statement's name, then its text.
                b'P' => body.split(|b| *b == 0).nth(1),
                _ => None,
            };
            if let Some(text) = text {
                let text = String::from_utf8_lossy(text).into_owned();
                let mut hold_at = self.hold_at.lock().unwrap();
                if hold_at.as_deref().is_some_and(|fragment| text.contains(fragment)) {
                    *hold_at = None;
                    self.held.store(true, Ordering::SeqCst);
                }
                let mut cut_after = self.cut_after.lock().unwrap();
                // `=` then the whole statement text, or a fragment it contains.
                let matched = cut_after.as_deref().is_some_and(|want| match want.strip_prefix('=') {
                    Some(exact) => exact == text,
                    None => text.contains(want),
                });
                if matched {
                    *cut_after = None;
                    self.cut_now.store(true, Ordering::SeqCst);
                    if self.refuse_after_cut.load(Ordering::SeqCst) {
                        self.refusing.store(true, Ordering::SeqCst);
                    }
                }
                self.statements.lock().unwrap().push(text);
            }
        }
    }
}

#[derive(Clone)]
struct Modes {
    stalled: Arc<AtomicBool>,
    held: Arc<AtomicBool>,
    /// This connection was cut ([`Proxy::cut_after`]): the server's answers are dropped from the
    /// moment the request that cut it arrived, so none of them reaches the client.
    cut: Arc<AtomicBool>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream, modes: Modes, mut sniffer: Option<Sniffer>) {
    thread::spawn(move || {
        // Short reads, so that bytes kept while held go out soon after the release even when
        // nothing more arrives.
        let _ = from.set_read_timeout(Some(std::time::Duration::from_millis(20)));
        let mut buffer = [0u8; 16 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut closed = false;
        loop {
            let held = modes.held.load(Ordering::SeqCst);
            if !held && !pending.is_empty() {
                if to.write_all(&pending).is_err() {
                    break;
                }
                pending.clear();
            }
            if closed {
                // The sender closed: its close is delivered after what was kept for it.
                if pending.is_empty() || to.peer_addr().is_err() {
                    break;
                }
                thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            let n = match from.read(&mut buffer) {
                Ok(0) => {
                    closed = true;
                    continue;
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(_) => {
                    closed = true;
                    continue;
                }
                Ok(n) => n,
            };
            if let Some(sniffer) = sniffer.as_mut() {
                sniffer.feed(&buffer[..n]);
            }
            if modes.stalled.load(Ordering::SeqCst) {
                continue;
            }
            if sniffer.is_none() && modes.cut.load(Ordering::SeqCst) {
                let _ = to.shutdown(Shutdown::Both);
                break;
            }
            // The sniffer may have just started a hold at this very chunk.
            if held || modes.held.load(Ordering::SeqCst) {
                pending.extend_from_slice(&buffer[..n]);
                continue;
            }
            if to.write_all(&buffer[..n]).is_err() {
                break;
            }
            if modes.cut.load(Ordering::SeqCst) {
                // The client's side: after what it sent was delivered; the server's: its answers.
                let _ = if sniffer.is_some() {
                    from.shutdown(Shutdown::Both)
                } else {
                    to.shutdown(Shutdown::Both)
                };
                break;
            }
        }
        if !modes.stalled.load(Ordering::SeqCst) {
            let _ = to.shutdown(Shutdown::Write);
        }
    });
}
