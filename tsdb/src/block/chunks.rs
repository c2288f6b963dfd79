//! Chunk segment files (`chunks/000001`, ...), as in Prometheus's
//! `tsdb/docs/format/chunks.md`:
//!
//! ```text
//! segment: magic 0x85BD40DD <4b> | version 1 <1b> | padding <3b> | chunk...
//! chunk:   len <uvarint> | encoding <1b> | data <len bytes> | CRC32C(encoding + data) <4b>
//! ```
//!
//! A chunk reference is `segment index << 32 | byte offset in the segment`
//! (the segment index of `000001` is 0).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::codec::{Decbuf, check_crc, corrupt, crc32};
use super::source::ByteSource;
use crate::TsdbError;
use crate::chunk::{Encoding, XorChunk};

/// Magic number at the start of every chunk segment file.
pub(crate) const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
/// Segment header: magic, version, 3 bytes of padding.
pub(crate) const SEGMENT_HEADER_SIZE: u64 = 8;
/// Prometheus's segment size limit; a chunk never spans two segments.
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

/// Where a chunk lives: segment index and offset, packed as Prometheus does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkRef(pub u64);

impl ChunkRef {
    /// A reference to `offset` in segment `segment` (0 for `000001`).
    pub fn new(segment: u32, offset: u32) -> Self {
        ChunkRef((u64::from(segment) << 32) | u64::from(offset))
    }
    /// Index of the segment file (0-based).
    pub fn segment(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// Byte offset inside the segment file.
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// The file name of segment `index` (0-based): `000001` for 0.
pub fn segment_file_name(index: u32) -> String {
    format!("{:06}", u64::from(index) + 1)
}

/// Writes chunks into numbered segment files, cutting a new file before a
/// chunk would cross `max_segment_size`.
pub(crate) struct ChunkWriter {
    dir: PathBuf,
    max_segment_size: u64,
    current: Option<(BufWriter<File>, PathBuf)>,
    segment: u32,
    pos: u64,
    /// Bytes written in total, for statistics.
    pub(crate) total_bytes: u64,
}

impl ChunkWriter {
    pub(crate) fn new(dir: &Path, max_segment_size: u64) -> Result<Self, TsdbError> {
        std::fs::create_dir_all(dir).map_err(|e| TsdbError::io(dir, e))?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            max_segment_size: max_segment_size.max(SEGMENT_HEADER_SIZE + 64),
            current: None,
            segment: 0,
            pos: 0,
            total_bytes: 0,
        })
    }

    fn cut(&mut self) -> Result<(), TsdbError> {
        if self.current.is_some() {
            self.finish_current()?;
            self.segment += 1;
        }
        let path = self.dir.join(segment_file_name(self.segment));
        let file = File::create(&path).map_err(|e| TsdbError::io(&path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut header = [0u8; SEGMENT_HEADER_SIZE as usize];
        header[..4].copy_from_slice(&MAGIC_CHUNKS.to_be_bytes());
        header[4] = 1;
        w.write_all(&header).map_err(|e| TsdbError::io(&path, e))?;
        self.pos = SEGMENT_HEADER_SIZE;
        self.total_bytes += SEGMENT_HEADER_SIZE;
        self.current = Some((w, path));
        Ok(())
    }

    fn finish_current(&mut self) -> Result<(), TsdbError> {
        if let Some((w, path)) = self.current.take() {
            let file = w
                .into_inner()
                .map_err(|e| TsdbError::io(&path, e.into_error()))?;
            file.sync_all().map_err(|e| TsdbError::io(&path, e))?;
        }
        Ok(())
    }

    /// Appends one chunk and returns its reference.
    pub(crate) fn write(&mut self, chunk: &XorChunk) -> Result<ChunkRef, TsdbError> {
        let data = chunk.bytes();
        let mut head = Vec::with_capacity(11);
        let mut n = data.len() as u64;
        while n >= 0x80 {
            head.push((n as u8) | 0x80);
            n >>= 7;
        }
        head.push(n as u8);
        head.push(Encoding::Xor as u8);
        let size = (head.len() + data.len() + 4) as u64;
        if SEGMENT_HEADER_SIZE + size > self.max_segment_size {
            return Err(TsdbError::InvalidBlockInput {
                reason: format!(
                    "chunk of {size} bytes does not fit a segment of {} bytes",
                    self.max_segment_size
                ),
            });
        }
        if self.current.is_none() || self.pos + size > self.max_segment_size {
            self.cut()?;
        }
        let offset = u32::try_from(self.pos).map_err(|_| TsdbError::InvalidBlockInput {
            reason: format!("segment offset {} does not fit 32 bits", self.pos),
        })?;
        let r = ChunkRef::new(self.segment, offset);
        let mut crc_input = Vec::with_capacity(1 + data.len());
        crc_input.push(Encoding::Xor as u8);
        crc_input.extend_from_slice(data);
        let crc = crc32(&crc_input);
        if let Some((w, path)) = self.current.as_mut() {
            w.write_all(&head)
                .and_then(|()| w.write_all(data))
                .and_then(|()| w.write_all(&crc.to_be_bytes()))
                .map_err(|e| TsdbError::io(path.as_path(), e))?;
        }
        self.pos += size;
        self.total_bytes += size;
        Ok(r)
    }

    /// Flushes and fsyncs the last segment.
    pub(crate) fn finish(mut self) -> Result<(), TsdbError> {
        self.finish_current()
    }
}

/// Reads chunks by reference from a block's segment files.
pub struct ChunkReader {
    segments: Vec<Box<dyn ByteSource>>,
}

impl std::fmt::Debug for ChunkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field("segments", &self.segments.len())
            .finish()
    }
}

