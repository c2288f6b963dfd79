//! Builds an index file (format v2) for series given in label order.
//!
//! Layout, per Prometheus's `tsdb/docs/format/index.md`: header (magic
//! `0xBAAAD700`, version 2), symbol table, series (each 16-byte aligned; a
//! series reference is its offset / 16), label indices (one per label name,
//! kept for old readers), postings (4-byte aligned, the first one being the
//! all-series list under the empty name and value), label offset table,
//! postings offset table, TOC. Every section carries a CRC32C.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tidemark_model::Labels;

use super::ChunkMeta;
use super::codec::{Encbuf, crc32};
use crate::TsdbError;

/// Magic number at the start of an index file.
pub(crate) const MAGIC_INDEX: u32 = 0xBAAA_D700;
/// The index format version tidemark writes (Prometheus 2.x and 3.x).
pub(crate) const INDEX_VERSION: u8 = 2;
/// Size of the table of contents at the end of the file.
pub(crate) const TOC_SIZE: usize = 6 * 8 + 4;

fn pad_to(buf: &mut Encbuf, align: usize) {
    let rem = buf.len() % align;
    if rem != 0 {
        buf.b.resize(buf.len() + align - rem, 0);
    }
}

/// Writes a `len <4b> | content | CRC32C(content)` section.
fn put_section(buf: &mut Encbuf, content: &[u8]) -> Result<(), TsdbError> {
    let len = u32::try_from(content.len()).map_err(|_| TsdbError::InvalidBlockInput {
        reason: format!("index section of {} bytes exceeds 4 GiB", content.len()),
    })?;
    buf.put_be32(len);
    buf.b.extend_from_slice(content);
    buf.put_be32(crc32(content));
    Ok(())
}

/// Encodes a whole index. `series` must be sorted by labels without
/// duplicates, each with its chunk metas sorted by time.
pub(crate) fn build_index(series: &[(Labels, Vec<ChunkMeta>)]) -> Result<Vec<u8>, TsdbError> {
    let mut symbols: BTreeSet<&str> = BTreeSet::new();
    for (labels, _) in series {
        for (n, v) in labels.iter() {
            symbols.insert(n);
            symbols.insert(v);
        }
    }
    let sym_index: HashMap<&str, u32> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32))
        .collect();
    let sym = |s: &str| -> u64 { sym_index.get(s).copied().map_or(0, u64::from) };

    let mut out = Encbuf::default();
    out.put_be32(MAGIC_INDEX);
    out.put_byte(INDEX_VERSION);

    // Symbol table.
    let toc_symbols = out.len() as u64;
    let mut content = Encbuf::default();
    content.put_be32(symbols.len() as u32);
    for s in &symbols {
        content.put_uvarint_str(s);
    }
    put_section(&mut out, &content.b)?;

    // Series.
    pad_to(&mut out, 16);
    let toc_series = out.len() as u64;
    let mut refs: Vec<u32> = Vec::with_capacity(series.len());
    let mut postings: BTreeMap<(&str, &str), Vec<u32>> = BTreeMap::new();
    for (labels, chunks) in series {
        pad_to(&mut out, 16);
        let r = u32::try_from(out.len() / 16).map_err(|_| TsdbError::InvalidBlockInput {
            reason: "index series section exceeds 64 GiB".into(),
        })?;
        refs.push(r);
        let mut c = Encbuf::default();
        c.put_uvarint(labels.len() as u64);
        for (n, v) in labels.iter() {
            c.put_uvarint(sym(n));
            c.put_uvarint(sym(v));
            postings.entry((n, v)).or_default().push(r);
        }
        c.put_uvarint(chunks.len() as u64);
        let mut prev: Option<&ChunkMeta> = None;
        for m in chunks {
            match prev {
                None => {
                    c.put_varint(m.min_time);
                    c.put_uvarint(m.max_time.wrapping_sub(m.min_time) as u64);
                    c.put_uvarint(m.chunk_ref.0);
                }
                Some(p) => {
                    c.put_uvarint(m.min_time.wrapping_sub(p.max_time) as u64);
                    c.put_uvarint(m.max_time.wrapping_sub(m.min_time) as u64);
                    c.put_varint(m.chunk_ref.0.wrapping_sub(p.chunk_ref.0) as i64);
                }
            }
            prev = Some(m);
        }
        out.put_uvarint(c.len() as u64);
        out.b.extend_from_slice(&c.b);
        out.put_be32(crc32(&c.b));
    }

    // Label indices: one per name, values as symbol references.
    pad_to(&mut out, 4);
    let toc_label_indices = out.len() as u64;
    let mut values_by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for &(n, v) in postings.keys() {
        values_by_name.entry(n).or_default().push(v);
    }
    let mut label_index_offsets: Vec<(&str, u64)> = Vec::with_capacity(values_by_name.len());
    for (name, values) in &values_by_name {
        pad_to(&mut out, 4);
        label_index_offsets.push((name, out.len() as u64));
        let mut c = Encbuf::default();
        c.put_be32(1);
        c.put_be32(values.len() as u32);
        for v in values {
            c.put_be32(sym(v) as u32);
        }
        put_section(&mut out, &c.b)?;
    }

    // Postings, the all-series list first.
    pad_to(&mut out, 4);
    let toc_postings = out.len() as u64;
    let mut postings_offsets: Vec<(&str, &str, u64)> = Vec::with_capacity(postings.len() + 1);
    let lists = std::iter::once((("", ""), &refs)).chain(postings.iter().map(|(k, v)| (*k, v)));
    for ((n, v), list) in lists {
        pad_to(&mut out, 4);
        postings_offsets.push((n, v, out.len() as u64));
        let mut c = Encbuf::default();
        c.put_be32(list.len() as u32);
        for r in list {
            c.put_be32(*r);
        }
        put_section(&mut out, &c.b)?;
    }

    // Label offset table.
    let toc_label_table = out.len() as u64;
    let mut c = Encbuf::default();
    c.put_be32(label_index_offsets.len() as u32);
    for (name, off) in &label_index_offsets {
        c.put_uvarint(1);
        c.put_uvarint_str(name);
        c.put_uvarint(*off);
    }
    put_section(&mut out, &c.b)?;

    // Postings offset table.
    let toc_postings_table = out.len() as u64;
    let mut c = Encbuf::default();
    c.put_be32(postings_offsets.len() as u32);
    for (n, v, off) in &postings_offsets {
        c.put_uvarint(2);
        c.put_uvarint_str(n);
        c.put_uvarint_str(v);
        c.put_uvarint(*off);
    }
    put_section(&mut out, &c.b)?;

    // TOC.
    let mut toc = Encbuf::default();
    for x in [
        toc_symbols,
        toc_series,
        toc_label_indices,
        toc_label_table,
        toc_postings,
        toc_postings_table,
    ] {
        toc.put_be64(x);
    }
    out.b.extend_from_slice(&toc.b);
    out.put_be32(crc32(&toc.b));
    Ok(out.b)
}
