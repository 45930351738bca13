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
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{ProxyConfig, ProxyError};
use crate::forward::{handle, State};
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

    /// Serves until `stop` resolves: then no new connection is accepted, and connections in
    /// flight finish on their own (each worker thread ends after its last one).
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
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
            let state = Arc::new(worker_state(&self.cfg, self.sink.clone()));
            let stop = stop_rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("infermon-proxy-{i}"))
                .spawn(move || worker(listener, state, stop));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!(error = %e, "proxy worker {i}: cannot start a thread"),
            }
        }
        if started == 0 {
            tracing::error!(listen = %self.addr, "no proxy worker could start");
        }
        stop.await;
        let _ = stop_tx.send(true);
    }
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

/// One worker: a single-threaded runtime accepting and serving connections until `stop`,
/// then finishing the connections it has.
fn worker(listener: std::net::TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
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
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (tcp, _) = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
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
            let _ = tcp.set_nodelay(true);
            let st = state.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let st = st.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(st, req).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await
                {
                    tracing::debug!(error = %e, "proxy connection ended");
                }
            });
        }
        drop(listener);
        while conns.join_next().await.is_some() {}
    });
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
