//! Kubernetes discovery against a fake API server on loopback: the exact
//! targets and `__meta_kubernetes_*` labels of every role, namespaces,
//! selectors, attach_metadata and basic auth on the wire, and through the
//! scraper service the common `prometheus.io/scrape` keep rule, a pod
//! added by a watch event and a deleted pod losing its target.

#![allow(clippy::unwrap_used)]

mod fake_kube;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fake_kube::FakeApi;
use serde_json::{Value, json};
use tidemark_model::TenantId;
use tidemark_scraper::config::sd::KubernetesSdConfig;
use tidemark_scraper::discovery::kubernetes::KubernetesDiscovery;
use tidemark_scraper::scrape::{MemorySink, OwnAll};
use tidemark_scraper::service::{Scraper, ScraperHandle};
use tidemark_scraper::target::TargetGroup;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

type L = BTreeMap<String, String>;

fn l(pairs: &[(&str, &str)]) -> L {
    pairs
        .iter()
        .map(|(k, v)| {
            let k = if k.starts_with("__") || *k == "instance" {
                k.to_string()
            } else {
                format!("__meta_kubernetes_{k}")
            };
            (k, v.to_string())
        })
        .collect()
}

fn merged(parts: &[&L]) -> L {
    parts.iter().flat_map(|p| (*p).clone()).collect()
}

fn pod(name: &str, ip: Option<&str>, annotations: Value, containers: Value) -> Value {
    let mut status = json!({"phase": "Running", "hostIP": "127.0.1.1"});
    if let Some(ip) = ip {
        status["podIP"] = json!(ip);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
            "labels": {"app": name.split('-').next().unwrap()}, "annotations": annotations},
        "spec": {"nodeName": "node-a", "containers": containers},
        "status": status,
    })
}

fn web_1() -> Value {
    let mut p = pod(
        "web-1",
        Some("127.0.0.11"),
        json!({"prometheus.io/scrape": "true"}),
        json!([
            {"name": "app", "image": "web:1", "ports": [
                {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
                {"containerPort": 9090, "protocol": "TCP"}]},
            {"name": "sidecar", "image": "side:1"}]),
    );
    p["metadata"]["labels"]["app.kubernetes.io/name"] = json!("web");
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web-rs", "uid": "rs-1", "controller": true}]);
    p["spec"]["initContainers"] = json!([{"name": "init", "image": "init:1"}]);
    p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    p["status"]["containerStatuses"] = json!([{"name": "app", "containerID": "containerd://abc",
        "image": "web:1", "imageID": "sha", "ready": true, "restartCount": 0}]);
    p
}

fn objects() -> Vec<Value> {
    vec![
        web_1(),
        pod(
            "db-1",
            Some("127.0.0.12"),
            json!({}),
            json!([{"name": "db", "image": "db:1",
            "ports": [{"containerPort": 5432, "protocol": "TCP"}]}]),
        ),
        pod(
            "pending-1",
            None,
            json!({}),
            json!([{"name": "x", "image": "x:1"}]),
        ),
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-a", "labels": {"kubernetes.io/hostname": "node-a"},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"providerID": "kind://node-a"},
            "status": {"addresses": [{"type": "Hostname", "address": "node-a"},
                    {"type": "InternalIP", "address": "127.0.1.1"},
                    {"type": "InternalIP", "address": "127.0.1.9"},
                    {"type": "ExternalIP", "address": "127.0.2.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                "annotations": {"prometheus.io/probe": "true"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com",
                "ports": [{"port": 443, "protocol": "TCP"}]}}),
        json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "subsets": [{
                "addresses": [{"ip": "127.0.0.11", "nodeName": "node-a",
                    "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}}],
                "notReadyAddresses": [{"ip": "127.0.0.15", "hostname": "web-5"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.11"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"},
                "nodeName": "node-a", "zone": "z1"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["*.example.com"]}],
                "rules": [
                    {"host": "a.example.com", "http": {"paths": [
                        {"path": "/api", "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                        {"pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
                    {"host": "b.other.com"}]}}),
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "default", "labels": {"team": "a"}}}),
    ]
}

/// The first complete set of groups `sd` (YAML) discovers from `api`.
async fn discover(api: &FakeApi, sd: &str) -> Vec<TargetGroup> {
    let yaml = format!("api_server: {}\n{sd}", api.url());
    let cfg: KubernetesSdConfig = serde_yaml::from_str(&yaml).unwrap();
    let (tx, mut rx) = mpsc::channel(4);
    let cancel = CancellationToken::new();
    let run = tokio::spawn(KubernetesDiscovery::new("k8s", cfg).run(tx, |g| g, cancel.clone()));
    let got = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await;
    cancel.cancel();
    run.await.unwrap();
    got.expect("discovery produced groups").unwrap().unwrap()
}

fn group<'a>(groups: &'a [TargetGroup], source: &str) -> &'a TargetGroup {
    groups
        .iter()
        .find(|g| g.source == source)
        .unwrap_or_else(|| panic!("no group {source} in {groups:#?}"))
}

