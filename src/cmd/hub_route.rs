//! `infermon hub --route-listen ADDR [--node-url NAME=URL…]`: the routing proxy
//! (`infermon_proxy::router`) fed by the hub's own routing score: each request goes to the
//! cheapest node serving its model that has a URL the hub can reach it at, then the next. A
//! node's URL is the hub's `--node-url` for it, else the one it advertises with every sample
//! (`agent --advertise-url`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use infermon_fleet::{Liveness, RouteSettings};
use infermon_hub::Hub;
use infermon_proxy::router::Picker;

/// The hub's routing score as a [`Picker`].
pub struct HubPicker {
    /// The hub.
    pub hub: Arc<Hub>,
    /// Its routing settings.
    pub settings: Arc<RouteSettings>,
    /// Node name → base URL of its OpenAI/Ollama endpoint (its infermon proxy or engine),
    /// from `--node-url`: these override what nodes advertise.
    pub urls: BTreeMap<String, String>,
}

impl Picker for HubPicker {
    fn pick(&self, model: &str) -> Result<Vec<(String, String)>, String> {
        let now = super::hub::now_ms();
        match self.hub.route(model, &self.settings, now) {
            Err(e) => Err(e.message),
            Ok(Err(none)) => Err(none.reason),
            Ok(Ok(choice)) => {
                let able: Vec<&str> = choice
                    .candidates
                    .iter()
                    .filter(|c| c.cost.is_some())
                    .map(|c| c.node.as_str())
                    .collect();
                let advertised = self.hub.endpoints().map_err(|e| e.message)?;
                let order: Vec<(String, String)> = able
                    .iter()
                    .filter_map(|n| {
                        let url = self.urls.get(*n).or_else(|| advertised.get(*n))?;
                        Some((n.to_string(), url.clone()))
                    })
                    .collect();
                if order.is_empty() {
                    return Err(format!(
                        "the nodes that serve it ({}) have no URL: give the hub --node-url \
                         NAME=URL, or the node --advertise-url",
                        able.join(", ")
                    ));
                }
                Ok(order)
            }
        }
    }

    fn models(&self) -> Vec<String> {
        let Ok(nodes) = self.hub.nodes(super::hub::now_ms()) else {
            return Vec::new();
        };
        let mut models: Vec<String> = nodes
            .iter()
            .filter(|n| {
                n.liveness == Liveness::Up
                    && (self.urls.contains_key(&n.name) || n.endpoint.is_some())
            })
            .flat_map(|n| n.engines.iter().filter(|e| e.up))
            .map(|e| e.model.clone())
            .filter(|m| !m.is_empty())
            .collect();
        models.sort();
        models.dedup();
        models
    }
}

/// `--node-url NAME=URL` values: a DNS-label name and an `http://host:port` URL (no path).
pub fn node_urls(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in values {
        let bad = |why: &str| {
            anyhow::anyhow!(
                "--node-url \"{v}\": {why}; expected NAME=http://HOST:PORT, e.g. \
                 gpu1=http://10.0.0.5:8081 (the node's infermon proxy or engine)"
            )
        };
        let (name, url) = v.split_once('=').ok_or_else(|| bad("no '='"))?;
        if !infermon_model::names::is_dns_label(name) {
            return Err(bad("the name is not a DNS label"));
        }
        let parsed = reqwest::Url::parse(url).map_err(|_| bad("not a URL"))?;
        let plain = parsed.scheme() == "http"
            && parsed.host_str().is_some()
            && parsed.path() == "/"
            && parsed.query().is_none();
        if !plain {
            return Err(bad("not an http:// URL without a path"));
        }
        if out
            .insert(name.to_string(), url.trim_end_matches('/').to_string())
            .is_some()
        {
            return Err(bad("the node is named twice"));
        }
    }
    Ok(out)
}

/// The router's listen address, refused off loopback unless it serves TLS or `--insecure`
/// is given.
pub fn listen(value: &str, secure: bool, insecure: bool) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = value.parse().map_err(|_| {
        anyhow::anyhow!("--route-listen \"{value}\" is not an address: expected IP:PORT")
    })?;
    if !addr.ip().is_loopback() && !secure && !insecure {
        anyhow::bail!(
            "--route-listen {addr} is reachable from the network: give --tls-cert and \
             --tls-key to serve HTTPS, or --insecure to send prompts unencrypted"
        );
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_are_checked_and_named() {
        let ok = node_urls(&["gpu1=http://10.0.0.5:8081/".into()]).unwrap();
        assert_eq!(ok["gpu1"], "http://10.0.0.5:8081");
        for bad in [
            "gpu1",
            "GPU 1=http://h:1",
            "gpu1=https://h:1",
            "gpu1=http://h:1/v1",
            "gpu1=h:1",
        ] {
            let e = node_urls(&[bad.to_string()]).unwrap_err().to_string();
            assert!(e.contains(&format!("\"{bad}\"")), "{e}");
        }
        let twice = node_urls(&["a=http://h:1".into(), "a=http://h:2".into()]).unwrap_err();
        assert!(twice.to_string().contains("named twice"), "{twice}");
        assert!(listen("0.0.0.0:9466", false, false).is_err());
        assert!(listen("0.0.0.0:9466", true, false).is_ok());
        assert!(listen("0.0.0.0:9466", false, true).is_ok());
    }
}
