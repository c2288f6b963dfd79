//! Membership with real processes on loopback: three voters (the ingesters
//! 1-3) and five other members, with test-short timings. Kills the Raft
//! leader and a non-voting ingester with SIGKILL and checks what a user of
//! `/ring` and `/cluster` sees: a new leader, membership changes that still
//! commit, an unhealthy member whose share moves, and a restart with the
//! same tokens.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::Value;
use tidemark_tests::{Process, free_port, wait_until};

const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

fn args(voters: &str, role: &str, id: &str) -> Vec<String> {
    vec![
        format!("-target={role}"),
        format!("--membership.voters={voters}"),
        format!("--membership.instance-id={id}"),
        "--membership.heartbeat-interval=200ms".into(),
        format!(
            "--membership.heartbeat-timeout={}ms",
            HEARTBEAT_TIMEOUT.as_millis()
        ),
        "--membership.ring-refresh-interval=200ms".into(),
        "--membership.election-timeout=300ms".into(),
        "--membership.tokens-per-member=64".into(),
        "--server.graceful-shutdown-timeout=5s".into(),
    ]
}

fn start(voters: &str, role: &str, id: &str, ports: Option<(u16, u16)>) -> Process {
    let mut b = Process::builder();
    if let Some((h, g)) = ports {
        b = b.ports(h, g);
    }
    for a in args(voters, role, id) {
        b = b.arg(a);
    }
    b.start()
}

fn get_json(p: &Process, path: &str) -> Option<Value> {
    reqwest::blocking::Client::new()
        .get(p.url(path))
        .header("accept", "application/json")
        .timeout(Duration::from_secs(2))
        .send()
        .ok()
        .filter(|r| r.status().is_success())
        .and_then(|r| r.json().ok())
}

/// The members of the ring as `p` sees it, by id.
fn members(p: &Process) -> Vec<Value> {
    get_json(p, "/ring")
        .and_then(|v| v["members"].as_array().cloned())
        .unwrap_or_default()
}

fn member(p: &Process, id: &str) -> Option<Value> {
    members(p).into_iter().find(|m| m["id"] == id)
}

fn leader(p: &Process) -> Option<String> {
    get_json(p, "/cluster").and_then(|v| v["leader_address"].as_str().map(String::from))
}

fn serving(m: &Value) -> f64 {
    m["serving"]["ingester"].as_f64().unwrap_or(0.0)
}

fn logs(ps: &[&Process]) -> String {
    ps.iter()
        .map(|p| format!("--- process :{}\n{}", p.http_port, p.log()))
        .collect()
}

