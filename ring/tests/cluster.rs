//! Multi-node membership in one process: real Raft over real gRPC on
//! loopback ports chosen at run time.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tidemark_config::Duration as CfgDuration;
use tidemark_ring::{
    MemberState, Membership, MembershipConfig, NodeInfo, Operation, Role, TenantLimits,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Node {
    membership: Membership,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    address: String,
}

impl Node {
    /// Stops the node abruptly: tasks cancelled, server and connections dropped.
    async fn stop(self) {
        self.shutdown.cancel();
        self.server.abort();
        let _ = self.server.await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.membership.stopped()).await;
    }
}

fn config(voters: &[String]) -> MembershipConfig {
    MembershipConfig {
        voters: voters.to_vec(),
        tokens_per_member: 32,
        heartbeat_interval: CfgDuration::from_millis(200),
        heartbeat_timeout: CfgDuration::from_millis(2000),
        forget_after: CfgDuration::from_secs(0),
        ring_refresh_interval: CfgDuration::from_millis(100),
        election_timeout: CfgDuration::from_millis(500),
        ..Default::default()
    }
}

async fn start(
    id: &str,
    listener: TcpListener,
    config: MembershipConfig,
    dir: &std::path::Path,
) -> Node {
    let address = listener.local_addr().unwrap().to_string();
    let shutdown = CancellationToken::new();
    let node = NodeInfo {
        id: id.to_string(),
        roles: vec![Role::Ingester],
        grpc_address: address.clone(),
        http_address: "127.0.0.1:0".to_string(),
        zone: None,
    };
    // A stopped node in this same process may hold the RocksDB lock for a
    // moment while openraft's tasks wind down: retry briefly.
    let started = Instant::now();
    let membership = loop {
        match Membership::start(
            config.clone(),
            node.clone(),
            MemberState::Active,
            dir,
            shutdown.clone(),
        )
        .await
        {
            Ok(m) => break m,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                eprintln!("start {id}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("start {id}: {e}"),
        }
    };
    let service = membership.into_grpc_service();
    let token = shutdown.clone();
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                token.cancelled(),
            )
            .await;
    });
    Node {
        membership,
        shutdown,
        server,
        address,
    }
}

