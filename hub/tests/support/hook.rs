//! A minimal webhook receiver for tests: HTTP/1.1 on a free loopback port, answering 200
//! to every POST and yielding each JSON body.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// A minimal HTTP/1.1 receiver: answers 200 to every POST and yields each JSON body.
pub struct Hook {
    pub port: u16,
    bodies: mpsc::Receiver<Value>,
}

impl Hook {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, bodies) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line
                        .to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                    {
                        len = v.parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    let _ = tx.send(v);
                }
            }
        });
        Self { port, bodies }
    }

    pub fn next(&self) -> Value {
        self.bodies
            .recv_timeout(Duration::from_secs(20))
            .expect("no webhook within 20 s")
    }

    /// The next body if one arrives within `wait`.
    pub fn try_next(&self, wait: Duration) -> Option<Value> {
        self.bodies.recv_timeout(wait).ok()
    }

    pub fn nothing_more(&self, wait: Duration) {
        if let Ok(v) = self.bodies.recv_timeout(wait) {
            panic!("an extra webhook arrived: {v}");
        }
    }
}
