//! Head memory per active series, two ways: the head's own estimate
//! (`Head::memory_bytes`) and the bytes actually live on the heap, counted
//! by a global allocator wrapper. Prints both; not a timing benchmark.
//!
//! Each series has 8 realistic labels and 120 samples (one full chunk, 30
//! minutes at a 15 s scrape interval), appended in scrape-like batches.
//!
//! Run: `cargo bench -p tidemark-tsdb --bench head_memory`

// Counting allocations needs a `GlobalAlloc` impl, which is unsafe by
// definition; it only forwards to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use tidemark_model::{Labels, Sample};
use tidemark_tsdb::{Head, HeadOptions};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's, forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn series_labels(n: usize) -> Vec<Labels> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let app = i / 50;
            let pod = format!(
                "app-{app}-{:05x}-{:05x}",
                rng.next() & 0xfffff,
                rng.next() & 0xfffff
            );
            Labels::from_pairs([
                ("__name__", format!("metric_{}_total", i % 40)),
                ("container", format!("app-{app}")),
                ("endpoint", "http-metrics".to_string()),
                (
                    "instance",
                    format!("10.{}.{}.{}:9100", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                ),
                ("job", format!("namespace-{}/app-{app}", i % 7)),
                ("namespace", format!("namespace-{}", i % 7)),
                ("pod", pod),
                ("service", format!("app-{app}")),
            ])
            .expect("unique label names")
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let series = 100_000usize;
    let samples_per_series = 120i64;
    let labels = series_labels(series);
    let label_bytes: usize = labels.iter().map(Labels::byte_size).sum();

    let before = LIVE.load(Ordering::Relaxed);
    let head = Head::new(HeadOptions::default()).expect("head");
    let mut rng = Rng(7);
    let mut batch: Vec<(Labels, Vec<Sample>)> = Vec::with_capacity(series);
    for n in 0..samples_per_series {
        batch.clear();
        for (i, l) in labels.iter().enumerate() {
            // Prometheus snaps scrape times within 2 ms of the interval
            // (--scrape.timestamp-tolerance); model 5% of scrapes
            // late by more than that.
            let jitter = if rng.next().is_multiple_of(20) {
                3 + (rng.next() % 18) as i64
            } else {
                0
            };
            let v = match i % 10 {
                0 => (rng.next() % 10_000) as f64 / 100.0,
                1..=3 => (n / 40) as f64,
                _ => (n * (i as i64 % 17 + 1)) as f64,
            };
            // A fresh label buffer, as decoding a remote-write request
            // makes: the head keeps the first one it sees per series, and
            // it must count here (a clone would share the bench's copy).
            let fresh = Labels::from_sorted_pairs(l.iter());
            batch.push((fresh, vec![Sample::new(n * 15_000 + jitter, v)]));
        }
        head.append(&batch).expect("append");
    }
    drop(batch);
    let live = (LIVE.load(Ordering::Relaxed) - before) as usize;
    let estimate = head.memory_bytes();
    println!("## head memory, {series} series x {samples_per_series} samples, 8 labels");
    println!(
        "label text per series (as a Labels buffer): {:.0} B",
        label_bytes as f64 / series as f64
    );
    println!(
        "heap (counting allocator): {:.0} B/series, {:.2} B/sample incl. index",
        live as f64 / series as f64,
        live as f64 / (series as f64 * samples_per_series as f64)
    );
    println!(
        "memory_bytes() estimate:   {:.0} B/series ({:+.1}% vs heap)",
        estimate as f64 / series as f64,
        (estimate as f64 / live as f64 - 1.0) * 100.0
    );
    drop(head);
}
