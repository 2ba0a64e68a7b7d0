//! Compression: levels, and block-parallel gzip and zstd read back to the same bytes, by our
//! reader and by flate2's and zstd's own, whatever the size around the block boundaries.

use std::io::Read;

use proptest::prelude::*;
use tokio::io::AsyncReadExt;

use super::parallel::{block_bytes, ParallelEncoder};
use super::*;

/// Bytes that compress like a document (repeated words) but not to nothing (varying numbers).
fn document_like(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len + 64);
    let mut i: u64 = 0;
    while bytes.len() < len {
        let line = format!(
            "    {{\"id\": {i}, \"name\": \"user{}\", \"score\": {}}},\n",
            i * 7919 % 1000,
            i.wrapping_mul(2654435761) % 100_000
        );
        bytes.extend_from_slice(line.as_bytes());
        i += 1;
    }
    bytes.truncate(len);
    bytes
}

/// Compresses `input` with `codec`, written in pieces of `piece` bytes, with blocks of
/// `block` bytes and `workers` in flight.
async fn encode(input: &[u8], codec: Codec, block: usize, workers: usize, piece: usize) -> Vec<u8> {
    let mut encoder = ParallelEncoder::with_sizes(Vec::new(), codec, block, workers);
    for part in input.chunks(piece.max(1)) {
        encoder.write_all(part).await.unwrap();
    }
    encoder.finish().await.unwrap()
}

/// Reads compressed bytes back through the importer's reader ([`decompress`]).
async fn read_back(compressed: Vec<u8>) -> Vec<u8> {
    let raw: InputStream = Box::new(std::io::Cursor::new(compressed));
    let location = Location::parse("test.bin").unwrap();
    let mut reader = decompress(raw, &location).await.unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.unwrap();
    out
}

/// Reads compressed bytes back with flate2's or zstd's own multi-member reader.
fn read_back_natively(compression: Compression, compressed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match compression {
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(compressed)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd => {
            out = zstd::stream::decode_all(compressed).unwrap();
        }
        Compression::None => unreachable!(),
    }
    out
}

/// The members of a gzip file, counted by reading them one at a time with flate2.
fn gzip_members(compressed: &[u8]) -> usize {
    let mut members = 0;
    let mut rest = compressed;
    while !rest.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
        let used = rest.len() - decoder.into_inner().len();
        rest = &rest[used..];
        members += 1;
    }
    members
}

#[test]
fn levels_are_checked_per_codec() {
    let gzip = Compression::Gzip.with_level(None).unwrap();
    assert_eq!((gzip.compression(), gzip.level()), (Compression::Gzip, 6));
    assert_eq!(Codec::from(Compression::Zstd).level(), 3);
    assert_eq!(Compression::Gzip.with_level(Some(1)).unwrap().level(), 1);
    assert_eq!(Compression::Gzip.with_level(Some(9)).unwrap().level(), 9);
    assert_eq!(Compression::Zstd.with_level(Some(22)).unwrap().level(), 22);
    for (compression, level) in [
        (Compression::Gzip, 0),
        (Compression::Gzip, 10),
        (Compression::Zstd, 0),
        (Compression::Zstd, 23),
    ] {
        let error = compression.with_level(Some(level)).unwrap_err().to_string();
        assert!(
            error.contains(&format!(
                "level {level} is not one of {}'s",
                compression.name()
            )),
            "{error}"
        );
    }
    assert_eq!(
        Compression::Zstd
            .with_level(Some(30))
            .unwrap_err()
            .to_string(),
        "compression level 30 is not one of zstd's: give 1 to 22 (default 3)"
    );
    let error = Compression::None
        .with_level(Some(3))
        .unwrap_err()
        .to_string();
    assert!(error.contains("not compressed"), "{error}");
    assert_eq!(
        Compression::None.with_level(None).unwrap(),
        Codec::default()
    );
}

#[tokio::test]
async fn sizes_around_the_block_boundaries_read_back_exactly() {
    for compression in [Compression::Gzip, Compression::Zstd] {
        let codec = Codec::from(compression);
        // The real block size, so the sizes that matter are the ones exports meet.
        let block = block_bytes(codec);
        let data = document_like(3 * block + 1);
        for len in [0, 1, block - 1, block, block + 1, 2 * block, 3 * block + 1] {
            let input = &data[..len];
            let compressed = encode(input, codec, block, 2, 300_000).await;
            assert_eq!(
                read_back_natively(compression, &compressed),
                input,
                "{compression:?}, {len} bytes"
            );
            assert_eq!(
                read_back(compressed).await,
                input,
                "{compression:?}, {len} bytes"
            );
        }
    }
}

#[tokio::test]
async fn one_member_per_block_and_the_same_bytes_however_written() {
    let codec = Codec::from(Compression::Gzip);
    let input = document_like(5 * 1000 + 17);
    let reference = encode(&input, codec, 1000, 1, input.len()).await;
    // Blocks of 1000 bytes: six members, the last with the 17 bytes left.
    assert_eq!(gzip_members(&reference), 6);
    for (workers, piece) in [(2, 1), (3, 999), (4, 1000), (8, 1001), (2, 7000)] {
        assert_eq!(
            encode(&input, codec, 1000, workers, piece).await,
            reference,
            "{workers} workers, writes of {piece} bytes"
        );
    }
    // Nothing written still makes a (one-member) gzip file.
    let empty = encode(&[], codec, 1000, 2, 1).await;
    assert_eq!(gzip_members(&empty), 1);
    assert_eq!(read_back(empty).await, b"");
}

#[tokio::test]
async fn a_higher_level_compresses_smaller() {
    let input = document_like(2 << 20);
    let size = |level| {
        let input = &input;
        async move {
            let codec = Compression::Gzip.with_level(Some(level)).unwrap();
            let compressed = encode(input, codec, 1 << 20, 2, 1 << 20).await;
            assert_eq!(read_back_natively(Compression::Gzip, &compressed), *input);
            compressed.len()
        }
    };
    assert!(size(1).await > size(9).await);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any bytes, any block size, any number of workers, any write sizes: read back exactly.
    #[test]
    fn compress_then_decompress_is_identity(
        input in proptest::collection::vec(any::<u8>(), 0..5000),
        block in 1usize..2048,
        workers in 1usize..5,
        piece in 1usize..3000,
        zstd in any::<bool>(),
    ) {
        let compression = if zstd { Compression::Zstd } else { Compression::Gzip };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let compressed =
            runtime.block_on(encode(&input, compression.into(), block, workers, piece));
        prop_assert_eq!(read_back_natively(compression, &compressed), input.clone());
        prop_assert_eq!(runtime.block_on(read_back(compressed)), input);
    }
}
