//! The S3-compatible server of the tests: moto on 127.0.0.1, installed with pip if
//! missing and started once per test process (see tests/support/s3_server.py).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The running server: its port, and the port of the proxy that drops conditional
/// write headers.
pub struct Server {
    /// moto's port.
    pub port: u16,
    /// The header-dropping proxy's port.
    pub proxy_port: u16,
    /// Kept open for the life of the test process; the server exits when it closes.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static BUCKETS: AtomicUsize = AtomicUsize::new(0);

/// Returns the server, starting it (and installing moto) on first use.
pub fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let has_moto = || {
            Command::new("python3")
                .args(["-c", "import moto.server, flask"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !has_moto() {
            let installed = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "moto[server]==5.2.1"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                installed && has_moto(),
                "the S3 tests need moto: pip install 'moto[server]==5.2.1'"
            );
        }
        let (child, stdin, ports) = super::support::start_ready("s3_server.py", &[], None);
        Server {
            port: ports[0],
            proxy_port: ports[1],
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
        }
    })
}

/// Creates a new, empty bucket and returns its name.
pub fn bucket() -> String {
    let name = format!(
        "mreg-{}-{}",
        std::process::id(),
        BUCKETS.fetch_add(1, Ordering::Relaxed)
    );
    let (status, _) = request("PUT", &format!("/{name}"), &[]);
    assert_eq!(status, 200, "creating bucket {name}");
    name
}

/// Writes raw bytes at a key, bypassing mreg (to corrupt an object, say).
pub fn put(bucket: &str, key: &str, body: &[u8]) {
    let (status, reply) = request("PUT", &format!("/{bucket}/{key}"), body);
    assert_eq!(
        status,
        200,
        "writing {key}: {}",
        String::from_utf8_lossy(&reply)
    );
}

/// Returns the bytes at a key, bypassing mreg.
pub fn get(bucket: &str, key: &str) -> Vec<u8> {
    let (status, reply) = request("GET", &format!("/{bucket}/{key}"), &[]);
    assert_eq!(status, 200, "reading {key}");
    reply
}

/// Deletes every key under a prefix, bypassing mreg (a bucket emptied by hand).
pub fn delete_all(bucket: &str, prefix: &str) {
    for key in keys(bucket, prefix) {
        let (status, _) = request("DELETE", &format!("/{bucket}/{key}"), &[]);
        assert_eq!(status, 204, "deleting {key}");
    }
}

/// Returns the keys under a prefix of a bucket.
pub fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    let (status, body) = request(
        "GET",
        &format!("/{bucket}?list-type=2&max-keys=100000&prefix={prefix}"),
        &[],
    );
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    text.split("<Key>")
        .skip(1)
        .map(|part| part.split("</Key>").next().unwrap().to_owned())
        .collect()
}

/// Sends one HTTP request to moto with a dummy signature (moto does not check it).
fn request(method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let port = server().port;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP reply");
    let status_line = String::from_utf8_lossy(&reply[..split]).to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let mut body = reply[split + 4..].to_vec();
    if status_line
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}
