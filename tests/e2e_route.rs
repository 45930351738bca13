//! The hub's routing proxy end to end: two real llama-servers (SmolLM2-135M), each watched by
//! its own agent pushing to a real hub as nodes `n1` and `n2`; the hub serves the OpenAI API on
//! `--route-listen` and knows `n1` at a port where nothing listens (its `--node-url`), and `n2`
//! only by the URL `n2`'s agent advertises with every sample (`--advertise-url`, the
//! llama-server's own address). The routing score ranks
//! the two equal nodes by name, so `n1` comes first: a streamed chat request must come back
//! complete from `n2`, saying that `n1` was passed over and why, and `GET /v1/models` lists
//! the model the nodes serve. A model no node serves is a 503 with the hub's reason.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const TEST: &str = "the_router_passes_over_an_unreachable_node";
const JOIN: &str = "join-token-for-the-route-test-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_passes_over_an_unreachable_node() {
    let Some(e) = engine(TEST) else { return };
    let (_s1, server1) = start_llama_server(&e, &["--metrics", "-t", "1"]).await;
    let (_s2, server2) = start_llama_server(&e, &["--metrics", "-t", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let hub = format!("http://{listen}");
    let route = format!("127.0.0.1:{}", free_port());
    let dead = format!("n1=http://127.0.0.1:{}", free_port());
    let _hub = start_hub_with(
        &dir.path().join("hub"),
        &listen,
        JOIN,
        &["--route-listen", &route, "--node-url", &dead],
    )
    .await;
    let mut agents = Vec::new();
    for (name, server) in [("n1", &server1), ("n2", &server2)] {
        let engine = format!("llamacpp={server}");
        let mut extra = vec!["--engine", &engine];
        if name == "n2" {
            extra.extend(["--advertise-url", server.as_str()]);
        }
        agents.push(start_hub_node(dir.path(), name, &hub, JOIN, &extra).await);
    }
    // Both nodes up with the model loaded.
    let start = Instant::now();
    let model = loop {
        let n = get_json(&format!("{hub}/api/v1/fleet/nodes")).await;
        let nodes = n["nodes"].as_array().unwrap();
        let ready: Vec<&Value> = nodes
            .iter()
            .filter(|n| n["liveness"] == "up" && n["engines"][0]["up"] == true)
            .collect();
        if ready.len() == 2 {
            // The hub shows what each node advertised: n2 its server, n1 nothing.
            assert_eq!(ready[0]["endpoint"], Value::Null, "{n}");
            assert_eq!(ready[1]["endpoint"], server2.as_str(), "{n}");
            break ready[0]["engines"][0]["model"]
                .as_str()
                .unwrap()
                .to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nodes not ready: {n}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let choice = get_json(&format!(
        "{hub}/api/v1/route?model={}",
        encode_query(&model)
    ))
    .await;
    assert_eq!(choice["node"], "n1", "equal nodes rank by name: {choice}");
    assert_eq!(choice["candidates_total"], 2, "{choice}");
    assert_eq!(
        choice["candidates"].as_array().unwrap().len(),
        2,
        "{choice}"
    );
    let one = get_json(&format!(
        "{hub}/api/v1/route?model={}&candidates=1",
        encode_query(&model)
    ))
    .await;
    assert_eq!(one["candidates_total"], 2, "{one}");
    assert_eq!(
        one["candidates"][0]["node"], "n1",
        "the cheapest is kept: {one}"
    );
    assert_eq!(one["candidates"].as_array().unwrap().len(), 1, "{one}");

    let client = infermon_tls::client().build().unwrap();
    let r = client
        .post(format!("http://{route}/v1/chat/completions"))
        .json(&json!({
            "model": model,
            "messages": [{"role": "user", "content": "Name a colour."}],
            "max_tokens": 8,
            "stream": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-infermon-node"], "n2");
    let passed = r.headers()["x-infermon-passed-over"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(passed.starts_with("n1: "), "{passed}");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    // n2's own counter saw the tokens: the answer was generated there.
    let metrics = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!("{server2}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let predicted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("llamacpp:tokens_predicted_total "))
        .map(|v| v.trim().parse::<f64>().unwrap())
        .unwrap();
    assert!(predicted >= 1.0, "{metrics}");

    let models = get_json(&format!("http://{route}/v1/models")).await;
    assert_eq!(models["data"][0]["id"], model, "{models}");
    let none = client
        .post(format!("http://{route}/v1/chat/completions"))
        .json(&json!({"model": "no-such-model", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 503);
    let why: Value = none.json().await.unwrap();
    let rest = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!("{hub}/api/v1/route?model=no-such-model"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let msg = why["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(rest["reason"].as_str().unwrap()),
        "{msg} vs {rest}"
    );
}
