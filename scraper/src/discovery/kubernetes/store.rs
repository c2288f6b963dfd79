//! The objects the watchers have seen, per kind, kept whole so every role
//! can rebuild its target groups from one consistent view (an endpoints
//! target needs the pod and the service it points at).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Resource;
use kube::runtime::watcher::Event;
use serde::de::DeserializeOwned;

use super::meta::{key, object_key};

/// The objects of one kind, each tagged with the watch stream that
/// reported it: a stream that relists replaces only its own objects.
pub(super) struct Slot<K> {
    objects: BTreeMap<String, (usize, K)>,
    /// Objects of a relist still in progress, by stream.
    relisting: HashMap<usize, Vec<K>>,
}

impl<K> Default for Slot<K> {
    fn default() -> Self {
        Slot {
            objects: BTreeMap::new(),
            relisting: HashMap::new(),
        }
    }
}

impl<K: Resource> Slot<K> {
    /// Applies one watch event of `stream`; true when it completed a
    /// (re)list, i.e. the stream's objects are now complete.
    fn apply(&mut self, stream: usize, event: Event<K>) -> bool {
        match event {
            Event::Apply(o) => {
                self.objects.insert(key(o.meta()), (stream, o));
            }
            Event::Delete(o) => {
                self.objects.remove(&key(o.meta()));
            }
            Event::Init => {
                self.relisting.insert(stream, Vec::new());
            }
            Event::InitApply(o) => self.relisting.entry(stream).or_default().push(o),
            Event::InitDone => {
                let fresh = self.relisting.remove(&stream).unwrap_or_default();
                self.objects.retain(|_, (s, _)| *s != stream);
                for o in fresh {
                    self.objects.insert(key(o.meta()), (stream, o));
                }
                return true;
            }
        }
        false
    }

    /// The object `namespace/name` (`""` for cluster-scoped kinds).
    pub(super) fn get(&self, namespace: &str, name: &str) -> Option<&K> {
        self.objects
            .get(&object_key(namespace, name))
            .map(|(_, o)| o)
    }

    /// Every object, ordered by namespace and name.
    pub(super) fn iter(&self) -> impl Iterator<Item = &K> {
        self.objects.values().map(|(_, o)| o)
    }
}

/// Every kind a role may need.
#[derive(Default)]
pub(super) struct Store {
    pub(super) pods: Slot<Pod>,
    pub(super) nodes: Slot<Node>,
    pub(super) services: Slot<Service>,
    pub(super) endpoints: Slot<Endpoints>,
    pub(super) slices: Slot<EndpointSlice>,
    pub(super) ingresses: Slot<Ingress>,
    pub(super) namespaces: Slot<Namespace>,
    /// Per watch stream: has it finished its first list?
    synced: Vec<bool>,
}

impl Store {
    /// Registers a new watch stream; returns its index.
    pub(super) fn add_stream(&mut self) -> usize {
        self.synced.push(false);
        self.synced.len() - 1
    }

    /// True once every stream has listed its objects, so the groups are
    /// not a partial view (an endpoints target without its pod labels).
    pub(super) fn synced(&self) -> bool {
        self.synced.iter().all(|&s| s)
    }

    pub(super) fn apply<K: Cached>(&mut self, stream: usize, event: Event<K>) {
        if K::slot(self).apply(stream, event)
            && let Some(s) = self.synced.get_mut(stream)
        {
            *s = true;
        }
    }
}

/// A kind the store keeps.
pub(super) trait Cached:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    fn slot(store: &mut Store) -> &mut Slot<Self>;
}

macro_rules! cached {
    ($($kind:ty => $field:ident),* $(,)?) => {
        $(impl Cached for $kind {
            fn slot(store: &mut Store) -> &mut Slot<Self> {
                &mut store.$field
            }
        })*
    };
}

cached! {
    Pod => pods,
    Node => nodes,
    Service => services,
    Endpoints => endpoints,
    EndpointSlice => slices,
    Ingress => ingresses,
    Namespace => namespaces,
}