/// How many bytes to read first when fetching a chunk: a 120-sample chunk
/// of regular data fits, so most chunks take one read.
const FIRST_READ: usize = 512;

impl ChunkReader {
    /// Checks each segment's header. `segments[i]` is the file of index `i`.
    pub fn new(segments: Vec<Box<dyn ByteSource>>) -> Result<Self, TsdbError> {
        for s in &segments {
            let h = s.read_range(0, SEGMENT_HEADER_SIZE as usize)?;
            let magic = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            if magic != MAGIC_CHUNKS {
                return Err(corrupt(s.path(), 0, format!("bad magic {magic:#010x}")));
            }
            if h[4] != 1 {
                return Err(corrupt(
                    s.path(),
                    4,
                    format!("unknown chunks version {}", h[4]),
                ));
            }
        }
        Ok(ChunkReader { segments })
    }

    /// Opens the segment files `000001`, `000002`, ... of `<block>/chunks`.
    pub fn open_dir(dir: &Path) -> Result<Self, TsdbError> {
        let mut names = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(|e| TsdbError::io(dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| TsdbError::io(dir, e))?;
            let name = entry.file_name();
            if let Some(n) = name.to_str().and_then(|s| s.parse::<u32>().ok()) {
                names.push(n);
            }
        }
        names.sort_unstable();
        let mut segments: Vec<Box<dyn ByteSource>> = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            if *n as usize != i + 1 {
                return Err(corrupt(
                    dir,
                    0,
                    format!("chunk segment {} is missing", segment_file_name(i as u32)),
                ));
            }
            let path = dir.join(segment_file_name(i as u32));
            segments.push(Box::new(super::source::FileSource::open(&path)?));
        }
        Self::new(segments)
    }

    /// The segment a reference names, checking the offset is inside it.
    fn segment(&self, r: ChunkRef) -> Result<&dyn ByteSource, TsdbError> {
        let Some(seg) = self.segments.get(r.segment() as usize) else {
            return Err(TsdbError::CorruptBlock {
                path: PathBuf::from("chunks"),
                offset: u64::from(r.offset()),
                reason: format!(
                    "chunk reference {:#x} names segment {} of {}",
                    r.0,
                    r.segment(),
                    self.segments.len()
                ),
            });
        };
        if u64::from(r.offset()) >= seg.len() {
            return Err(corrupt(
                seg.path(),
                u64::from(r.offset()),
                format!(
                    "chunk reference {:#x} points past the end of the segment ({} bytes)",
                    r.0,
                    seg.len()
                ),
            ));
        }
        Ok(seg.as_ref())
    }

    /// Reads and checks one chunk.
    pub fn chunk(&self, r: ChunkRef) -> Result<XorChunk, TsdbError> {
        let mut one = self.chunks(std::slice::from_ref(&r))?;
        one.pop().ok_or_else(|| TsdbError::CorruptBlock {
            path: PathBuf::from("chunks"),
            offset: u64::from(r.offset()),
            reason: format!("chunk reference {:#x} read nothing", r.0),
        })
    }

    /// Reads and checks the chunks `refs` name, returned in the order of
    /// `refs`. Neighbouring chunks are read together: a chunk segment
    /// holds a block's chunks series after series, so a select's chunks
    /// come in a few long ranges instead of one read each (one request
    /// per range to object storage, and all ranges of a segment in one
    /// [`ByteSource::read_ranges`]).
    pub fn chunks(&self, refs: &[ChunkRef]) -> Result<Vec<XorChunk>, TsdbError> {
        let mut order: Vec<usize> = (0..refs.len()).collect();
        order.sort_unstable_by_key(|&i| refs[i]);
        let mut out: Vec<Option<XorChunk>> = (0..refs.len()).map(|_| None).collect();
        for group in order.chunk_by(|&a, &b| refs[a].segment() == refs[b].segment()) {
            let seg = self.segment(refs[group[0]])?;
            let mut ranges: Vec<Range<u64>> = Vec::new();
            let mut range_of = Vec::with_capacity(group.len());
            for &k in group {
                let off = u64::from(refs[k].offset());
                let end = off + first_read_len(seg, off) as u64;
                match ranges.last_mut() {
                    Some(r) if off <= r.end + MAX_GAP && end - r.start <= MAX_RANGE => {
                        r.end = r.end.max(end);
                    }
                    _ => ranges.push(off..end),
                }
                range_of.push(ranges.len() - 1);
            }
            let bufs = seg.read_ranges(&ranges)?;
            for (&k, &ri) in group.iter().zip(&range_of) {
                let off = u64::from(refs[k].offset());
                let buf = &bufs[ri][(off - ranges[ri].start) as usize..];
                let chunk = match parse_chunk(seg.path(), off, buf)? {
                    Parsed::Chunk(c) => c,
                    Parsed::Needs(total) => {
                        let whole = seg.read_range(off, total)?;
                        parse_chunk(seg.path(), off, &whole)?.into_chunk(seg.path(), off)?
                    }
                };
                out[k] = Some(chunk);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

/// Most bytes between two chunks that are read rather than skipped: less
/// than the cost of another request.
const MAX_GAP: u64 = 16 * 1024;
/// Longest range read at once.
const MAX_RANGE: u64 = 8 << 20;

/// The first read for a chunk at `off`: [`FIRST_READ`] bytes, or up to
/// the end of the segment.
fn first_read_len(seg: &dyn ByteSource, off: u64) -> usize {
    seg.len().saturating_sub(off).min(FIRST_READ as u64) as usize
}

/// A chunk parsed from the bytes read at its offset.
enum Parsed {
    Chunk(XorChunk),
    /// The bytes read end inside the chunk: it needs this many.
    Needs(usize),
}

impl Parsed {
    fn into_chunk(self, path: &Path, off: u64) -> Result<XorChunk, TsdbError> {
        match self {
            Parsed::Chunk(c) => Ok(c),
            Parsed::Needs(n) => Err(corrupt(
                path,
                off,
                format!("chunk of {n} bytes is cut short"),
            )),
        }
    }
}

/// Parses and checks the chunk starting at `buf[0]` (offset `off` of the
/// segment `path`).
fn parse_chunk(path: &Path, off: u64, buf: &[u8]) -> Result<Parsed, TsdbError> {
    let mut d = Decbuf::new(buf, off, path);
    let len = d.uvarint()?;
    let len = usize::try_from(len).map_err(|_| d.corrupt("chunk length overflows"))?;
    let head = (d.offset() - off) as usize;
    let total = head
        .checked_add(len)
        .and_then(|x| x.checked_add(5))
        .ok_or_else(|| d.corrupt("chunk length overflows"))?;
    if total > buf.len() {
        return Ok(Parsed::Needs(total));
    }
    let body = &buf[head..head + 1 + len];
    check_crc(path, off, body, &buf[head + 1 + len..total])?;
    match Encoding::from_byte(body[0]) {
        Some(Encoding::Xor) => {}
        Some(other) => {
            return Err(corrupt(
                path,
                off,
                format!("chunk encoding {other:?} is not supported (only XOR float chunks)"),
            ));
        }
        None => {
            return Err(corrupt(
                path,
                off,
                format!("unknown chunk encoding {}", body[0]),
            ));
        }
    }
    XorChunk::from_bytes(body[1..].to_vec()).map(Parsed::Chunk)
}