fn web_1_pod_labels() -> L {
    l(&[
        ("pod_name", "web-1"),
        ("pod_ip", "127.0.0.11"),
        ("pod_ready", "true"),
        ("pod_phase", "Running"),
        ("pod_node_name", "node-a"),
        ("pod_host_ip", "127.0.1.1"),
        ("pod_uid", "uid-web-1"),
        ("pod_controller_kind", "ReplicaSet"),
        ("pod_controller_name", "web-rs"),
        ("pod_label_app", "web"),
        ("pod_labelpresent_app", "true"),
        ("pod_label_app_kubernetes_io_name", "web"),
        ("pod_labelpresent_app_kubernetes_io_name", "true"),
        ("pod_annotation_prometheus_io_scrape", "true"),
        ("pod_annotationpresent_prometheus_io_scrape", "true"),
    ])
}

fn app_port(port: &str, name: &str) -> L {
    l(&[
        ("pod_container_name", "app"),
        ("pod_container_image", "web:1"),
        ("pod_container_init", "false"),
        ("pod_container_port_name", name),
        ("pod_container_port_number", port),
        ("pod_container_port_protocol", "TCP"),
    ])
}

fn web_service_labels() -> L {
    l(&[
        ("namespace", "default"),
        ("service_name", "web"),
        ("service_label_app", "web"),
        ("service_labelpresent_app", "true"),
        ("service_annotation_prometheus_io_probe", "true"),
        ("service_annotationpresent_prometheus_io_probe", "true"),
    ])
}

#[tokio::test]
async fn pod_role_targets_and_labels() {
    let api = FakeApi::start(objects()).await;
    let groups = discover(&api, "role: pod\n").await;
    let sources: Vec<&str> = groups.iter().map(|g| g.source.as_str()).collect();
    assert_eq!(
        sources,
        [
            "pod/default/db-1",
            "pod/default/pending-1",
            "pod/default/web-1"
        ]
    );
    assert!(group(&groups, "pod/default/pending-1").targets.is_empty());
    let web = group(&groups, "pod/default/web-1");
    assert_eq!(
        web.labels,
        merged(&[&web_1_pod_labels(), &l(&[("namespace", "default")])])
    );
    let id = l(&[("pod_container_id", "containerd://abc")]);
    let no_id = l(&[("pod_container_id", "")]);
    assert_eq!(
        web.targets,
        vec![
            merged(&[
                &app_port("8080", "metrics"),
                &id,
                &l(&[("__address__", "127.0.0.11:8080")])
            ]),
            merged(&[
                &app_port("9090", ""),
                &id,
                &l(&[("__address__", "127.0.0.11:9090")])
            ]),
            merged(&[
                &no_id,
                &l(&[
                    ("__address__", "127.0.0.11"),
                    ("pod_container_name", "sidecar"),
                    ("pod_container_image", "side:1"),
                    ("pod_container_init", "false")
                ])
            ]),
            merged(&[
                &no_id,
                &l(&[
                    ("__address__", "127.0.0.11"),
                    ("pod_container_name", "init"),
                    ("pod_container_image", "init:1"),
                    ("pod_container_init", "true")
                ])
            ]),
        ]
    );
    assert_eq!(
        group(&groups, "pod/default/db-1").labels["__meta_kubernetes_pod_ready"],
        "unknown"
    );
}

#[tokio::test]
async fn node_role_targets_and_labels() {
    let api = FakeApi::start(objects()).await;
    let groups = discover(&api, "role: node\n").await;
    assert_eq!(groups.len(), 1);
    let n = group(&groups, "node/node-a");
    assert_eq!(
        n.labels,
        l(&[
            ("node_name", "node-a"),
            ("node_provider_id", "kind://node-a"),
            ("node_label_kubernetes_io_hostname", "node-a"),
            ("node_labelpresent_kubernetes_io_hostname", "true"),
            ("node_annotation_node_alpha_kubernetes_io_ttl", "0"),
            (
                "node_annotationpresent_node_alpha_kubernetes_io_ttl",
                "true"
            ),
        ])
    );
    assert_eq!(
        n.targets,
        vec![l(&[
            ("__address__", "127.0.1.1:10250"),
            ("instance", "node-a"),
            ("node_address_Hostname", "node-a"),
            ("node_address_InternalIP", "127.0.1.1"),
            ("node_address_ExternalIP", "127.0.2.1"),
        ])]
    );
}

