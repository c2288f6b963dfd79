//! The scrape targets: a node_exporter body served on many loopback ports
//! by a separate process, so its CPU is not the scraper's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::BoxError;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A free loopback port (bound, then released).
pub(crate) fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The body to serve and where it came from: Debian's node exporter's own
/// output when it is installed, else a synthesized body of the same shape.
pub(crate) fn node_exporter_body() -> Result<(Vec<u8>, &'static str), BoxError> {
    if Path::new(NODE_EXPORTER).exists() {
        match capture_node_exporter() {
            Ok(b) => return Ok((b, "captured from prometheus-node-exporter")),
            Err(e) => eprintln!("capturing node_exporter output failed ({e}); synthesizing"),
        }
    }
    Ok((synthesized(), "synthesized (node_exporter shape)"))
}

fn capture_node_exporter() -> Result<Vec<u8>, BoxError> {
    let port = free_port()?;
    let mut child = Command::new(NODE_EXPORTER)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut last_err: BoxError = "node exporter did not answer".into();
    let mut body = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        match http_get_metrics(port) {
            Ok(b) => {
                body = Some(b);
                break;
            }
            Err(e) => last_err = e,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    body.ok_or(last_err)
}

fn http_get_metrics(port: u16) -> Result<Vec<u8>, BoxError> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(
        b"GET /metrics HTTP/1.0\r\nHost: localhost\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
    )?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    if !resp.starts_with(b"HTTP/1.0 200") && !resp.starts_with(b"HTTP/1.1 200") {
        return Err("node exporter did not answer 200".into());
    }
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    Ok(resp[split + 4..].to_vec())
}

/// About 550 samples in node_exporter's families and label shapes.
fn synthesized() -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::new();
    let family = |s: &mut String, name: &str, kind: &str, series: &[String]| {
        let _ = writeln!(s, "# HELP {name} Synthesized {name} statistic.");
        let _ = writeln!(s, "# TYPE {name} {kind}");
        for (i, labels) in series.iter().enumerate() {
            let _ = writeln!(s, "{name}{labels} {}", 1234.5 + i as f64 * 977.25);
        }
    };
    let cpu: Vec<String> = (0..4)
        .flat_map(|c| {
            [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ]
            .map(|m| format!("{{cpu=\"{c}\",mode=\"{m}\"}}"))
        })
        .collect();
    family(&mut s, "node_cpu_seconds_total", "counter", &cpu);
    let per = |key: &str, values: &[&str]| -> Vec<String> {
        values
            .iter()
            .map(|v| format!("{{{key}=\"{v}\"}}"))
            .collect()
    };
    let disks = per("device", &["sda", "sdb", "dm-0"]);
    for f in 0..17 {
        family(
            &mut s,
            &format!("node_disk_stat_{f}_total"),
            "counter",
            &disks,
        );
    }
    let nics = per("device", &["eth0", "lo", "docker0"]);
    for f in 0..16 {
        family(
            &mut s,
            &format!("node_network_stat_{f}_total"),
            "counter",
            &nics,
        );
    }
    let mounts: Vec<String> = ["/", "/boot", "/home", "/run", "/var"]
        .iter()
        .map(|m| format!("{{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"{m}\"}}"))
        .collect();
    for f in 0..7 {
        family(
            &mut s,
            &format!("node_filesystem_stat_{f}"),
            "gauge",
            &mounts,
        );
    }
    let collectors: Vec<String> = (0..40)
        .map(|c| format!("{{collector=\"collector{c}\"}}"))
        .collect();
    family(
        &mut s,
        "node_scrape_collector_duration_seconds",
        "gauge",
        &collectors,
    );
    family(
        &mut s,
        "node_scrape_collector_success",
        "gauge",
        &collectors,
    );
    for f in 0..300 {
        family(
            &mut s,
            &format!("node_vmstat_field_{f}"),
            "untyped",
            &[String::new()],
        );
    }
    s.into_bytes()
}

/// The target-server process, stopped when dropped (and on its own when its
/// stdin closes, should this process die first).
pub(crate) struct TargetServer {
    child: Child,
    pub(crate) ports: Vec<u16>,
}

impl TargetServer {
    /// Starts `<this program> serve` with `targets` ports serving `body_file`.
    pub(crate) fn start(targets: usize, body_file: &Path) -> Result<Self, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg(targets.to_string())
            .arg(body_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout of target server")?;
        let mut ports = Vec::with_capacity(targets);
        for line in BufReader::new(stdout).lines().take(targets) {
            ports.push(line?.trim().parse()?);
        }
        if ports.len() != targets {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("target server announced {} ports", ports.len()).into());
        }
        Ok(TargetServer { child, ports })
    }

    pub(crate) fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Bodies {
    plain: Bytes,
    gzip: Bytes,
}

/// The `serve` mode: `targets` listeners on free loopback ports, each port
/// printed on its own line, serving the body (gzipped when asked, as
/// node_exporter does) until stdin closes.
pub(crate) fn serve(targets: usize, body_file: &Path) -> Result<(), BoxError> {
    let plain = std::fs::read(body_file)?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&plain)?;
    let bodies = Arc::new(Bodies {
        plain: Bytes::from(plain),
        gzip: Bytes::from(enc.finish()?),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(metrics))
            .with_state(bodies);
        let mut servers = tokio::task::JoinSet::new();
        let mut out = std::io::stdout().lock();
        for _ in 0..targets {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            writeln!(out, "{}", listener.local_addr()?.port())?;
            servers.spawn(axum::serve(listener, app.clone()).into_future());
        }
        out.flush()?;
        drop(out);
        // Parent gone or done: stdin reaches EOF.
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        });
        tokio::select! {
            _ = stdin_closed => {}
            Some(res) = servers.join_next() => {
                res??;
                return Err("a target listener stopped".into());
            }
        }
        servers.abort_all();
        Ok::<(), BoxError>(())
    })
}

async fn metrics(State(bodies): State<Arc<Bodies>>, headers: HeaderMap) -> Response {
    let gzip = headers
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    if gzip {
        (
            [(CONTENT_TYPE, TEXT_FORMAT), (CONTENT_ENCODING, "gzip")],
            bodies.gzip.clone(),
        )
            .into_response()
    } else {
        ([(CONTENT_TYPE, TEXT_FORMAT)], bodies.plain.clone()).into_response()
    }
}
