//! Layer compression on every core, with bytes that do not depend on how many there are.
//!
//! gzip: the tar is cut into blocks of [`BLOCK`] bytes, each deflated on its own (a fresh
//! compressor, no dictionary) and ended with a sync flush, the last with the final block; the
//! pieces, in order, make one raw deflate stream, wrapped in one gzip member (no name, time 0,
//! "unknown" system) whose CRC-32 and length cover the whole tar. Where a block is cut is a
//! function of the input alone, so 1 thread or 64 write the same bytes.
//!
//! zstd: zstd's own multi-threaded mode with at least one worker, whose output the zstd
//! library keeps the same for any number of workers.
//!
//! Blocks are compressed on a pool shared by every layer of a build, at most `2 × threads`
//! blocks in flight per layer, so memory stays a few MiB per layer however large it is.

use flate2::{Compress, FlushCompress, Status};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::mpsc;

/// The input each gzip block covers: 1 MiB, large enough that starting each block without
/// the previous 32 KiB as a dictionary costs well under 1% in size.
pub const BLOCK: usize = 1 << 20;

/// The pool layers are compressed on: one thread per core.
pub fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("kiln-compress-{i}"))
            .build()
            .unwrap_or_else(|_| fallback())
    })
}

/// A pool of one thread, for a machine that cannot start the one it asked for.
fn fallback() -> rayon::ThreadPool {
    match rayon::ThreadPoolBuilder::new().num_threads(1).use_current_thread().build() {
        Ok(p) => p,
        Err(e) => panic!("cannot start a compression thread: {e}"),
    }
}

/// The number of zstd workers: the pool's size, at least 1 (the multi-threaded format).
pub fn zstd_workers(pool: &rayon::ThreadPool) -> u32 {
    pool.current_num_threads().clamp(1, 256) as u32
}

type Pending = mpsc::Receiver<io::Result<Vec<u8>>>;

/// A gzip writer that deflates [`BLOCK`]-sized blocks of its input on `pool`.
pub struct BlockGz<'p, W: Write> {
    out: Option<W>,
    pool: &'p rayon::ThreadPool,
    level: u32,
    block: Vec<u8>,
    pending: VecDeque<Pending>,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<'p, W: Write> BlockGz<'p, W> {
    pub fn new(mut out: W, level: u32, pool: &'p rayon::ThreadPool) -> io::Result<BlockGz<'p, W>> {
        // What flate2's GzBuilder writes: no flags, time 0, XFL by level, OS 255 (unknown).
        let xfl = match level {
            9.. => 2,
            0 | 1 => 4,
            _ => 0,
        };
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
        Ok(BlockGz {
            out: Some(out),
            pool,
            level,
            block: Vec::with_capacity(BLOCK),
            pending: VecDeque::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
        })
    }

    fn out(&mut self) -> io::Result<&mut W> {
        self.out.as_mut().ok_or_else(|| io::Error::other("the gzip stream is finished"))
    }

    /// Writes the oldest block in flight once it is compressed.
    fn drain_one(&mut self) -> io::Result<()> {
        let Some(rx) = self.pending.pop_front() else { return Ok(()) };
        let bytes = rx.recv().map_err(|_| io::Error::other("a compression thread stopped"))??;
        self.out()?.write_all(&bytes)
    }

    /// Hands the full block to the pool, first writing what is done when too much is in flight.
    fn dispatch(&mut self) -> io::Result<()> {
        while self.pending.len() >= 2 * self.pool.current_num_threads().max(1) {
            self.drain_one()?;
        }
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let (tx, rx) = mpsc::sync_channel(1);
        let level = self.level;
        self.pool.spawn(move || {
            let _ = tx.send(deflate_block(&data, level, false));
        });
        self.pending.push_back(rx);
        Ok(())
    }

    /// Compresses the rest, writes the trailer, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        // The last block (possibly empty) ends the stream; it is compressed here, as the
        // blocks before it are written.
        let last = std::mem::take(&mut self.block);
        let level = self.level;
        let tail = match self.pending.is_empty() {
            true => deflate_block(&last, level, true)?,
            false => {
                let (tx, rx) = mpsc::sync_channel(1);
                self.pool.spawn(move || {
                    let _ = tx.send(deflate_block(&last, level, true));
                });
                while !self.pending.is_empty() {
                    self.drain_one()?;
                }
                rx.recv().map_err(|_| io::Error::other("a compression thread stopped"))??
            }
        };
        let crc = std::mem::take(&mut self.crc).finalize();
        let len = self.len as u32;
        let mut out = self.out.take().ok_or_else(|| io::Error::other("the gzip stream is finished"))?;
        out.write_all(&tail)?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&len.to_le_bytes())?;
        Ok(out)
    }
}

