//! Encryption without a server: round trips through every compression and store kind, several
//! recipients, and every way decryption must refuse (no identity, a wrong one, a cut or changed
//! file), never with a panic and never handing on unauthenticated bytes.

use proptest::prelude::*;
use tokio::io::AsyncReadExt;

use super::*;

/// A fresh identity and its recipients.
fn keypair() -> (Identities, Recipients) {
    let identity = age::x25519::Identity::generate();
    let identities = Identities(vec![identity]);
    let recipients = identities.recipients();
    (identities, recipients)
}

/// Bytes that compress a little, deterministic.
fn document(len: usize) -> Vec<u8> {
    let mut state = 7u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"{}\": ,0123456789abcdefgh \n"[(state % 26) as usize]
        })
        .collect()
}

async fn write(location: &Location, compression: Compression, to: &Recipients, bytes: &[u8]) {
    let mut output = Output::create_encrypted(location, compression, Some(to))
        .await
        .unwrap();
    for piece in bytes.chunks(300_000) {
        output.write_all(piece).await.unwrap();
    }
    output.publish().await.unwrap();
}

async fn read(location: &Location, identities: Option<&Identities>) -> Result<Vec<u8>, String> {
    let (mut input, _) = open_input_with(location, identities)
        .await
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

async fn stored(location: &Location) -> Vec<u8> {
    let mut raw = Vec::new();
    open_raw(location)
        .await
        .unwrap()
        .read_to_end(&mut raw)
        .await
        .unwrap();
    raw
}

#[tokio::test]
async fn round_trips_through_every_compression_and_store() {
    let (identities, recipients) = keypair();
    let plain = document(3 << 20);
    let dir = tempfile::tempdir().unwrap();
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let name = format!("doc.{}.age", compression.name());
        for location in [
            Location::Path(dir.path().join(&name)),
            Location::parse(&format!("memory://crypt/{name}")).unwrap(),
        ] {
            write(&location, compression, &recipients, &plain).await;
            let raw = stored(&location).await;
            assert!(raw.starts_with(AGE_MAGIC), "{location}: not an age file");
            assert!(is_encrypted(&raw));
            let back = read(&location, Some(&identities)).await.unwrap();
            assert!(
                back == plain,
                "{location}: the round trip changed the bytes"
            );
            // The sidecar covers the stored, encrypted bytes.
            let mut hasher = Hasher::new();
            hasher.update(&raw);
            let checksum = read_checksum(&location).await.unwrap();
            assert_eq!(checksum.sha256, hasher.finish(), "{location}");
            // Without identities: refused before anything is read.
            let error = read(&location, None).await.unwrap_err();
            assert!(error.contains("is encrypted (age)"), "{error}");
        }
    }
}

#[tokio::test]
async fn every_recipient_decrypts_and_others_do_not() {
    let (first, to_first) = keypair();
    let (second, to_second) = keypair();
    let (stranger, _) = keypair();
    let location = Location::parse("memory://crypt/two.json.gz.age").unwrap();
    let both = to_first.merge(to_second);
    assert_eq!(both.len(), 2);
    write(&location, Compression::Gzip, &both, b"{\"x\": 1}").await;
    for identities in [&first, &second] {
        assert_eq!(
            read(&location, Some(identities)).await.unwrap(),
            b"{\"x\": 1}"
        );
    }
    let error = read(&location, Some(&stranger)).await.unwrap_err();
    assert!(
        error.contains("none of the age identities given matches"),
        "{error}"
    );
    // Among several identities, the matching one is found.
    let mixed = stranger.merge(second);
    assert_eq!(read(&location, Some(&mixed)).await.unwrap(), b"{\"x\": 1}");
}

#[tokio::test]
async fn an_empty_document_is_a_valid_age_file() {
    let (identities, recipients) = keypair();
    let location = Location::parse("memory://crypt/empty.age").unwrap();
    write(&location, Compression::None, &recipients, b"").await;
    assert_eq!(read(&location, Some(&identities)).await.unwrap(), b"");
}

