//! The minimal HTTP/1.1 server under `runtime_api` and `response_url`: plain HTTP on loopback,
//! one thread per connection, so the tests need no extra dependencies and can see every byte
//! the function sends. It implements only what the runtime client and the CloudFormation
//! responder use: keep-alive, Content-Length and chunked bodies, `Expect: 100-continue`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A server's state and the condition variable its waiters sleep on.
pub(super) struct Shared<S> {
    pub(super) state: Mutex<S>,
    pub(super) changed: Condvar,
}

impl<S> Shared<S> {
    pub(super) fn lock(&self) -> MutexGuard<'_, S> {
        // A panicking connection thread must not take every later assertion with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) struct HttpRequest {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl HttpRequest {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Serves on a kernel-chosen loopback port (the listener is bound before anyone
/// learns the port, so there is no race). `handle` returns whether to keep the
/// connection open.
pub(super) fn serve<H, S>(handle: H, stopped: S) -> u16
where
    H: Fn(HttpRequest, &mut TcpStream) -> std::io::Result<bool> + Send + Sync + 'static,
    S: Fn() -> bool + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stopped() {
                return;
            }
            let Ok(stream) = stream else { continue };
            let handle = handle.clone();
            std::thread::spawn(move || serve_connection(stream, &*handle));
        }
    });
    port
}

fn serve_connection(mut stream: TcpStream, handle: &dyn Fn(HttpRequest, &mut TcpStream) -> std::io::Result<bool>) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    loop {
        match read_request(&mut reader, &mut stream) {
            Ok(Some(request)) => {
                let close = request.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                match handle(request, &mut stream) {
                    Ok(true) if !close => continue,
                    _ => break,
                }
            }
            Ok(None) => break,
            Err(_) => {
                let _ = respond(&mut stream, 400, &[], b"bad request");
                break;
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Ok(None) on a clean end of stream between requests.
fn read_request(reader: &mut BufReader<TcpStream>, stream: &mut TcpStream) -> std::io::Result<Option<HttpRequest>> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let mut line = String::new();
    // Tolerate stray blank lines between pipelined requests.
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut words = line.split_whitespace();
    let (Some(method), Some(path), Some(_version)) = (words.next(), words.next(), words.next()) else {
        return Err(invalid(format!("bad request line {line:?}")));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(invalid("end of stream inside headers".into()));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').ok_or_else(|| invalid(format!("bad header {l:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let request_header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    if request_header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = request_header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let len: usize = match request_header("content-length") {
            Some(v) => v.parse().map_err(|_| invalid(format!("bad Content-Length {v:?}")))?,
            None => 0,
        };
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(HttpRequest {
        method,
        path,
        headers,
        body,
    }))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

pub(super) fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
}
