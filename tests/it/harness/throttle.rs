//! A stand-in in front of moto that answers the first N requests the way an AWS service answers
//! when its request rate is exceeded, then forwards everything to moto. moto itself never
//! throttles, and the real services cannot be reached from here, so this is the one way to see
//! what the function does when Secrets Manager pushes back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};

use super::http::{respond, serve, Shared};
use super::moto;

#[derive(Default)]
struct ThrottleState {
    throttle_left: usize,
    throttled: usize,
    forwarded: usize,
    shutdown: bool,
}

pub struct Throttle {
    port: u16,
    shared: Arc<Shared<ThrottleState>>,
}

const THROTTLED: &[u8] = br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

impl Throttle {
    /// Throttles the first `n` requests (`usize::MAX`: all of them).
    pub fn start(n: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(ThrottleState {
                throttle_left: n,
                ..ThrottleState::default()
            }),
            changed: Condvar::new(),
        });
        let state = shared.clone();
        let moto_port = moto().port();
        let port = serve(
            move |request, stream| {
                let throttle = {
                    let mut s = state.lock();
                    let throttle = s.throttle_left > 0;
                    if throttle {
                        s.throttle_left -= 1;
                        s.throttled += 1;
                    } else {
                        s.forwarded += 1;
                    }
                    throttle
                };
                if throttle {
                    respond(stream, 400, &[("Content-Type", "application/x-amz-json-1.1")], THROTTLED)?;
                    return Ok(true);
                }
                // Forwarded verbatim, one request per connection, and moto's answer relayed as is.
                let mut upstream = TcpStream::connect(("127.0.0.1", moto_port))?;
                let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
                for (name, value) in &request.headers {
                    if name != "connection" && name != "content-length" && name != "transfer-encoding" {
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                }
                head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", request.body.len()));
                upstream.write_all(head.as_bytes())?;
                upstream.write_all(&request.body)?;
                let mut answer = Vec::new();
                upstream.read_to_end(&mut answer)?;
                stream.write_all(&answer)?;
                Ok(false)
            },
            {
                let s = shared.clone();
                move || s.lock().shutdown
            },
        );
        Throttle { port, shared }
    }

    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests answered with a throttling error, and requests forwarded to moto.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.shared.lock();
        (s.throttled, s.forwarded)
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
