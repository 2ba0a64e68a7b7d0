//! One block compressed on its own: a complete gzip member (RFC 1952) or zstd frame, so blocks
//! can be compressed on any thread and written one after the other.
//!
//! A compressor is kept and reset between blocks (its state is a few hundred KiB for gzip, a few
//! MiB for zstd), so a long export allocates it once per worker, not once per block.

use std::io;

use flate2::{Compress, Crc, FlushCompress, Status};

use super::{Codec, Compression};

/// gzip's fixed header: magic, deflate, no flags, no modification time; byte 8 (extra flags) is
/// set per level and byte 9 (the system) is "unknown", as flate2 writes it. No time or name, so
/// the same document always compresses to the same bytes.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Compresses blocks into gzip members or zstd frames at one level.
pub(super) enum BlockCompressor {
    Gzip {
        /// Raw deflate (the gzip header and trailer are written here).
        deflate: Box<Compress>,
        level: u32,
    },
    Zstd(Box<zstd::bulk::Compressor<'static>>),
}

impl BlockCompressor {
    /// A compressor for `codec`, which compresses (not [`Compression::None`]).
    pub(super) fn new(codec: Codec) -> io::Result<BlockCompressor> {
        match codec.compression() {
            Compression::Gzip => Ok(BlockCompressor::Gzip {
                deflate: Box::new(Compress::new(
                    flate2::Compression::new(codec.level()),
                    false,
                )),
                level: codec.level(),
            }),
            Compression::Zstd => {
                let level = i32::try_from(codec.level()).map_err(io::Error::other)?;
                let mut zstd = zstd::bulk::Compressor::new(level)?;
                // A checksum per frame, as the `zstd` tool writes by default: a damaged file
                // fails to read instead of yielding different bytes.
                zstd.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
                Ok(BlockCompressor::Zstd(Box::new(zstd)))
            }
            Compression::None => Err(io::Error::other("no compression was asked for")),
        }
    }

    /// Replaces `output`'s contents with `input` compressed as one complete member (frame).
    /// An empty input gives an empty member, which readers accept.
    pub(super) fn compress(&mut self, input: &[u8], output: &mut Vec<u8>) -> io::Result<()> {
        output.clear();
        match self {
            BlockCompressor::Gzip { deflate, level } => gzip_member(deflate, *level, input, output),
            BlockCompressor::Zstd(zstd) => {
                output.reserve(zstd::zstd_safe::compress_bound(input.len()));
                zstd.compress_to_buffer(input, output)?;
                Ok(())
            }
        }
    }
}

/// Writes `input` as one gzip member: header, raw deflate, CRC-32 and size.
fn gzip_member(
    deflate: &mut Compress,
    level: u32,
    input: &[u8],
    output: &mut Vec<u8>,
) -> io::Result<()> {
    let mut header = GZIP_HEADER;
    // Extra flags as gzip sets them: 2 for the slowest level, 4 for the fastest.
    header[8] = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    output.extend_from_slice(&header);
    deflate.reset();
    // Room for the whole result at once: deflate never grows data by more than 5 bytes per
    // 16 KiB stored block; the loop below still copes with less.
    output.reserve(input.len() + input.len() / 1024 + 64);
    let mut rest = input;
    loop {
        if output.capacity() == output.len() {
            output.reserve(64 * 1024);
        }
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(rest, output, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        rest = &rest[(deflate.total_in() - before) as usize..];
        if status == Status::StreamEnd {
            break;
        }
    }
    let mut crc = Crc::new();
    crc.update(input);
    output.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the size modulo 2^32 (RFC 1952); a block is far smaller anyway.
    output.extend_from_slice(&(input.len() as u32).to_le_bytes());
    Ok(())
}
