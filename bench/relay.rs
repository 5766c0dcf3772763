//! A delay-line TCP relay for the link benchmark (bench/parts/part7_link.py, driven by `LinkProxy` in
//! bench/pgproxy.py): every chunk either side sends is delivered a fixed one-way time after it
//! arrived, as a network link would deliver it, and round trips are counted as
//! `CountingProxy` counts them.
//!
//! Standard library only, one file, so it builds with a plain `rustc -O bench/relay.rs` in a few
//! seconds, without the project's release (LTO) build; pgproxy.py compiles it on first use.
//!
//!     relay TARGET_HOST:PORT ONE_WAY_MICROSECONDS
//!
//! It listens on 127.0.0.1, port chosen by the system, and prints that port as stdout's first
//! line. Then it answers commands on stdin, one per line, one line each on stdout:
//!   `reset`     zeroes the connection and round-trip counters: `ok`
//!   `snapshot`  `connections N round_trips M active K`
//! and exits when stdin closes.
//!
//! Per accepted connection it connects to the target (TCP_NODELAY on both sockets) and runs, per
//! direction, a reader thread that stamps each chunk with its delivery time (arrival + delay) and
//! queues it, and a writer thread that sleeps until the oldest chunk is due and then writes every
//! chunk already due as one write. Bytes keep arriving while earlier ones wait, so a pipelined
//! flight pays the delay once. The writer sleeps with `std::thread::sleep` (nanosleep, with the
//! thread's timer slack lowered from Linux's 50 us) until shortly before the due time and yields
//! the CPU for the rest, since a sleep alone wakes up to ~0.1 ms late on a virtual machine.
//! With no delay the reader writes itself, with no thread hand-off. End of stream is passed on
//! as a half-close (shutdown of the write side) once the bytes queued before it are delivered; an
//! error on either socket shuts the whole connection down.
//!
//! A round trip is a client flight (bytes after the server last spoke) that the server answers:
//! a client chunk after a server chunk (or first) opens one, the next server chunk closes it. As
//! in `CountingProxy`, a connection's round trips are added to the total when it closes.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Counters {
    connections: u64,
    round_trips: u64,
    active: i64,
}

/// Who spoke last on one connection, and its round trips so far.
#[derive(Default)]
struct Trips {
    last_was_client: Option<bool>,
    pending: bool,
    trips: u64,
}

impl Trips {
    fn arrived(&mut self, from_client: bool) {
        if from_client {
            if self.last_was_client != Some(true) {
                self.pending = true;
            }
        } else if self.pending {
            self.trips += 1;
            self.pending = false;
        }
        self.last_was_client = Some(from_client);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: {} TARGET_HOST:PORT ONE_WAY_MICROSECONDS", args[0]);
        std::process::exit(2);
    }
    let target = args[1].clone();
    let delay_us: f64 = match args[2].parse() {
        Ok(d) if d >= 0.0 && f64::is_finite(d) => d,
        _ => {
            eprintln!("relay: bad delay {:?} (microseconds, >= 0)", args[2]);
            std::process::exit(2);
        }
    };
    let delay = Duration::from_nanos((delay_us * 1000.0).round() as u64);
    lower_timer_slack();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail("bind", e));
    let port = listener.local_addr().unwrap_or_else(|e| fail("local_addr", e)).port();
    let counters = Arc::new(Mutex::new(Counters::default()));
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{port}");
        let _ = out.flush();
    }

    let accept_counters = Arc::clone(&counters);
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            {
                let mut c = accept_counters.lock().unwrap();
                c.connections += 1;
                c.active += 1;
            }
            let counters = Arc::clone(&accept_counters);
            let target = target.clone();
            thread::spawn(move || {
                let trips = connection(client, &target, delay);
                let mut c = counters.lock().unwrap();
                c.round_trips += trips;
                c.active -= 1;
            });
        }
    });

    // The control channel: the main thread, so stdin's end ends the process.
    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let answer = match line.trim() {
            "reset" => {
                let mut c = counters.lock().unwrap();
                c.connections = 0;
                c.round_trips = 0;
                "ok".to_string()
            }
            "snapshot" => {
                let c = counters.lock().unwrap();
                format!("connections {} round_trips {} active {}", c.connections, c.round_trips, c.active)
            }
            "" => continue,
            other => format!("error unknown command {other:?}"),
        };
        let mut out = io::stdout().lock();
        if writeln!(out, "{answer}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    std::process::exit(0);
}

fn fail(what: &str, e: io::Error) -> ! {
    eprintln!("relay: {what}: {e}");
    std::process::exit(1);
}

