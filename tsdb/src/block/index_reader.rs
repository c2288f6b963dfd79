//! Reads an index file (format v2) through a [`ByteSource`].
//!
//! Opening reads the TOC, the symbol table and the postings offset table;
//! series and postings lists are read by range when asked for, so the same
//! reader works over a local file or an object read by ranges.

use std::collections::BTreeMap;
use std::path::Path;

use tidemark_model::Labels;

use super::ChunkMeta;
use super::chunks::ChunkRef;
use super::codec::{Decbuf, check_crc, corrupt};
use super::index_writer::{INDEX_VERSION, MAGIC_INDEX, TOC_SIZE};
use super::source::ByteSource;
use crate::TsdbError;

/// Offsets of the index sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

/// A series as stored in the index: its labels and chunk metas.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSeries {
    pub labels: Labels,
    pub chunks: Vec<ChunkMeta>,
}

/// A parsed index.
pub struct IndexReader {
    src: Box<dyn ByteSource>,
    toc: Toc,
    symbols: Vec<String>,
    /// label name -> (label value, offset of its postings list), values sorted.
    postings_table: BTreeMap<String, Vec<(String, u64)>>,
}

impl std::fmt::Debug for IndexReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexReader")
            .field("path", &self.src.path())
            .field("toc", &self.toc)
            .field("symbols", &self.symbols.len())
            .finish()
    }
}

impl IndexReader {
    /// Parses the index held by `src`.
    pub fn open(src: Box<dyn ByteSource>) -> Result<Self, TsdbError> {
        let path = src.path().to_path_buf();
        let len = src.len();
        if len < (5 + TOC_SIZE) as u64 {
            return Err(corrupt(
                &path,
                0,
                format!("index of {len} bytes is too short"),
            ));
        }
        let header = src.read_range(0, 5)?;
        let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if magic != MAGIC_INDEX {
            return Err(corrupt(&path, 0, format!("bad magic {magic:#010x}")));
        }
        if header[4] != INDEX_VERSION {
            return Err(corrupt(
                &path,
                4,
                format!("index version {} is not supported (only 2)", header[4]),
            ));
        }
        let toc_off = len - TOC_SIZE as u64;
        let toc_bytes = src.read_range(toc_off, TOC_SIZE)?;
        check_crc(&path, toc_off, &toc_bytes[..48], &toc_bytes[48..])?;
        let mut d = Decbuf::new(&toc_bytes, toc_off, &path);
        let toc = Toc {
            symbols: d.be64()?,
            series: d.be64()?,
            label_indices: d.be64()?,
            label_indices_table: d.be64()?,
            postings: d.be64()?,
            postings_table: d.be64()?,
        };

        let sym_bytes = read_section(src.as_ref(), toc.symbols)?;
        let mut d = Decbuf::new(&sym_bytes, toc.symbols + 4, &path);
        let n = d.be32()?;
        // Each symbol takes at least one byte: bound what a corrupt count
        // can make us allocate.
        let mut symbols = Vec::with_capacity((n as usize).min(d.remaining()));
        for _ in 0..n {
            symbols.push(d.uvarint_str()?.to_owned());
        }

        let mut postings_table: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
        let table = read_section(src.as_ref(), toc.postings_table)?;
        let mut d = Decbuf::new(&table, toc.postings_table + 4, &path);
        let n = d.be32()?;
        for _ in 0..n {
            let keys = d.uvarint()?;
            if keys != 2 {
                return Err(d.corrupt(format!("postings table entry with {keys} keys")));
            }
            let name = d.uvarint_str()?;
            let value = d.uvarint_str()?;
            let off = d.uvarint()?;
            let values = postings_table.entry(name.to_owned()).or_default();
            if values.last().is_some_and(|(v, _)| v.as_str() >= value) {
                return Err(d.corrupt("postings offset table is not sorted"));
            }
            values.push((value.to_owned(), off));
        }
        Ok(IndexReader {
            src,
            toc,
            symbols,
            postings_table,
        })
    }

    /// The file's path (or object key), for messages.
    pub fn path(&self) -> &Path {
        self.src.path()
    }

    /// Section offsets.
    pub fn toc(&self) -> Toc {
        self.toc
    }

