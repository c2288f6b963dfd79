use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1, and never handed out
/// before in this test process: a cluster picks all its ports before its
/// processes bind them, and the OS may offer a picked-but-unbound port
/// again, which would make two processes fight over one listener.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("the OS hands out a free loopback port");
        let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(port) {
            return port;
        }
    }
}

/// Where the `tidemark` binary under test is.
pub fn tidemark_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TIDEMARK_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test-exe> -> target/<profile>/tidemark
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let bin = profile_dir.join("tidemark");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bin tidemark` first or set TIDEMARK_BIN",
        bin.display()
    );
    bin
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Builds a [`Process`]: flags beyond the listen addresses and data dir.
pub struct ProcessBuilder {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
    http_port: Option<u16>,
    grpc_port: Option<u16>,
}

impl ProcessBuilder {
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// An environment variable of the process (e.g. a test-only hook).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Reuse a data directory (e.g. to restart a killed process on its data).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Listen on these ports instead of free ones: processes of a cluster
    /// name each other's addresses before any of them starts.
    pub fn ports(mut self, http_port: u16, grpc_port: u16) -> Self {
        self.http_port = Some(http_port);
        self.grpc_port = Some(grpc_port);
        self
    }

    pub fn start(self) -> Process {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = self.data_dir.unwrap_or_else(|| tmp.path().join("data"));
        let http_port = self.http_port.unwrap_or_else(free_port);
        let grpc_port = self.grpc_port.unwrap_or_else(free_port);
        let mut args = vec![
            format!("--server.http-listen-address=127.0.0.1:{http_port}"),
            format!("--server.grpc-listen-address=127.0.0.1:{grpc_port}"),
            format!("--storage.data-dir={}", data_dir.display()),
        ];
        args.extend(self.args);
        let log_path = tmp.path().join("tidemark.log");
        let mut p = Process {
            child: None,
            http_port,
            grpc_port,
            data_dir,
            log_path,
            args,
            envs: self.envs,
            _tmp: tmp,
        };
        p.spawn();
        p
    }
}

/// A running `tidemark` process, killed on drop.
pub struct Process {
    child: Option<Child>,
    pub http_port: u16,
    pub grpc_port: u16,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    /// The whole command line, to start the process again the same way.
    args: Vec<String>,
    /// Environment variables set on top of the test's own.
    envs: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

impl Process {
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder {
            args: Vec::new(),
            envs: Vec::new(),
            data_dir: None,
            http_port: None,
            grpc_port: None,
        }
    }

    /// Starts the binary with this process's command line; its output is
    /// appended to the one log, so a restarted process keeps its history.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let child = Command::new(tidemark_bin())
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("tidemark starts");
        self.child = Some(child);
    }

    /// Starts the process again on the same ports, data and flags, after a
    /// [`Process::kill`] or [`Process::terminate`] (kills it first if it is
    /// still running).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sets (`Some`) or removes (`None`) an environment variable for the
    /// next [`Process::restart`].
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.envs.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.envs.push((key.to_string(), v.to_string()));
        }
    }

    /// Whether the process is still running (it may have exited on its own).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The OS process id while it runs (to read its CPU time in `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `127.0.0.1:<grpc port>`, as other processes reach it.
    pub fn grpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// Waits until `/ready` answers 200; panics with the log if it never does.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let url = self.url("/ready");
        let client = reqwest::blocking::Client::new();
        let ok = wait_until(timeout, || {
            client
                .get(&url)
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        });
        if !ok {
            panic!(
                "tidemark did not become ready in {timeout:?}; log:\n{}",
                self.log()
            );
        }
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let pid = i32::try_from(child.id()).ok()?;
        // SAFETY-free: libc::kill only sends a signal to our own child.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL, as a crashed machine would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