impl<W: Write> Write for BlockGz<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.is_none() {
            return Err(io::Error::other("the gzip stream is finished"));
        }
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        if self.block.len() == BLOCK {
            self.dispatch()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One block as raw deflate: a fresh compressor, ended by a sync flush (byte-aligned, not
/// final) or, for the last block, by the final block.
pub fn deflate_block(data: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut out = Vec::with_capacity(data.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(4096));
        }
        let consumed = usize::try_from(c.total_in()).map_err(io::Error::other)?;
        let status = c.compress_vec(&data[consumed..], &mut out, flush).map_err(io::Error::other)?;
        let all_in = usize::try_from(c.total_in()).map_err(io::Error::other)? == data.len();
        match status {
            Status::StreamEnd => return Ok(out),
            // A sync flush is complete once all input is taken and output space is left over.
            _ if !last && all_in && out.len() < out.capacity() => return Ok(out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Text with long repeats, and incompressible stretches, across several blocks.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (v.len() / 100_000) % 3 == 2 {
                v.extend_from_slice(&x.to_le_bytes());
            } else {
                v.extend_from_slice(["edge ", "fleet ", "layer ", "kiln "][(x % 4) as usize].as_bytes());
            }
        }
        v.truncate(len);
        v
    }

    fn pool_of(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()
    }

    fn gz(data: &[u8], level: u32, pool: &rayon::ThreadPool, chunk: usize) -> Vec<u8> {
        let mut w = BlockGz::new(Vec::new(), level, pool).unwrap();
        for c in data.chunks(chunk) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn gzip_blocks_are_the_same_bytes_on_1_2_and_8_threads_and_unpack_to_the_input() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 12_345] {
            let data = sample(len);
            let one = gz(&data, 6, &pool_of(1), 64 * 1024);
            for (threads, chunk) in [(2, 1000), (8, 3 * BLOCK)] {
                assert_eq!(gz(&data, 6, &pool_of(threads), chunk), one, "{len} bytes on {threads} threads");
            }
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
            assert!(back == data, "{len} bytes do not unpack to themselves");
            // One gzip member: a single-member reader sees all of it, and nothing follows.
            let mut r = flate2::bufread::GzDecoder::new(&one[..]);
            io::copy(&mut r, &mut io::sink()).unwrap();
            assert!(r.into_inner().is_empty(), "{len} bytes: trailing data after the member");
        }
    }

    #[test]
    fn gzip_blocks_cost_little_against_one_stream() {
        let data = sample(4 * BLOCK);
        let blocks = gz(&data, 6, &pool_of(2), 8192).len();
        let mut one = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        one.write_all(&data).unwrap();
        let stream = one.finish().unwrap().len();
        assert!(blocks as f64 <= stream as f64 * 1.01, "blocks {blocks} bytes, one stream {stream}");
    }

    #[test]
    fn zstd_with_workers_is_the_same_bytes_on_1_2_and_8_threads() {
        let data = sample(24 * BLOCK);
        let z = |workers: u32| {
            let mut e = super::super::zstd_stream(Vec::new(), 3, workers).unwrap();
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let one = z(1);
        assert_eq!(z(2), one);
        assert_eq!(z(8), one);
        assert_eq!(zstd::stream::decode_all(&one[..]).unwrap(), data);
    }
}