    /// All strings of the symbol table, sorted.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// Label names present in the block, sorted.
    pub fn label_names(&self) -> Vec<&str> {
        self.postings_table
            .keys()
            .filter(|k| !k.is_empty())
            .map(String::as_str)
            .collect()
    }

    /// Values of a label name, sorted (empty for an unknown name).
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        if name.is_empty() {
            return Vec::new();
        }
        self.postings_table
            .get(name)
            .map(|vs| vs.iter().map(|(v, _)| v.as_str()).collect())
            .unwrap_or_default()
    }

    /// Series references (sorted, so in label order) having `name="value"`.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<u64>, TsdbError> {
        let Some(off) = self.postings_table.get(name).and_then(|vs| {
            vs.binary_search_by(|(v, _)| v.as_str().cmp(value))
                .ok()
                .map(|i| vs[i].1)
        }) else {
            return Ok(Vec::new());
        };
        let bytes = read_section(self.src.as_ref(), off)?;
        let mut d = Decbuf::new(&bytes, off + 4, self.src.path());
        let n = d.be32()? as usize;
        if d.remaining() != n * 4 {
            return Err(d.corrupt(format!("postings list announces {n} entries")));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(u64::from(d.be32()?));
        }
        Ok(out)
    }

    /// Every series reference, in label order.
    pub fn all_postings(&self) -> Result<Vec<u64>, TsdbError> {
        self.postings("", "")
    }

    fn symbol(&self, d: &Decbuf<'_>, r: u64) -> Result<&str, TsdbError> {
        self.symbols
            .get(r as usize)
            .map(String::as_str)
            .ok_or_else(|| d.corrupt(format!("symbol reference {r} out of range")))
    }

    /// Reads one series by reference.
    pub fn series(&self, series_ref: u64) -> Result<IndexSeries, TsdbError> {
        let path = self.src.path();
        let off = series_ref
            .checked_mul(16)
            .filter(|o| *o < self.src.len())
            .ok_or_else(|| {
                corrupt(
                    path,
                    0,
                    format!("series reference {series_ref} out of range"),
                )
            })?;
        let avail = (self.src.len() - off).min(10) as usize;
        let head = self.src.read_range(off, avail)?;
        let mut d = Decbuf::new(&head, off, path);
        let len = d.uvarint()? as usize;
        let start = d.offset();
        drop(head);
        let body = self.src.read_range(start, len.saturating_add(4))?;
        check_crc(path, start, &body[..len], &body[len..])?;
        let mut d = Decbuf::new(&body[..len], start, path);

        let nlabels = d.uvarint()?;
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(nlabels.min(256) as usize);
        for _ in 0..nlabels {
            let n = d.uvarint()?;
            let v = d.uvarint()?;
            let name = self.symbol(&d, n)?;
            let value = self.symbol(&d, v)?;
            if pairs.last().is_some_and(|(p, _)| *p >= name) {
                return Err(d.corrupt("series labels are not sorted"));
            }
            pairs.push((name, value));
        }
        let labels = Labels::from_sorted_pairs(pairs);

        let nchunks = d.uvarint()?;
        let mut chunks: Vec<ChunkMeta> = Vec::with_capacity(nchunks.min(1 << 16) as usize);
        for i in 0..nchunks {
            let m = if i == 0 {
                let min_time = d.varint()?;
                let max_time = min_time.wrapping_add(d.uvarint()? as i64);
                let r = d.uvarint()?;
                ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref: ChunkRef(r),
                }
            } else {
                let p = chunks[chunks.len() - 1];
                let min_time = p.max_time.wrapping_add(d.uvarint()? as i64);
                let max_time = min_time.wrapping_add(d.uvarint()? as i64);
                let r = p.chunk_ref.0.wrapping_add(d.varint()? as u64);
                ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref: ChunkRef(r),
                }
            };
            chunks.push(m);
        }
        Ok(IndexSeries { labels, chunks })
    }
}

/// Reads a `len <4b> | content | CRC32C` section and returns the content
/// (without the length field), checked.
fn read_section(src: &dyn ByteSource, off: u64) -> Result<Vec<u8>, TsdbError> {
    let l = src.read_range(off, 4)?;
    let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
    let bytes = src.read_range(off + 4, len + 4)?;
    check_crc(src.path(), off, &bytes[..len], &bytes[len..])?;
    let mut v = bytes.into_owned();
    v.truncate(len);
    Ok(v)
}
