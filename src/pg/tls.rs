//! The TLS client of a connection, as libpq's `sslmode` asks: encryption without checks
//! (`prefer`, `require`), a chain to a trusted root (`verify-ca`, or `require` with a root
//! certificate), and the host name too (`verify-full`).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

/// What the client checks of the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// Nothing: encryption only.
    None,
    /// A chain to a trusted root.
    Chain,
    /// A chain to a trusted root, and the host name.
    ChainAndName,
}

/// The rustls client for `checks`, trusting the certificates in `root_cert` (PEM) or else the
/// system's store. The error is a sentence about what is wrong.
pub fn client_config(checks: Checks, root_cert: Option<&Path>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous();
    if checks == Checks::None {
        return Ok(builder
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    let mut given = Vec::new();
    match root_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
                given.push(cert);
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("no trusted root certificate: set sslrootcert".to_owned());
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(builder
        .with_custom_certificate_verifier(Arc::new(Verification {
            webpki,
            given,
            check_name: checks == Checks::ChainAndName,
        }))
        .with_no_client_auth())
}

/// `sslmode=require`/`prefer`: encryption without certificate checks, as libpq does.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` and `verify-full`: webpki's chain check (and, for `verify-full`, its host-name
/// check), plus what libpq (OpenSSL) accepts and webpki does not: a server certificate that is
/// itself one of the certificates of `sslrootcert` (a self-signed certificate), even when it is
/// marked as a CA, as `openssl req -x509` makes them.
#[derive(Debug)]
struct Verification {
    webpki: Arc<WebPkiServerVerifier>,
    /// The certificates of `sslrootcert` (empty for the system's store).
    given: Vec<CertificateDer<'static>>,
    /// `verify-full`.
    check_name: bool,
}

impl ServerCertVerifier for Verification {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let checked = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match checked {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            // webpki checks the validity period before the CA flag, so this certificate is
            // current; being one of the given roots, it is trusted as it is.
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(other)))
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) && self
                    .given
                    .iter()
                    .any(|root| root.as_ref() == end_entity.as_ref()) =>
            {
                if self.check_name {
                    let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                    rustls::client::verify_server_name(&parsed, server_name)?;
                }
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The certificate problem behind a failed handshake, in words, when `error`'s chain holds one
/// (rustls shows most of them by their Rust names, e.g. `UnknownIssuer`).
pub fn certificate_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(error);
    while let Some(error) = source {
        let found = error.downcast_ref::<rustls::Error>().or_else(|| {
            error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(problem)) = found {
            return Some(describe(problem));
        }
        source = error.source();
    }
    None
}

/// A certificate problem as a sentence about the server's certificate.
fn describe(problem: &CertificateError) -> String {
    let words = match problem {
        CertificateError::UnknownIssuer => {
            "is not signed by a trusted root certificate (check sslrootcert)"
        }
        CertificateError::Other(other)
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            "is a CA certificate, not a server's (to trust a self-signed certificate, give that \
             certificate itself as sslrootcert)"
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "has expired",
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "is not valid yet"
        }
        CertificateError::NotValidForName => "does not name the host connected to",
        CertificateError::NotValidForNameContext { .. } => {
            return format!("the server's certificate is not valid: {problem}");
        }
        CertificateError::BadSignature => "has a signature that does not verify",
        CertificateError::BadEncoding => "cannot be read (bad encoding)",
        CertificateError::Revoked => "has been revoked",
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "is not meant for a server (extended key usage)"
        }
        CertificateError::UnhandledCriticalExtension => {
            "has a critical extension this client does not know"
        }
        _ => "was refused",
    };
    format!("the server's certificate {words}")
}