async fn listeners(n: usize) -> Vec<TcpListener> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    out
}

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_voters_five_members_survive_the_loss_of_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let ls = listeners(9).await;
    let addrs: Vec<String> = ls
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let voters = addrs[..3].to_vec();
    let mut nodes = Vec::new();
    let mut spare = None;
    for (i, l) in ls.into_iter().enumerate() {
        if i == 8 {
            spare = Some(l);
            continue;
        }
        let d = dir.path().join(format!("n{i}"));
        nodes.push(start(&format!("node-{i}"), l, config(&voters), &d).await);
    }
    wait_until(
        "all 8 members in every ring",
        Duration::from_secs(30),
        || {
            nodes
                .iter()
                .all(|n| n.membership.ring().members().len() == 8)
        },
    )
    .await;
    // Every node agrees on members and tokens.
    let tokens = |n: &Node| -> Vec<(String, Vec<u32>)> {
        n.membership
            .ring()
            .members()
            .iter()
            .map(|m| (m.id.clone(), m.tokens.clone()))
            .collect()
    };
    for n in &nodes {
        assert_eq!(tokens(n), tokens(&nodes[0]));
    }

    let leader = nodes[0].membership.cluster_status().leader_address.unwrap();
    assert!(voters.contains(&leader));
    let pos = nodes.iter().position(|n| n.address == leader).unwrap();
    let old = nodes.remove(pos);
    old.stop().await;

    let elapsed = wait_until("a new leader", Duration::from_secs(15), || {
        nodes.iter().filter(|n| n.membership.is_voter()).any(|n| {
            n.membership
                .cluster_status()
                .leader_address
                .is_some_and(|l| l != leader)
        })
    })
    .await;
    println!("new leader elected {elapsed:?} after the old one stopped");

    // Membership changes still commit: a state change, a new member, overrides.
    let member = nodes.iter().find(|n| !n.membership.is_voter()).unwrap();
    let mut deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = member.membership.set_state(MemberState::Leaving).await {
        assert!(Instant::now() < deadline, "set_state never committed: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = dir.path().join("n8");
    let newcomer = start("node-8", spare.take().unwrap(), config(&voters), &d).await;
    newcomer
        .membership
        .wait_joined(Duration::from_secs(15))
        .await
        .unwrap();
    deadline = Instant::now() + Duration::from_secs(10);
    let limits = TenantLimits {
        max_series: Some(1000),
        ..Default::default()
    };
    while let Err(e) = newcomer
        .membership
        .set_tenant_overrides("team-a", Some(limits.clone()))
        .await
    {
        assert!(Instant::now() < deadline, "overrides never committed: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let member_id = member.membership.node().id.clone();
    wait_until(
        "every node sees the changes",
        Duration::from_secs(10),
        || {
            nodes.iter().all(|n| {
                let r = n.membership.ring();
                r.member("node-8").is_some()
                    && r.member(&member_id)
                        .is_some_and(|m| m.state == MemberState::Leaving)
                    && r.tenant_limits("team-a") == Some(&limits)
            })
        },
    )
    .await;
    // The dead leader turns unhealthy and leaves the write path.
    wait_until("old leader unhealthy", Duration::from_secs(10), || {
        let r = nodes[0].membership.ring();
        let old_id = r
            .members()
            .iter()
            .find(|m| m.grpc_address == leader)
            .map(|m| m.id.clone());
        old_id.is_some_and(|id| r.is_healthy(&id) == Some(false))
    })
    .await;
    let r = nodes[0].membership.ring();
    for h in (0..500u32).map(|i| i.wrapping_mul(2_654_435_761)) {
        let set = r
            .replication_set(Role::Ingester, h, 3, Operation::Write)
            .unwrap();
        assert!(
            set.iter()
                .all(|m| m.grpc_address != leader && m.id != member_id)
        );
    }

    newcomer.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_member_turns_unhealthy_and_rejoins_with_the_same_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let ls = listeners(4).await;
    let addrs: Vec<String> = ls
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let voters = addrs[..1].to_vec();
    let mut nodes = Vec::new();
    for (i, l) in ls.into_iter().enumerate() {
        let d = dir.path().join(format!("n{i}"));
        nodes.push(start(&format!("node-{i}"), l, config(&voters), &d).await);
    }
    wait_until("4 members", Duration::from_secs(20), || {
        nodes[0].membership.ring().members().len() == 4
    })
    .await;
    let before = nodes[0].membership.ring().member("node-3").unwrap().clone();
    let share = nodes[0]
        .membership
        .ring()
        .effective_ownership(Role::Ingester, Operation::Write)["node-3"];
    assert!(share > 0.15, "node-3 owns {share}");

    nodes.pop().unwrap().stop().await;
    wait_until("node-3 unhealthy", Duration::from_secs(10), || {
        nodes[0].membership.ring().is_healthy("node-3") == Some(false)
    })
    .await;
    let moved = nodes[0]
        .membership
        .ring()
        .effective_ownership(Role::Ingester, Operation::Write);
    assert!(!moved.contains_key("node-3"), "{moved:?}");
    assert!((moved.values().sum::<f64>() - 1.0).abs() < 1e-9);

    // Restart on a new port with the same id and data directory.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = start("node-3", l, config(&voters), &dir.path().join("n3")).await;
    wait_until("node-3 healthy again", Duration::from_secs(10), || {
        let r = nodes[0].membership.ring();
        r.is_healthy("node-3") == Some(true)
            && r.member("node-3")
                .is_some_and(|m| m.grpc_address == node.address)
    })
    .await;
    assert_eq!(
        nodes[0].membership.ring().member("node-3").unwrap().tokens,
        before.tokens
    );

    // Clean leave removes it; forget removes a dead one.
    node.membership.leave().await.unwrap();
    node.stop().await;
    nodes.pop().unwrap().stop().await;
    nodes[0].membership.forget("node-2").await.unwrap();
    wait_until("node-3 and node-2 gone", Duration::from_secs(10), || {
        let r = nodes[0].membership.ring();
        r.member("node-3").is_none() && r.member("node-2").is_none()
    })
    .await;
    let err = nodes[1].membership.forget("nobody").await.unwrap_err();
    assert!(err.to_string().contains("nobody"), "{err}");
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_restart_keeps_the_ring_and_forgets_silent_members() {
    let dir = tempfile::tempdir().unwrap();
    let ls = listeners(2).await;
    let voter_addr = ls[0].local_addr().unwrap().to_string();
    let mut cfg = config(&[]);
    cfg.heartbeat_timeout = CfgDuration::from_millis(1000);
    cfg.forget_after = CfgDuration::from_millis(2500);
    // `voters` empty: the first node is its own single voter; the second
    // names it as seed.
    let mut it = ls.into_iter();
    let voter = start(
        "solo",
        it.next().unwrap(),
        cfg.clone(),
        &dir.path().join("v"),
    )
    .await;
    let mut member_cfg = cfg.clone();
    member_cfg.voters = vec![voter_addr.clone()];
    let member = start(
        "member",
        it.next().unwrap(),
        member_cfg,
        &dir.path().join("m"),
    )
    .await;
    wait_until("2 members", Duration::from_secs(10), || {
        voter.membership.ring().members().len() == 2
    })
    .await;
    member.stop().await;
    let gone = wait_until("silent member forgotten", Duration::from_secs(15), || {
        voter.membership.ring().member("member").is_none()
    })
    .await;
    assert!(
        gone >= Duration::from_millis(1500),
        "forgotten too early: {gone:?}"
    );

    let tokens = voter
        .membership
        .ring()
        .member("solo")
        .unwrap()
        .tokens
        .clone();
    voter.stop().await;
    // Restarted on another port (as `all` is when its port changes): still
    // the same single voter, so it elects itself again.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let new_addr = l.local_addr().unwrap().to_string();
    let voter = start("solo", l, cfg, &dir.path().join("v")).await;
    // Loaded from RocksDB before any new heartbeat.
    assert_eq!(
        voter.membership.ring().member("solo").unwrap().tokens,
        tokens
    );
    wait_until("leader again", Duration::from_secs(10), || {
        voter.membership.cluster_status().leader_address.as_deref() == Some(new_addr.as_str())
    })
    .await;
    wait_until(
        "rejoined at the new address",
        Duration::from_secs(10),
        || {
            voter
                .membership
                .ring()
                .member("solo")
                .is_some_and(|m| m.grpc_address == new_addr)
        },
    )
    .await;
    voter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_and_cluster_pages_answer_html_and_json() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = start("solo", l, config(&[]), dir.path()).await;
    node.membership
        .wait_joined(Duration::from_secs(10))
        .await
        .unwrap();
    let app = tidemark_ring::http::router(node.membership.clone());
    let call = |req: Request<Body>| {
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };

    let (status, body) = call(
        Request::get("/ring?format=json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let m = &v["members"][0];
    assert_eq!(m["id"], "solo");
    assert_eq!(m["state"], "ACTIVE");
    assert_eq!(m["healthy"], true);
    assert!((m["ownership"]["ingester"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert_eq!(m["tokens"].as_array().unwrap().len(), 32);

    let (status, body) = call(Request::get("/ring").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("<td>solo</td>") && body.contains("healthy"),
        "{body}"
    );

    let (status, body) = call(
        Request::get("/cluster")
            .header("accept", "application/json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["voter"], true);
    assert_eq!(v["leader_address"], node.address.as_str());
    assert!(v["last_log_index"].as_u64().unwrap() >= 2);

    let (status, _) = call(
        Request::post("/ring/forget?id=nobody")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(Request::post("/ring/forget").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let put = |tenant: &str, body: &str| {
        Request::put(format!("/ring/tenants/{tenant}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, body) = call(put("team-a", r#"{"max_series": 5, "ingestion_rate": 100}"#)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let limits = node.membership.tenant_overrides("team-a").unwrap();
    assert_eq!(
        (limits.max_series, limits.ingestion_rate),
        (Some(5), Some(100.0))
    );
    let (status, body) = call(Request::get("/ring/tenants").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["team-a"]["max_series"], 5);
    let (status, body) = call(put("team-a", r#"{"max_serie": 5}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("max_serie"), "{body}");
    let (status, body) = call(put("team-a", r#"{"max_labels_per_series": 0}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("max_labels_per_series"), "{body}");
    let (status, body) = call(put("a%2Fb", "{}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("a/b"), "{body}");
    let (status, _) = call(
        Request::delete("/ring/tenants/team-a")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(node.membership.tenant_overrides("team-a").is_none());
    let (status, _) = call(
        Request::get("/ring/tenants/team-a")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    node.stop().await;
}
