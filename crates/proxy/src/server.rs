//! Accepting connections and serving them with the forwarder.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::config::{ProxyConfig, ProxyError};
use crate::forward::{handle, State};
use crate::RecordSink;

/// A bound proxy, ready to serve.
pub struct Proxy {
    listener: TcpListener,
    state: Arc<State>,
}

impl Proxy {
    /// Checks the settings and binds the listen address.
    pub async fn bind(cfg: ProxyConfig, sink: Arc<dyn RecordSink>) -> Result<Proxy, ProxyError> {
        cfg.check()?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| ProxyError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(10)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(conn);
        let upstream = Arc::from(cfg.upstream.base.as_str());
        let pool =
            crate::upstream::Pool::new(&cfg.upstream.authority, 256, Duration::from_secs(10));
        Ok(Proxy {
            listener,
            state: Arc::new(State {
                cfg,
                client,
                pool,
                sink,
                upstream,
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` resolves. Connections in flight finish on their own.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let (tcp, _) = tokio::select! {
                _ = &mut stop => return,
                a = self.listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let st = self.state.clone();
            tokio::spawn(async move {
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
