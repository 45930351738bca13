//! Valid and invalid configurations, checked against the exact messages users see.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use infermon_config::{parse_file_text, resolve, Overrides, SAMPLE_CONFIG};

fn no_env(_: &str) -> Option<String> {
    None
}

fn err(text: &str) -> String {
    match parse_file_text(text, "test.toml") {
        Err(e) => e.to_string(),
        Ok(raw) => resolve(raw, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string(),
    }
}

#[test]
fn sample_config_is_valid_and_equals_defaults() {
    let raw = parse_file_text(SAMPLE_CONFIG, "sample").unwrap();
    let a = resolve(raw, &Overrides::default(), &no_env).unwrap();
    let b = resolve(Default::default(), &Overrides::default(), &no_env).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.listen.to_string(), "127.0.0.1:7411");
    assert_eq!(a.interval.as_secs(), 2);
    assert_eq!(a.max_interval.as_secs(), 20);
}

#[test]
fn unknown_key_is_named() {
    let e = err("[agent]\nintervall = \"2s\"\n");
    assert!(e.contains("unknown field `intervall`"), "{e}");
    assert!(e.starts_with("config file \"test.toml\""), "{e}");
}

#[test]
fn bad_duration_names_key_and_value() {
    assert_eq!(
        err("[agent]\ninterval = \"2x\"\n"),
        "invalid value \"2x\" for agent.interval (from file): expected a duration of at least \
         100 ms like \"2s\", \"500ms\", \"10m\", \"24h\" or \"30d\""
    );
}

#[test]
fn network_listen_needs_token() {
    let e = err("[agent]\nlisten = \"0.0.0.0:7411\"\n");
    assert!(
        e.starts_with("invalid value \"0.0.0.0:7411\" for agent.listen (from file)"),
        "{e}"
    );
    assert!(e.contains("token"), "{e}");
    let ok = parse_file_text(
        "[agent]\nlisten = \"0.0.0.0:7411\"\ntoken = \"0123456789abcdef0123\"\n",
        "t",
    )
    .unwrap();
    assert!(resolve(ok, &Overrides::default(), &no_env).is_ok());
}

#[test]
fn unknown_engine_kind() {
    assert_eq!(
        err("[[engine]]\nkind = \"llama\"\nurl = \"http://127.0.0.1:8080\"\n"),
        "invalid value \"llama=http://127.0.0.1:8080\" for engine[0] (from file): expected an \
         engine kind among: llamacpp, vllm, sglang, ollama, lm_studio, llama_swap"
    );
}

#[test]
fn proxies_slo_and_request_settings() {
    let raw = parse_file_text(
        "[[proxy]]\nlisten = \"127.0.0.1:9000\"\nupstream = \"http://127.0.0.1:8080/\"\n\
         [requests]\nslo = \"ttft=200ms,tpot=50ms\"\nwindow = \"1m\"\n",
        "t",
    )
    .unwrap();
    let o = Overrides {
        proxies: vec!["127.0.0.1:9001=http://127.0.0.1:11434".into()],
        ..Overrides::default()
    };
    let s = resolve(raw, &o, &no_env).unwrap();
    assert_eq!(s.proxies.len(), 2);
    assert_eq!(s.proxies[0].upstream, "http://127.0.0.1:8080");
    assert_eq!(
        (s.proxies[1].origin, s.proxies[1].listen.port()),
        ("flag", 9001)
    );
    assert_eq!(
        s.requests.slo.ttft,
        Some(std::time::Duration::from_millis(200))
    );
    assert_eq!(s.requests.slo.e2e, None);
    assert_eq!(s.requests.window, std::time::Duration::from_secs(60));
    assert!(!s.requests.capture_bodies);

    assert_eq!(
        err("[[proxy]]\nlisten = \"0.0.0.0:9000\"\nupstream = \"http://127.0.0.1:8080\"\n"),
        "invalid value \"0.0.0.0:9000=http://127.0.0.1:8080\" for proxy[0] (from file): expected a \
         loopback listen address, or a token (agent.token, INFERMON_TOKEN or --token) because \
         this proxy would be reachable from the network"
    );
    assert!(err("[requests]\nslo = \"ttft=fast\"\n").contains("\"ttft=fast\": expected a duration"));
    assert!(err("[requests]\nslo = \"itl=1s\"\n").contains("expected ttft, tpot or e2e"));
    let bad = Overrides {
        proxies: vec!["9000=http://x:1".into()],
        ..Overrides::default()
    };
    let e = resolve(parse_file_text("", "t").unwrap(), &bad, &no_env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"9000=http://x:1\" for --proxy"), "{e}");
}

#[test]
fn pue_range() {
    let e = err("[efficiency]\npue = 0.5\n");
    assert_eq!(
        e,
        "invalid value \"0.5\" for efficiency.pue (from file): expected a number from 1.0 to 5.0"
    );
}

