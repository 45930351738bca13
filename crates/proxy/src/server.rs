//! Accepting connections and serving them with the forwarder.
//!
//! A proxy runs on worker threads of its own, each a single-threaded runtime with its own
//! copy of the listening socket, its own upstream connections and its own event loop, as
//! nginx runs worker processes: a connection, its upstream request and every chunk of the
//! answer stay on one thread, so no chunk wakes another thread on its way through. Whichever
//! idle worker wakes first accepts a new connection. The agent's own work (sampling, API,
//! store) runs elsewhere and never delays a stream.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::config::{ProxyConfig, ProxyError};
use crate::forward::{handle, State};
use crate::limits::{
    refuse, Admit, Gate, BIG_HEAD, BUSY, MAX_HEADERS, MAX_HEADER_BYTES, SLOW_HEAD,
};
use crate::upstream::Pool;
use crate::RecordSink;

/// A bound proxy, ready to serve.
pub struct Proxy {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    cfg: ProxyConfig,
    sink: Arc<dyn RecordSink>,
}

impl Proxy {
    /// Checks the settings and binds the listen address.
    pub async fn bind(cfg: ProxyConfig, sink: Arc<dyn RecordSink>) -> Result<Proxy, ProxyError> {
        cfg.check()?;
        let bind_err = |source| ProxyError::Bind {
            addr: cfg.listen,
            source,
        };
        let listener = TcpListener::bind(cfg.listen).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let listener = listener.into_std().map_err(bind_err)?;
        Ok(Proxy {
            listener,
            addr,
            cfg,
            sink,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }

    /// Serves until `stop` resolves: then no new connection is accepted, idle keep-alive
    /// connections are closed, and requests in flight may finish (a streamed answer to its
    /// end) for up to [`ProxyConfig::drain_timeout`]; connections still open then are closed,
    /// which records their requests as cancelled. Returns when every worker thread is done
    /// (or, should one hang, 5 s after that).
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let (phase_tx, phase_rx) = watch::channel(Phase::Serve);
        // Each worker holds a sender; `recv` answers `None` once every worker has ended.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let gate = Gate::new(self.cfg.max_connections);
        let workers = self.cfg.workers.max(1);
        let mut started = 0;
        for i in 0..workers {
            let listener = match self.listener.try_clone() {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "proxy worker {i}: cannot share the listener");
                    continue;
                }
            };
            let w = Worker {
                state: Arc::new(worker_state(&self.cfg, self.sink.clone())),
                phase: phase_rx.clone(),
                gate: gate.clone(),
                listen: self.addr,
            };
            let done = done_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("infermon-proxy-{i}"))
                .spawn(move || {
                    worker(listener, w);
                    drop(done);
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!(error = %e, "proxy worker {i}: cannot start a thread"),
            }
        }
        drop(done_tx);
        if started == 0 {
            tracing::error!(listen = %self.addr, "no proxy worker could start");
        }
        stop.await;
        let _ = phase_tx.send(Phase::Drain);
        let drain = self.cfg.drain_timeout;
        if tokio::time::timeout(drain, done_rx.recv()).await.is_err() {
            tracing::warn!(
                listen = %self.addr,
                "proxy: requests still in flight after the {} s drain; closing them",
                drain.as_secs_f64()
            );
            let _ = phase_tx.send(Phase::Cut);
            let _ = tokio::time::timeout(Duration::from_secs(5), done_rx.recv()).await;
        }
    }
}

/// Where a proxy stands: serving, draining after `stop`, or cutting what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serve,
    Drain,
    Cut,
}

/// What one worker thread needs besides its listener.
struct Worker {
    state: Arc<State>,
    phase: watch::Receiver<Phase>,
    gate: Gate,
    listen: SocketAddr,
}

/// What one worker thread's requests share: settings, its own upstream pool and its own
/// client for unmeasured requests.
fn worker_state(cfg: &ProxyConfig, sink: Arc<dyn RecordSink>) -> State {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.set_connect_timeout(Some(Duration::from_secs(10)));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(4))
        .pool_max_idle_per_host(64)
        .build(conn);
    State {
        cfg: cfg.clone(),
        client,
        pool: Pool::new(&cfg.upstream.authority, 256, Duration::from_secs(10)),
        sink,
        upstream: Arc::from(cfg.upstream.base.as_str()),
    }
}

/// One worker: a single-threaded runtime accepting and serving connections until the proxy
/// stops, then finishing the connections it has (or closing them when told to cut).
fn worker(listener: std::net::TcpListener, w: Worker) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "proxy worker: cannot start its runtime");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "proxy worker: cannot use the listener");
                return;
            }
        };
        let Worker {
            state,
            mut phase,
            gate,
            listen,
        } = w;
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (tcp, _) = tokio::select! {
                _ = phase.wait_for(|p| *p != Phase::Serve) => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // Another worker took the connection first, or the process is out of
                        // file descriptors; neither is worth more than a pause.
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            tracing::warn!(error = %e, "proxy accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        continue;
                    }
                },
            };
            match gate.admit() {
                Admit::Serve(permit) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(connection(
                        tcp,
                        state.clone(),
                        phase.clone(),
                        permit,
                        listen,
                    ));
                }
                Admit::Refuse(permit) => {
                    BUSY.hit(&listen);
                    conns.spawn(refuse(tcp, permit));
                }
                Admit::Drop => {
                    BUSY.hit(&listen);
                    drop(tcp);
                }
            }
        }
        drop(listener);
        loop {
            tokio::select! {
                next = conns.join_next() => if next.is_none() { break },
                _ = phase.wait_for(|p| *p == Phase::Cut) => {
                    // Dropping a connection drops its upstream answer, which records the
                    // request as cancelled.
                    conns.shutdown().await;
                    break;
                }
            }
        }
    });
}

/// Serves one client connection with the head limits, closing it gracefully when the proxy
/// stops (at once when idle, after the answer in flight otherwise).
async fn connection(
    tcp: tokio::net::TcpStream,
    st: Arc<State>,
    mut phase: watch::Receiver<Phase>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    listen: SocketAddr,
) {
    let head_timeout = st.cfg.client_header_timeout;
    let svc = service_fn(move |req| {
        let st = st.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(st, req).await) }
    });
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    let conn = b.serve_connection(TokioIo::new(tcp), svc);
    tokio::pin!(conn);
    let res = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { drop(phase.wait_for(|p| *p != Phase::Serve).await) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        if e.is_timeout() {
            SLOW_HEAD.hit(&listen);
        } else if e.is_parse_too_large() {
            BIG_HEAD.hit(&listen);
        } else {
            tracing::debug!(error = %e, "proxy connection ended");
        }
    }
}

/// Binds and serves in one call.
pub async fn serve(
    cfg: ProxyConfig,
    sink: Arc<dyn RecordSink>,
    stop: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    Proxy::bind(cfg, sink).await?.run(stop).await;
    Ok(())
}
