//! A fake Kubernetes API server on a loopback port: lists and watches of
//! the objects a test hands it, namespace paths, equality label selectors,
//! and an event log so a watch from a `resourceVersion` replays what it
//! missed (as the real server does). It records every request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One request the fake answered.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) path: String,
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) authorization: Option<String>,
}

/// A watch event: resource version, plural, `{"type", "object"}`.
type Logged = (u64, String, Value);

struct Inner {
    objects: Mutex<BTreeMap<String, Vec<Value>>>,
    log: Mutex<(u64, Vec<Logged>)>,
    events: broadcast::Sender<Logged>,
    requests: Mutex<Vec<Request>>,
    stop: CancellationToken,
}

/// The running fake; dropping it stops the server and ends its watches.
pub(crate) struct FakeApi {
    inner: Arc<Inner>,
    pub(crate) port: u16,
    task: JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.inner.stop.cancel();
        self.task.abort();
    }
}

fn plural(obj: &Value) -> String {
    match obj["kind"].as_str().unwrap_or("") {
        "Endpoints" => "endpoints".into(),
        "Ingress" => "ingresses".into(),
        k => format!("{}s", k.to_lowercase()),
    }
}

impl FakeApi {
    pub(crate) async fn start(objects: Vec<Value>) -> FakeApi {
        let (events, _) = broadcast::channel(256);
        let inner = Arc::new(Inner {
            objects: Mutex::new(BTreeMap::new()),
            log: Mutex::new((1, Vec::new())),
            events,
            requests: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let stop = inner.stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        let api = FakeApi { inner, port, task };
        for o in objects {
            api.put(o, false);
        }
        api
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Adds or replaces an object and tells the watches (ADDED/MODIFIED).
    pub(crate) fn apply(&self, obj: Value) {
        self.put(obj, true);
    }

    fn put(&self, mut obj: Value, notify: bool) {
        let p = plural(&obj);
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let mut objects = self.inner.objects.lock().unwrap();
        let list = objects.entry(p.clone()).or_default();
        let same = |o: &Value| {
            o["metadata"]["name"] == obj["metadata"]["name"]
                && o["metadata"]["namespace"] == obj["metadata"]["namespace"]
        };
        let kind = match list.iter_mut().find(|o| same(o)) {
            Some(old) => {
                *old = obj.clone();
                "MODIFIED"
            }
            None => {
                list.push(obj.clone());
                "ADDED"
            }
        };
        drop(objects);
        if notify {
            self.notify(rv, p, json!({"type": kind, "object": obj}));
        }
    }

    /// Removes an object and tells the watches (DELETED).
    pub(crate) fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let mut objects = self.inner.objects.lock().unwrap();
        let list = objects.entry(plural.to_string()).or_default();
        let pos = list
            .iter()
            .position(|o| o["metadata"]["name"] == name && o["metadata"]["namespace"] == namespace)
            .expect("deleting an object the fake has");
        let mut obj = list.remove(pos);
        drop(objects);
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.notify(
            rv,
            plural.to_string(),
            json!({"type": "DELETED", "object": obj}),
        );
    }

    fn next_rv(&self) -> u64 {
        let mut log = self.inner.log.lock().unwrap();
        log.0 += 1;
        log.0
    }

    fn notify(&self, rv: u64, plural: String, event: Value) {
        let mut log = self.inner.log.lock().unwrap();
        log.1.push((rv, plural.clone(), event.clone()));
        let _ = self.inner.events.send((rv, plural, event));
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

async fn handle(State(inner): State<Arc<Inner>>, uri: Uri, headers: HeaderMap) -> Response {
    let query: BTreeMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    inner.requests.lock().unwrap().push(Request {
        path: uri.path().to_string(),
        query: query.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let rest = match segs.first() {
        Some(&"api") if segs.len() > 2 => &segs[2..],
        Some(&"apis") if segs.len() > 3 => &segs[3..],
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let (namespace, plural) = match rest {
        [p] => (None, p.to_string()),
        ["namespaces", ns, p] => (Some(ns.to_string()), p.to_string()),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let selector: Vec<(String, String)> = query
        .get("labelSelector")
        .map(|s| {
            s.split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let wanted = move |o: &Value| {
        namespace
            .as_deref()
            .is_none_or(|ns| o["metadata"]["namespace"] == ns)
            && selector
                .iter()
                .all(|(k, v)| o["metadata"]["labels"][k.as_str()] == v.as_str())
    };
    if query.get("watch").map(String::as_str) == Some("true") {
        let from: u64 = query
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let rx = inner.events.subscribe();
        let missed: Vec<Logged> = inner
            .log
            .lock()
            .unwrap()
            .1
            .iter()
            .filter(|(rv, p, _)| *rv > from && *p == plural)
            .cloned()
            .collect();
        let state = (rx, missed.into_iter(), from, inner.stop.clone());
        let stream = futures::stream::unfold(state, move |(mut rx, mut missed, mut seen, stop)| {
            let (plural, wanted) = (plural.clone(), wanted.clone());
            async move {
                loop {
                    let next = match missed.next() {
                        Some(e) => e,
                        None => tokio::select! {
                            _ = stop.cancelled() => return None,
                            r = rx.recv() => match r {
                                Ok(e) => e,
                                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                                Err(_) => return None,
                            },
                        },
                    };
                    let (rv, p, event) = next;
                    if rv <= seen || p != plural || !wanted(&event["object"]) {
                        continue;
                    }
                    seen = rv;
                    let line = Bytes::from(format!("{event}\n"));
                    return Some((Ok::<_, Infallible>(line), (rx, missed, seen, stop)));
                }
            }
        });
        return (
            [("content-type", "application/json")],
            Body::from_stream(stream),
        )
            .into_response();
    }
    let items: Vec<Value> = inner
        .objects
        .lock()
        .unwrap()
        .get(&plural)
        .into_iter()
        .flatten()
        .filter(|o| wanted(o))
        .cloned()
        .collect();
    let rv = inner.log.lock().unwrap().0;
    let body = json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}