#[test]
fn precedence_flag_over_env_over_file() {
    let raw = parse_file_text("[agent]\ninterval = \"5s\"\n", "t").unwrap();
    let env = |k: &str| (k == "INFERMON_INTERVAL").then(|| "3s".to_string());
    let s = resolve(raw.clone(), &Overrides::default(), &env).unwrap();
    assert_eq!(s.interval.as_secs(), 3);
    let o = Overrides {
        interval: Some("4s".into()),
        ..Default::default()
    };
    assert_eq!(
        resolve(raw.clone(), &o, &env).unwrap().interval.as_secs(),
        4
    );
    assert_eq!(
        resolve(raw, &Overrides::default(), &no_env)
            .unwrap()
            .interval
            .as_secs(),
        5
    );
}

#[test]
fn engines_from_all_layers() {
    let raw = parse_file_text(
        "[[engine]]\nkind = \"llamacpp\"\nurl = \"http://127.0.0.1:8080/\"\n",
        "t",
    )
    .unwrap();
    let env =
        |k: &str| (k == "INFERMON_ENGINES").then(|| "llamacpp=http://127.0.0.1:8081".to_string());
    let o = Overrides {
        engines: vec!["llamacpp=http://127.0.0.1:8082".into()],
        ..Default::default()
    };
    let s = resolve(raw, &o, &env).unwrap();
    let urls: Vec<_> = s
        .engines
        .iter()
        .map(|e| (e.url.as_str(), e.origin))
        .collect();
    assert_eq!(
        urls,
        vec![
            ("http://127.0.0.1:8080", "file"),
            ("http://127.0.0.1:8081", "environment"),
            ("http://127.0.0.1:8082", "flag")
        ]
    );
    let bad = Overrides {
        engines: vec!["http://x".into()],
        ..Default::default()
    };
    let e = resolve(Default::default(), &bad, &no_env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected KIND=URL"), "{e}");
}

#[test]
fn data_dir_follows_xdg() {
    let env = |k: &str| (k == "XDG_DATA_HOME").then(|| "/x/data".to_string());
    let s = resolve(Default::default(), &Overrides::default(), &env).unwrap();
    assert_eq!(s.data_dir, std::path::PathBuf::from("/x/data/infermon"));
}

#[test]
fn proxy_workers_from_file_and_environment() {
    let raw = parse_file_text("[requests]\nproxy_workers = 3\n", "t").unwrap();
    let s = resolve(raw.clone(), &Overrides::default(), &no_env).unwrap();
    assert_eq!(s.requests.proxy_workers, Some(3));
    let env = |k: &str| (k == "INFERMON_PROXY_WORKERS").then(|| "1".to_string());
    assert_eq!(
        resolve(raw, &Overrides::default(), &env)
            .unwrap()
            .requests
            .proxy_workers,
        Some(1)
    );
    assert_eq!(
        err("[requests]\nproxy_workers = 0\n"),
        "invalid value \"0\" for requests.proxy_workers (from file): expected a whole number \
         of threads from 1 to 64"
    );
    let bad = |k: &str| (k == "INFERMON_PROXY_WORKERS").then(|| "many".to_string());
    let e = resolve(Default::default(), &Overrides::default(), &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"many\"") && e.contains("environment"), "{e}");
}

#[test]
fn allowed_hosts_add_up_over_layers() {
    let raw = parse_file_text(
        "[agent]\nallowed_hosts = [\"InferBox.local\", \"gpu-01.lan.\"]\n",
        "t",
    )
    .unwrap();
    let env = |k: &str| {
        (k == "INFERMON_ALLOWED_HOSTS").then(|| " gpu-02.lan , inferbox.local,".to_string())
    };
    let o = Overrides {
        allowed_hosts: vec!["[fd00::7]".into(), "GPU-03.LAN".into()],
        ..Default::default()
    };
    let s = resolve(raw, &o, &env).unwrap();
    assert_eq!(
        s.allowed_hosts,
        vec![
            "inferbox.local",
            "gpu-01.lan",
            "gpu-02.lan",
            "fd00::7",
            "gpu-03.lan"
        ]
    );
    let none = resolve(Default::default(), &Overrides::default(), &no_env).unwrap();
    assert!(none.allowed_hosts.is_empty());
}

#[test]
fn allowed_host_errors_name_value_and_layer() {
    assert_eq!(
        err("[agent]\nallowed_hosts = [\"inferbox.local\", \"http://inferbox.local:7411\"]\n"),
        "invalid value \"http://inferbox.local:7411\" for agent.allowed_hosts[1] (from file): \
         expected a host name like inferbox.local or an IP address, without scheme, port or \
         path (the Host header's port is ignored when matching)"
    );
    let env = |k: &str| (k == "INFERMON_ALLOWED_HOSTS").then(|| "ok.lan,bad/path".to_string());
    let e = resolve(Default::default(), &Overrides::default(), &env)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("invalid value \"bad/path\" for INFERMON_ALLOWED_HOSTS (from environment)"),
        "{e}"
    );
    let o = Overrides {
        allowed_hosts: vec!["box.lan:7411".into()],
        ..Default::default()
    };
    let e = resolve(Default::default(), &o, &no_env)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("invalid value \"box.lan:7411\" for --allowed-host (from flag)"),
        "{e}"
    );
    assert!(err("[agent]\nallowed_hosts = \"box.lan\"\n").contains("allowed_hosts"));
}