#[test]
fn three_voters_five_members_survive_kills_of_the_leader_and_of_a_member() {
    let voter_ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let voters = voter_ports
        .iter()
        .map(|(_, g)| format!("127.0.0.1:{g}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut voter_procs: Vec<Process> = voter_ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            start(
                &voters,
                "ingester",
                &format!("ingester-{}", i + 1),
                Some(*p),
            )
        })
        .collect();
    let mut ing4 = start(&voters, "ingester", "ingester-4", None);
    let ing5 = start(&voters, "ingester", "ingester-5", None);
    let dist1 = start(&voters, "distributor", "distributor-1", None);
    let mut dist2 = start(&voters, "distributor", "distributor-2", None);
    let querier = start(&voters, "querier", "querier-1", None);

    // Everyone joined; the five ingesters are ACTIVE and healthy, as seen
    // from a non-voter (which reads the ring from the voters).
    let all_in = wait_until(Duration::from_secs(30), || {
        let ms = members(&querier);
        ms.len() == 8
            && ms
                .iter()
                .filter(|m| {
                    m["roles"]
                        .as_array()
                        .is_some_and(|r| r.contains(&"ingester".into()))
                })
                .all(|m| m["state"] == "ACTIVE" && m["healthy"] == true)
    });
    assert!(
        all_in,
        "ring never showed 8 members with 5 ACTIVE ingesters: {:#?}\n{}",
        members(&querier),
        logs(&[&voter_procs[0], &ing4, &querier])
    );
    for p in voter_procs.iter_mut().chain([&mut ing4]) {
        p.wait_ready(Duration::from_secs(20));
    }

    // --- kill -9 the leader: a new leader within a few seconds.
    let old_leader = leader(&voter_procs[0]).expect("a leader is known");
    let idx = voter_procs
        .iter()
        .position(|p| p.grpc_addr() == old_leader)
        .expect("the leader is one of the voters");
    voter_procs[idx].kill();
    let killed_at = Instant::now();
    let survivors: Vec<&Process> = voter_procs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != idx)
        .map(|(_, p)| p)
        .collect();
    let elected = wait_until(Duration::from_secs(5), || {
        survivors.iter().all(|p| {
            leader(p)
                .is_some_and(|l| l != old_leader && survivors.iter().any(|s| s.grpc_addr() == l))
        })
    });
    assert!(
        elected,
        "no new leader 5 s after killing {old_leader}\n{}",
        logs(&survivors)
    );
    eprintln!("new leader after {:?}", killed_at.elapsed());

    // Membership changes still commit: a tenant override set through a
    // non-voter, and a clean leave (SIGTERM) of a distributor.
    let resp = reqwest::blocking::Client::new()
        .put(dist1.url("/ring/tenants/team-a"))
        .body(r#"{"max_series": 1000}"#)
        .timeout(Duration::from_secs(10))
        .send()
        .expect("PUT /ring/tenants answers");
    assert!(resp.status().is_success(), "{:?}", resp.text());
    assert!(
        wait_until(Duration::from_secs(5), || {
            get_json(&querier, "/ring/tenants").is_some_and(|v| v["team-a"]["max_series"] == 1000)
        }),
        "override not visible on another process"
    );
    let status = dist2.terminate(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "{}", dist2.log());
    assert!(
        wait_until(Duration::from_secs(5), || member(&querier, "distributor-2")
            .is_none()),
        "distributor-2 did not leave the ring: {:#?}",
        members(&querier)
    );

    // --- kill -9 a non-voter: unhealthy after the timeout, share moves.
    let before = member(&querier, "ingester-4").expect("ingester-4 is in the ring");
    let tokens = before["tokens"].clone();
    assert!(serving(&before) > 0.05, "{before:#}");
    let peer_before = serving(&member(&querier, "ingester-5").expect("ingester-5"));
    ing4.kill();
    let killed_at = Instant::now();
    let unhealthy = wait_until(Duration::from_secs(10), || {
        member(&querier, "ingester-4").is_some_and(|m| m["healthy"] == false)
    });
    let took = killed_at.elapsed();
    assert!(unhealthy, "ingester-4 never turned unhealthy");
    assert!(
        took >= HEARTBEAT_TIMEOUT - Duration::from_millis(500),
        "unhealthy after {took:?}, before the {HEARTBEAT_TIMEOUT:?} timeout"
    );
    let ms = members(&querier);
    let dead = ms
        .iter()
        .find(|m| m["id"] == "ingester-4")
        .expect("still listed");
    assert_eq!(serving(dead), 0.0, "{dead:#}");
    let total: f64 = ms.iter().map(serving).sum();
    assert!(
        (total - 1.0).abs() < 1e-6,
        "the whole ring is served: {total}"
    );
    let peer_after = serving(
        ms.iter()
            .find(|m| m["id"] == "ingester-5")
            .expect("ingester-5"),
    );
    assert!(
        peer_after >= peer_before,
        "ingester-5 serves {peer_after} after, {peer_before} before"
    );

    // --- restart it on the same data: same tokens, ACTIVE and healthy again.
    ing4.restart();
    let back = wait_until(Duration::from_secs(15), || {
        member(&querier, "ingester-4")
            .is_some_and(|m| m["healthy"] == true && m["state"] == "ACTIVE" && serving(&m) > 0.05)
    });
    assert!(back, "ingester-4 did not come back\n{}", ing4.log());
    assert_eq!(
        member(&querier, "ingester-4").expect("ingester-4")["tokens"],
        tokens,
        "rejoined with other tokens"
    );
    drop(ing5);
}
