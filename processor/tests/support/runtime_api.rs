//! A minimal AWS Lambda Runtime API on loopback for one invocation: hands out one event on
//! `GET /2018-06-01/runtime/invocation/next`, captures what the function posts back on
//! `.../response` or `.../error`, and holds any further `next` poll (as Lambda does between
//! invocations). Enough to run the real binary in Lambda mode.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

pub const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// What the function answered: ("response" | "error", body).
pub type Answer = (String, Vec<u8>);

pub struct RuntimeApi {
    pub address: String,
    answers: mpsc::Receiver<Answer>,
}

impl RuntimeApi {
    pub fn start(event: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            let mut served = false;
            for stream in listener.incoming().flatten() {
                let tx = tx.clone();
                let event = if served { None } else { Some(event.clone()) };
                served = true;
                std::thread::spawn(move || connection(stream, event, &tx));
            }
        });
        Self { address, answers }
    }

    pub fn answer(&self, timeout: Duration) -> Option<Answer> {
        self.answers.recv_timeout(timeout).ok()
    }
}

fn connection(stream: TcpStream, mut event: Option<Vec<u8>>, tx: &mpsc::Sender<Answer>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        if path.ends_with("/runtime/invocation/next") {
            let Some(event) = event.take() else {
                // No more invocations: hold the poll until the test kills the process.
                std::thread::sleep(Duration::from_secs(3600));
                return;
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 60_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: {REQUEST_ID}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:das-processor\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n\r\n",
                event.len()
            );
            out.write_all(head.as_bytes()).unwrap();
            out.write_all(&event).unwrap();
        } else {
            let kind = if path.ends_with("/response") {
                "response"
            } else {
                "error"
            };
            out.write_all(
                b"HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n",
            )
            .unwrap();
            let _ = tx.send((format!("{kind} {path}"), body));
        }
        out.flush().unwrap();
    }
}