#[tokio::test]
async fn plain_input_reads_with_or_without_identities() {
    let (identities, _) = keypair();
    let location = Location::parse("memory://crypt/plain.json.gz").unwrap();
    let mut output = Output::create(&location, Compression::Gzip).await.unwrap();
    output.write_all(b"{}").await.unwrap();
    output.publish().await.unwrap();
    assert_eq!(read(&location, Some(&identities)).await.unwrap(), b"{}");
    assert_eq!(read(&location, None).await.unwrap(), b"{}");
}

/// Decrypts `bytes` fully: the plaintext, or the error's text.
fn decrypt_bytes(bytes: Vec<u8>, identities: &Identities) -> Result<Vec<u8>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let location = Location::Stdio;
        let raw: InputStream = Box::new(std::io::Cursor::new(bytes));
        let plain = decrypt(raw, &location, Some(identities))
            .await
            .map_err(|e| e.to_string())?;
        let mut input = decompress(plain, &location)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        input
            .read_to_end(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        Ok(out)
    })
}

/// An encrypted gzip document of about 200 KiB (four age chunks), with its key and plaintext.
fn sample() -> &'static (Identities, Vec<u8>, Vec<u8>) {
    static SAMPLE: std::sync::OnceLock<(Identities, Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(|| {
        let (identities, recipients) = keypair();
        let plain = document(200 * 1024);
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Path(dir.path().join("s.json.age"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let raw = runtime.block_on(async {
            write(&location, Compression::None, &recipients, &plain).await;
            stored(&location).await
        });
        (identities, raw, plain)
    })
}

/// Where a cut is always caught: inside the header, at the end of the header, at every chunk
/// boundary, inside a chunk, one byte short.
#[test]
fn a_cut_anywhere_is_refused() {
    let (identities, raw, plain) = sample();
    assert_eq!(&decrypt_bytes(raw.clone(), identities).unwrap(), plain);
    let header = raw
        .windows(4)
        .position(|w| w == b"\n---")
        .expect("the header's MAC line");
    let chunk = 64 * 1024 + 16;
    let body = header + raw[header + 1..].iter().position(|&b| b == b'\n').unwrap() + 2;
    // Shorter than the magic line, a file is no longer recognisable as age: it reads as the
    // plain bytes it is (and fails as JSON), never as the document.
    let short = decrypt_bytes(raw[..5].to_vec(), identities).unwrap();
    assert_eq!(short, b"age-e");
    let mut cuts = vec![AGE_MAGIC.len(), header, body, body + 16, raw.len() - 1];
    for k in 1..=3 {
        cuts.extend([
            body + 16 + k * chunk - 1,
            body + 16 + k * chunk,
            body + 16 + k * chunk + 1,
        ]);
    }
    for cut in cuts.into_iter().filter(|&cut| cut < raw.len()) {
        let result = decrypt_bytes(raw[..cut].to_vec(), identities);
        match result {
            Ok(bytes) => panic!(
                "cut at {cut} of {}: {} bytes read as complete",
                raw.len(),
                bytes.len()
            ),
            Err(error) => assert!(
                error.contains("truncated") || error.contains("modified"),
                "cut at {cut}: {error}"
            ),
        }
    }
}

/// A character that is not base64 in the header's stanza body: age reads the header as of an
/// unknown format, and the error must say the file may be damaged, not only that a newer age
/// wrote it (as it did before: found by the property below, on such a byte).
#[test]
fn a_changed_stanza_body_says_damaged() {
    let (identities, raw, _) = sample();
    let lines: Vec<usize> = raw
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(at, _)| at)
        .take(2)
        .collect();
    let body = lines[1] + 1;
    let mut changed = raw.clone();
    changed[body + 5] = b'!';
    let error = decrypt_bytes(changed, identities).unwrap_err();
    assert!(error.contains("damaged"), "{error}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A changed byte anywhere is refused with an error, never read as the document.
    #[test]
    fn a_changed_byte_is_refused(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (identities, raw, plain) = sample();
        let mut changed = raw.clone();
        let at = at.index(changed.len());
        changed[at] ^= flip;
        match decrypt_bytes(changed.clone(), identities) {
            // A changed magic line is no longer age: the bytes read are the stored ones, which
            // fail as JSON, never the document.
            Ok(bytes) => prop_assert!(
                at < AGE_MAGIC.len() && bytes == changed && &bytes != plain,
                "byte {at} changed, {} bytes read",
                bytes.len()
            ),
            Err(error) => prop_assert!(
                error.contains("modified") || error.contains("truncated")
                    || error.contains("matches") || error.contains("damaged")
                    || error.contains("header"),
                "byte {at}: {error}"
            ),
        }
    }

    /// A cut at any length is refused.
    #[test]
    fn a_cut_at_any_length_is_refused(at in any::<prop::sample::Index>()) {
        let (identities, raw, _) = sample();
        let cut = at.index(raw.len());
        prop_assume!(cut >= AGE_MAGIC.len());
        prop_assert!(decrypt_bytes(raw[..cut].to_vec(), identities).is_err(), "cut at {cut}");
    }
}

#[test]
fn recipients_are_checked_and_never_repeated() {
    let (identities, recipients) = keypair();
    let good = recipients.keys().remove(0);
    let parsed = Recipients::parse([good.as_str()], |i| format!("recipient {}", i + 1))
        .unwrap()
        .unwrap();
    assert_eq!(parsed, recipients);
    assert_eq!(Recipients::parse([], |_| String::new()).unwrap(), None);
    let secret = identities.0[0].to_string();
    let mut broken = good.clone();
    broken.pop();
    for (key, expected) in [
        (secret.expose_secret(), "it is a private key"),
        ("ssh-ed25519 AAAAC3Nza", "SSH keys are not supported"),
        ("hello", "expected an age public key"),
        (broken.as_str(), "not a valid age public key"),
    ] {
        let error = Recipients::parse([good.as_str(), key], |i| format!("recipient {}", i + 1))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cannot encrypt to recipient 2: "),
            "{error}"
        );
        assert!(error.contains(expected), "{error}");
        assert!(!error.contains(key), "the key is repeated: {error}");
    }
}

use age::secrecy::ExposeSecret as _;

#[test]
fn key_files_skip_comments_and_name_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (identities, recipients) = keypair();
    let secret = identities.0[0].to_string();
    let key_file = dir.path().join("key.txt");
    std::fs::write(
        &key_file,
        format!(
            "# created: today\n# public key: {}\n\n{}\n",
            recipients.keys()[0],
            secret.expose_secret()
        ),
    )
    .unwrap();
    let read = Identities::read_file(&key_file).unwrap();
    assert_eq!(read.recipients(), recipients);
    let shown = format!("{read:?}");
    assert_eq!(shown, "Identities(<1 redacted>)");

    let list = dir.path().join("recipients.txt");
    std::fs::write(&list, format!("# ops\n{}\n\n", recipients.keys()[0])).unwrap();
    assert_eq!(Recipients::read_file(&list).unwrap(), recipients);

    std::fs::write(&list, "# nobody\n").unwrap();
    let error = Recipients::read_file(&list).unwrap_err().to_string();
    assert!(error.contains("holds no key"), "{error}");
    std::fs::write(&list, format!("{}\nnot-a-key\n", recipients.keys()[0])).unwrap();
    let error = Recipients::read_file(&list).unwrap_err().to_string();
    assert!(error.contains("line 2 of"), "{error}");

    // A public key where the private one belongs, and a damaged private key: named by line,
    // never shown.
    std::fs::write(&key_file, format!("{}\n", recipients.keys()[0])).unwrap();
    let error = Identities::read_file(&key_file).unwrap_err().to_string();
    assert!(
        error.contains("line 1 of") && error.contains("public key"),
        "{error}"
    );
    let mut damaged = secret.expose_secret().to_owned();
    damaged.pop();
    std::fs::write(&key_file, format!("{damaged}\n")).unwrap();
    let error = Identities::read_file(&key_file).unwrap_err().to_string();
    assert!(!error.contains(&damaged[..20]), "the key is shown: {error}");
    let error = Identities::read_file(&dir.path().join("missing.txt"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot read the identity file"), "{error}");
}

#[test]
fn armored_input_is_named() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let error = runtime
        .block_on(decrypt(
            Box::new(std::io::Cursor::new(
                b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n".to_vec(),
            )),
            &Location::Stdio,
            None,
        ))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("ASCII-armored"), "{error}");
}
