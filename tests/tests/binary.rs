//! The `tidemark` binary as a user meets it: flags, config errors, the admin
//! endpoints, and graceful shutdown.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use tidemark_tests::{Process, tidemark_bin};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tidemark_bin())
        .args(args)
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_flag_with_its_default() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--config.file",
        "--target",
        "--server.http-listen-address",
        "--server.grpc-listen-address",
        "--storage.data-dir",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}:\n{out}");
    }
    assert!(out.contains("(default: 0.0.0.0:9009)"), "{out}");
    assert!(out.contains("(default: ./data)"), "{out}");
}

#[test]
fn config_defaults_round_trips_as_a_config_file() {
    let (code, yaml, err) = run(&["config", "defaults"]);
    assert_eq!(code, 0, "{err}");
    assert!(yaml.contains("http_listen_address: 0.0.0.0:9009"), "{yaml}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("defaults.yaml");
    std::fs::write(&f, &yaml).unwrap();
    // A file that is valid config plus a bad flag: the flag is what fails,
    // proving the file itself was accepted.
    let (code, _, err) = run(&["--config.file", f.to_str().unwrap(), "--target=nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("`target`"), "{err}");
}

#[test]
fn bad_configuration_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "server:\n  http_listen_adress: ':1'\n",
            "http_listen_adress",
        ),
        (
            "server:\n  grpc_max_message_bytes: many\n",
            "server.grpc_max_message_bytes",
        ),
        (
            "server:\n  http_listen_address: 'not an address'\n",
            "server.http_listen_address",
        ),
        (
            "tenancy:\n  multitenancy_enabled: sometimes\n",
            "tenancy.multitenancy_enabled",
        ),
        ("storage:\n  data_dir: ''\n", "storage.data_dir"),
    ];
    for (i, (yaml, field)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("c{i}.yaml"));
        std::fs::write(&f, yaml).unwrap();
        let (code, _, err) = run(&["--config.file", f.to_str().unwrap()]);
        assert_eq!(code, 2, "{yaml} -> {err}");
        assert!(
            err.contains(field),
            "error for {yaml:?} does not name {field}: {err}"
        );
    }
    let (code, _, err) = run(&["--no-such-flag=1"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["--config.file", "/nonexistent/tidemark.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/tidemark.yaml"), "{err}");
}

#[test]
fn serves_admin_endpoints_and_stops_gracefully_on_sigterm() {
    let mut p = Process::builder().start();
    p.wait_ready(Duration::from_secs(30));
    let get = |path: &str| reqwest::blocking::get(p.url(path)).expect("request");

    let metrics = get("/metrics");
    assert_eq!(metrics.status(), 200);
    let body = metrics.text().unwrap();
    assert!(body.contains("process_resident_memory_bytes"), "{body}");

    let services = get("/services").text().unwrap();
    assert!(services.contains("\"server\""), "{services}");

    let config = get("/config").text().unwrap();
    assert!(
        config.contains(&format!("127.0.0.1:{}", p.http_port)),
        "{config}"
    );

    let status = p
        .terminate(Duration::from_secs(20))
        .expect("exits after SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        p.log()
    );
    assert!(p.log().contains("tidemark stopped"), "{}", p.log());
}

#[test]
fn refuses_to_start_on_a_busy_port_with_the_setting_named() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&[
        &format!("--server.http-listen-address=127.0.0.1:{port}"),
        "--server.grpc-listen-address=127.0.0.1:0",
        &format!("--storage.data-dir={}", dir.path().display()),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("server.http_listen_address"), "{err}");
}
