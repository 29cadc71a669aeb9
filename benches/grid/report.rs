//! Timing web calls (curl's own clock, time to the first body byte) and
//! printing side-by-side tables of medians.

use std::process::Command;
use std::time::Instant;

use testkit::median;

/// One web API call with curl: (seconds as curl measured it, body).
pub fn curl(args: &[&str]) -> (f64, String) {
    let o = Command::new("curl")
        .args(["-sS", "-f", "-w", "\n%{time_total}"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "curl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, t) = text.rsplit_once('\n').unwrap();
    (t.trim().parse().unwrap(), body.to_string())
}

/// Seconds from connecting to `http://HOST:PORT/PATH` until the first
/// byte of the response's body (not of its headers, which a gateway may
/// send before it has fetched anything) has arrived; the rest is read and
/// dropped.
pub fn first_body_byte(method: &str, url: &str) -> f64 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (mut seen, mut buf, mut first) = (Vec::new(), vec![0u8; 64 << 10], None);
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if first.is_none() {
            seen.extend_from_slice(&buf[..n]);
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                assert!(
                    seen.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&seen[..end])
                );
                if seen.len() > end + 4 {
                    first = Some(t.elapsed().as_secs_f64());
                }
            }
        }
    }
    first.expect("a body")
}

/// Print `| op | ours ms | tahoe ms | ratio |` rows of medians.
pub fn print_table(ops: &[&str], ours: &[Vec<f64>], theirs: &[Vec<f64>]) {
    println!("| op | ours ms | tahoe ms | ours faster by |");
    println!("|---|---|---|---|");
    for (i, op) in ops.iter().enumerate() {
        let o = median(ours[i].clone()) * 1e3;
        if theirs[i].is_empty() {
            println!("| {op} | {o:.1} | - | - |");
        } else {
            let t = median(theirs[i].clone()) * 1e3;
            println!("| {op} | {o:.1} | {t:.1} | {:.1}x |", t / o);
        }
    }
}