#[tokio::test]
async fn service_role_targets_and_labels() {
    let api = FakeApi::start(objects()).await;
    let groups = discover(&api, "role: service\n").await;
    assert_eq!(groups.len(), 2);
    let web = group(&groups, "svc/default/web");
    assert_eq!(web.labels, web_service_labels());
    assert_eq!(
        web.targets,
        vec![l(&[
            ("__address__", "web.default.svc:80"),
            ("service_port_name", "http"),
            ("service_port_number", "80"),
            ("service_port_protocol", "TCP"),
            ("service_type", "ClusterIP"),
            ("service_cluster_ip", "10.96.0.10"),
        ])]
    );
    assert_eq!(
        group(&groups, "svc/default/ext").targets,
        vec![l(&[
            ("__address__", "ext.default.svc:443"),
            ("service_port_name", ""),
            ("service_port_number", "443"),
            ("service_port_protocol", "TCP"),
            ("service_type", "ExternalName"),
            ("service_external_name", "example.com"),
        ])]
    );
}

#[tokio::test]
async fn endpoints_role_carries_service_and_pod_labels() {
    let api = FakeApi::start(objects()).await;
    let groups = discover(&api, "role: endpoints\n").await;
    assert_eq!(groups.len(), 1);
    let g = group(&groups, "endpoints/default/web");
    assert_eq!(
        g.labels,
        merged(&[
            &web_service_labels(),
            &l(&[
                ("endpoints_name", "web"),
                ("endpoints_label_app", "web"),
                ("endpoints_labelpresent_app", "true"),
            ]),
        ])
    );
    let pod = web_1_pod_labels();
    assert_eq!(
        g.targets,
        vec![
            merged(&[
                &pod,
                &app_port("8080", "metrics"),
                &l(&[
                    ("__address__", "127.0.0.11:8080"),
                    ("endpoint_port_name", "http"),
                    ("endpoint_port_protocol", "TCP"),
                    ("endpoint_ready", "true"),
                    ("endpoint_node_name", "node-a"),
                    ("endpoint_address_target_kind", "Pod"),
                    ("endpoint_address_target_name", "web-1"),
                ]),
            ]),
            l(&[
                ("__address__", "127.0.0.15:8080"),
                ("endpoint_port_name", "http"),
                ("endpoint_port_protocol", "TCP"),
                ("endpoint_ready", "false"),
                ("endpoint_hostname", "web-5"),
            ]),
            merged(&[
                &pod,
                &app_port("9090", ""),
                &l(&[("__address__", "127.0.0.11:9090")])
            ]),
        ]
    );
}

#[tokio::test]
async fn endpointslice_role_carries_service_and_pod_labels() {
    let api = FakeApi::start(objects()).await;
    let groups = discover(&api, "role: endpointslice\n").await;
    let g = group(&groups, "endpointslice/default/web-abc");
    assert_eq!(
        g.labels,
        merged(&[
            &web_service_labels(),
            &l(&[
                ("endpointslice_name", "web-abc"),
                ("endpointslice_address_type", "IPv4"),
                ("endpointslice_label_kubernetes_io_service_name", "web"),
                (
                    "endpointslice_labelpresent_kubernetes_io_service_name",
                    "true"
                ),
            ]),
        ])
    );
    let pod = web_1_pod_labels();
    assert_eq!(
        g.targets,
        vec![
            merged(&[
                &pod,
                &app_port("8080", "metrics"),
                &l(&[
                    ("__address__", "127.0.0.11:8080"),
                    ("endpointslice_port_name", "http"),
                    ("endpointslice_port_protocol", "TCP"),
                    ("endpointslice_port", "8080"),
                    ("endpointslice_port_app_protocol", "http"),
                    ("endpointslice_endpoint_conditions_ready", "true"),
                    ("endpointslice_endpoint_conditions_serving", "true"),
                    ("endpointslice_endpoint_conditions_terminating", "false"),
                    ("endpointslice_address_target_kind", "Pod"),
                    ("endpointslice_address_target_name", "web-1"),
                    ("endpointslice_endpoint_node_name", "node-a"),
                    ("endpointslice_endpoint_zone", "z1"),
                ]),
            ]),
            merged(&[
                &pod,
                &app_port("9090", ""),
                &l(&[("__address__", "127.0.0.11:9090")])
            ]),
        ]
    );
}

#[tokio::test]
async fn ingress_role_targets_and_labels() {
    let api = FakeApi::start(objects()).await;
    let groups = discover(&api, "role: ingress\n").await;
    let g = group(&groups, "ingress/default/web");
    assert_eq!(
        g.labels,
        l(&[
            ("namespace", "default"),
            ("ingress_name", "web"),
            ("ingress_label_app", "web"),
            ("ingress_labelpresent_app", "true"),
            ("ingress_class_name", "nginx"),
        ])
    );
    let t = |host: &str, scheme: &str, path: &str| {
        l(&[
            ("__address__", host),
            ("ingress_host", host),
            ("ingress_scheme", scheme),
            ("ingress_path", path),
        ])
    };
    assert_eq!(
        g.targets,
        vec![
            t("a.example.com", "https", "/api"),
            t("a.example.com", "https", "/"),
            t("b.other.com", "http", "/"),
        ]
    );
}

