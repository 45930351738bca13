//! Starts and stops a `llama-server` for one GGUF file, for the quantization sweep.
//!
//! The server listens on a free loopback port, with `--metrics`, the given `-c` and `-t` and
//! any extra arguments; its stdout and stderr go to a log file. [`LlamaServer::start`] returns
//! once `GET /health` answers 200 (llama-server answers 503 while it loads the model), and
//! fails early, with the end of the log, when the process exits first. The process is killed
//! when the [`LlamaServer`] is dropped.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::perplexity::find_tool;

/// Environment variable naming the `llama-server` binary.
pub const ENV_BINARY: &str = "INFERMON_LLAMA_SERVER";

/// How to start llama-server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerOptions {
    /// The binary; `None`: [`ENV_BINARY`], else `llama-server` on `PATH`.
    pub binary: Option<PathBuf>,
    /// Context size (`-c`).
    pub ctx: u32,
    /// CPU threads (`-t`).
    pub threads: u32,
    /// Extra arguments passed as they are (`-ngl 99`, `-fa on`, …).
    pub extra_args: Vec<String>,
    /// How long to wait for `/health` to answer 200.
    pub ready_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            binary: None,
            ctx: 4096,
            threads: 2,
            extra_args: Vec::new(),
            ready_timeout: Duration::from_secs(300),
        }
    }
}

/// A running llama-server, killed on drop.
#[derive(Debug)]
pub struct LlamaServer {
    child: Child,
    url: String,
    log: PathBuf,
}

impl LlamaServer {
    /// Starts llama-server on `model`, logging to `log`, and waits until it is ready.
    ///
    /// # Errors
    ///
    /// Names the model: it is not a file (checked before anything starts), the binary or
    /// log file is missing, the process could not start, exited before it was ready, or did
    /// not answer within [`ServerOptions::ready_timeout`] (with the last lines of its log).
    pub async fn start(model: &Path, opts: &ServerOptions, log: &Path) -> Result<Self, String> {
        if !model.is_file() {
            return Err(format!("model {} is not a file", model.display()));
        }
        let binary = find_tool(opts.binary.as_deref(), ENV_BINARY, "llama-server")?;
        let port = free_port()?;
        if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
        }
        let file = File::create(log)
            .map_err(|e| format!("cannot create server log {}: {e}", log.display()))?;
        let file2 = file
            .try_clone()
            .map_err(|e| format!("server log {}: {e}", log.display()))?;
        let child = Command::new(&binary)
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--metrics", "-c", &opts.ctx.to_string()])
            .args(["-t", &opts.threads.to_string()])
            .args(&opts.extra_args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} for {}: {e}",
                    binary.display(),
                    model.display()
                )
            })?;
        let mut server = LlamaServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log: log.to_path_buf(),
        };
        server.wait_ready(model, port, opts.ready_timeout).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, model: &Path, port: u16, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if health_ok(port).await {
                return Ok(());
            }
            let why = match self.child.try_wait() {
                Ok(Some(status)) => Some(format!("exited with {status}")),
                Ok(None) if start.elapsed() >= limit => {
                    Some(format!("did not answer /health with 200 within {limit:?}"))
                }
                Ok(None) => None,
                Err(e) => Some(format!("cannot be waited for: {e}")),
            };
            if let Some(why) = why {
                self.kill();
                return Err(format!(
                    "llama-server for {} {why}; log {}: {}",
                    model.display(),
                    self.log.display(),
                    log_tail(&self.log, 5)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Stops the server (kills it and waits for it to end).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free loopback port (free when asked; another process may take it before the server).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Whether `GET /health` on the loopback `port` answers 200 within two seconds.
async fn health_ok(port: u16) -> bool {
    let ask = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let req =
            format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut head = [0u8; 32];
        let mut n = 0;
        while n < 12 {
            let got = s.read(&mut head[n..]).await.ok()?;
            if got == 0 {
                break;
            }
            n += got;
        }
        let line = String::from_utf8_lossy(&head[..n]).into_owned();
        Some(line.starts_with("HTTP/1.1 200") || line.starts_with("HTTP/1.0 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ask).await,
        Ok(Some(true))
    )
}

/// The last `n` non-empty lines of a log file, joined with ` | `.
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return "(no log)".to_string();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return "(empty log)".to_string();
    }
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("fake-llama-server");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[tokio::test]
    async fn missing_model_is_named_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ServerOptions {
            binary: Some(dir.path().join("no-such-binary")),
            ..ServerOptions::default()
        };
        let log = dir.path().join("logs/server.log");
        let e = LlamaServer::start(&dir.path().join("Q4_0.gguf"), &opts, &log)
            .await
            .unwrap_err();
        assert!(e.contains("Q4_0.gguf") && e.contains("not a file"), "{e}");
        assert!(!log.exists(), "nothing may start for a missing model");
    }

    #[tokio::test]
    async fn early_exit_reports_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, "GGUF").unwrap();
        let opts = ServerOptions {
            binary: Some(script(
                dir.path(),
                "echo \"args: $*\" >&2; echo 'error: failed to load model' >&2; exit 1",
            )),
            ..ServerOptions::default()
        };
        let log = dir.path().join("server.log");
        let e = LlamaServer::start(&model, &opts, &log).await.unwrap_err();
        assert!(e.contains("m.gguf") && e.contains("exited"), "{e}");
        assert!(e.contains("failed to load model"), "{e}");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("--metrics -c 4096 -t 2"), "{logged}");
    }

    #[tokio::test]
    async fn timeout_kills_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, "GGUF").unwrap();
        let pid_file = dir.path().join("pid");
        let opts = ServerOptions {
            binary: Some(script(
                dir.path(),
                &format!("echo $$ > {}; exec sleep 60", pid_file.display()),
            )),
            ready_timeout: Duration::from_secs(2),
            ..ServerOptions::default()
        };
        let e = LlamaServer::start(&model, &opts, &dir.path().join("s.log"))
            .await
            .unwrap_err();
        assert!(e.contains("within"), "{e}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let alive = Path::new(&format!("/proc/{}", pid.trim())).exists();
        assert!(!alive, "the fake server {pid} is still running");
    }

    #[tokio::test]
    async fn health_needs_a_200() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let serve = |status: &'static str| {
            let l = &l;
            async move {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(status.as_bytes()).await.unwrap();
            }
        };
        let (ok, ()) = tokio::join!(health_ok(port), serve("HTTP/1.1 503 Unavailable\r\n\r\n"));
        assert!(!ok);
        let (ok, ()) = tokio::join!(health_ok(port), serve("HTTP/1.1 200 OK\r\n\r\n"));
        assert!(ok);
        drop(l);
        assert!(!health_ok(port).await);
    }
}