/// Lowers this thread's timer slack (inherited by the threads it starts) from Linux's default
/// 50 us to 1 ns, so a sleep ends when it is due rather than up to 50 us later.
#[cfg(target_os = "linux")]
fn lower_timer_slack() {
    extern "C" {
        fn prctl(option: i32, ...) -> i32;
    }
    const PR_SET_TIMERSLACK: i32 = 29;
    // SAFETY: PR_SET_TIMERSLACK takes one unsigned long and touches nothing else.
    unsafe {
        prctl(PR_SET_TIMERSLACK, 1 as std::ffi::c_ulong);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_timer_slack() {}

/// Relays one connection until both directions have ended; returns its round trips.
fn connection(client: TcpStream, target: &str, delay: Duration) -> u64 {
    let server = match TcpStream::connect(target) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("relay: connect {target}: {e}");
            let _ = client.shutdown(Shutdown::Both);
            return 0;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let trips = Arc::new(Mutex::new(Trips::default()));
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        return 0;
    };
    let up = {
        let trips = Arc::clone(&trips);
        let (c, s) = (client2, server2);
        thread::spawn(move || direction(c, s, true, delay, &trips))
    };
    direction(server, client, false, delay, &trips);
    let _ = up.join();
    let t = trips.lock().unwrap().trips;
    t
}

/// Copies `src` to `dst`, each chunk delivered `delay` after it arrived. On end of stream, once
/// everything before it is delivered, shuts down `dst`'s write side; on an error, both sockets.
fn direction(src: TcpStream, dst: TcpStream, from_client: bool, delay: Duration, trips: &Mutex<Trips>) {
    let abort = |a: &TcpStream, b: &TcpStream| {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    };
    let mut buf = vec![0u8; 65536];
    let mut reader = &src;
    if delay.is_zero() {
        let mut writer = &dst;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => {
                    let _ = dst.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    trips.lock().unwrap().arrived(from_client);
                    if writer.write_all(&buf[..n]).is_err() {
                        return abort(&src, &dst);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return abort(&src, &dst),
            }
        }
    }

    // None marks the end of the stream; a reader error shuts the sockets down itself.
    let (tx, rx) = mpsc::channel::<Option<(Instant, Vec<u8>)>>();
    let (src_w, dst_w) = match (src.try_clone(), dst.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return abort(&src, &dst),
    };
    let writer = thread::spawn(move || deliver(rx, src_w, dst_w));
    loop {
        match reader.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(None);
                break;
            }
            Ok(n) => {
                let due = Instant::now() + delay;
                trips.lock().unwrap().arrived(from_client);
                if tx.send(Some((due, buf[..n].to_vec()))).is_err() {
                    break; // the writer failed and has shut both sockets down
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                abort(&src, &dst);
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.join();
}

/// How early a writer wakes from its sleep to wait out the rest yielding: a sleep here ends
/// 40-130 us late (timer slack lowered; the wake-up of an idle virtual CPU), paid twice per round trip.
const SPIN: Duration = Duration::from_micros(200);

/// Sleeps until `SPIN` before `due`, then yields the CPU until `due`: delivery within a few
/// microseconds of the due time, for at most `SPIN` of busy waiting per delivery.
fn wait_until(due: Instant) {
    let now = Instant::now();
    if due > now + SPIN {
        thread::sleep(due - now - SPIN);
    }
    while Instant::now() < due {
        thread::yield_now();
    }
}

/// The writer half of a direction: sleeps until the oldest queued chunk is due, then writes it
/// and every chunk due by then as one write.
fn deliver(rx: mpsc::Receiver<Option<(Instant, Vec<u8>)>>, src: TcpStream, dst: TcpStream) {
    let mut writer = &dst;
    let mut held: Option<Option<(Instant, Vec<u8>)>> = None;
    let mut batch = Vec::new();
    loop {
        let head = match held.take() {
            Some(item) => item,
            None => match rx.recv() {
                Ok(item) => item,
                Err(_) => return, // the reader hit an error and shut both sockets down
            },
        };
        let Some((due, chunk)) = head else {
            let _ = dst.shutdown(Shutdown::Write);
            return;
        };
        wait_until(due);
        let now = Instant::now();
        batch.clear();
        batch.extend_from_slice(&chunk);
        let mut ended = false;
        loop {
            match rx.try_recv() {
                Ok(Some((d, c))) if d <= now => batch.extend_from_slice(&c),
                Ok(Some(item)) => {
                    held = Some(Some(item));
                    break;
                }
                Ok(None) => {
                    ended = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if writer.write_all(&batch).is_err() {
            let _ = src.shutdown(Shutdown::Both);
            let _ = dst.shutdown(Shutdown::Both);
            return;
        }
        if ended {
            let _ = dst.shutdown(Shutdown::Write);
            return;
        }
    }
}