#[tokio::test]
async fn namespaces_selectors_attach_metadata_and_basic_auth_reach_the_api() {
    let api = FakeApi::start(objects()).await;
    let groups = discover(
        &api,
        "role: pod\nnamespaces: {names: [default]}\nselectors: [{role: pod, label: 'app=web'}]\n\
         attach_metadata: {node: true, namespace: true}\nbasic_auth: {username: u, password: p}\n",
    )
    .await;
    assert_eq!(groups.len(), 1);
    let labels = &group(&groups, "pod/default/web-1").labels;
    assert_eq!(labels["__meta_kubernetes_node_name"], "node-a");
    assert_eq!(
        labels["__meta_kubernetes_node_label_kubernetes_io_hostname"],
        "node-a"
    );
    assert_eq!(labels["__meta_kubernetes_namespace_label_team"], "a");
    let reqs = api.requests();
    let pods: Vec<_> = reqs.iter().filter(|r| r.path.ends_with("/pods")).collect();
    assert!(!pods.is_empty());
    for r in &pods {
        assert_eq!(r.path, "/api/v1/namespaces/default/pods");
        assert_eq!(r.query["labelSelector"], "app=web");
    }
    // "u:p" in base64.
    assert!(
        reqs.iter()
            .all(|r| r.authorization.as_deref() == Some("Basic dTpw")),
        "{reqs:?}"
    );
}

async fn active(h: &ScraperHandle) -> Vec<String> {
    let mut v: Vec<String> = h
        .targets()
        .await
        .active
        .iter()
        .map(|a| a.target.labels().to_string())
        .collect();
    v.sort();
    v
}

async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) -> bool {
    for _ in 0..600 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn scrape_annotation_keep_watch_add_and_delete() {
    let api = FakeApi::start(objects()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    // The pod job of Prometheus's example config for Kubernetes.
    let yaml = format!(
        "global: {{scrape_interval: 1h}}\n\
         scrape_configs:\n\
         \x20 - job_name: kubernetes-pods\n\
         \x20   kubernetes_sd_configs: [{{role: pod, api_server: '{}'}}]\n\
         \x20   relabel_configs:\n\
         \x20     - {{source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape], action: keep, regex: true}}\n\
         \x20     - {{source_labels: [__meta_kubernetes_pod_container_port_name], action: keep, regex: metrics}}\n\
         \x20     - {{action: labelmap, regex: __meta_kubernetes_pod_label_(.+)}}\n\
         \x20     - {{source_labels: [__meta_kubernetes_namespace], action: replace, target_label: namespace}}\n\
         \x20     - {{source_labels: [__meta_kubernetes_pod_name], action: replace, target_label: pod}}\n",
        api.url()
    );
    std::fs::write(&cfg, yaml).unwrap();
    let sink = Arc::new(MemorySink::new());
    let scraper = Scraper::start(
        Some(cfg),
        sink,
        Arc::new(OwnAll),
        TenantId::new("t").unwrap(),
        1,
    )
    .await
    .unwrap();
    let h = scraper.handle();
    let web1 = r#"{app="web", app_kubernetes_io_name="web", instance="127.0.0.11:8080", job="kubernetes-pods", namespace="default", pod="web-1"}"#;
    let web2 = r#"{app="web", instance="127.0.0.13:8080", job="kubernetes-pods", namespace="default", pod="web-2"}"#;
    assert!(
        eventually(|| async { active(&h).await == [web1] }).await,
        "{:?}",
        active(&h).await
    );
    // db-1 has no scrape annotation: all its targets are dropped, and every
    // web-1 target but the `metrics` port.
    let dropped = h.targets().await.dropped;
    assert_eq!(dropped.len(), 1 + 3, "{dropped:?}");

    let mut p = pod(
        "web-2",
        Some("127.0.0.13"),
        json!({"prometheus.io/scrape": "true"}),
        json!([{"name": "app", "image": "web:2", "ports": [{"name": "metrics", "containerPort": 8080}]}]),
    );
    p["spec"]["nodeName"] = json!("node-a");
    api.apply(p);
    assert!(
        eventually(|| async { active(&h).await == [web1, web2] }).await,
        "{:?}",
        active(&h).await
    );

    api.delete("pods", "default", "web-1");
    assert!(
        eventually(|| async { active(&h).await == [web2] }).await,
        "{:?}",
        active(&h).await
    );
    scraper.stop().await;
}
