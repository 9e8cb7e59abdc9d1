//! The TLS client port (`secureClientPort`): the acceptor built from ZooKeeper's `ssl.*`
//! keys, the accept loop, and the `x509` identity of a verified client certificate.
//!
//! Twin of ZooKeeper's `X509Util`/`PEMFileLoader` (for `ssl.keyStore.type=PEM`), the TLS half
//! of `NettyServerCnxnFactory`, and `X509AuthenticationProvider`:
//!
//! - `ssl.keyStore.location` is one PEM file holding the server's private key and its
//!   certificate chain (leaf first), as ZooKeeper's `PemReader.loadKeyStore` reads it.
//! - `ssl.trustStore.location` is a PEM file of CA certificates; client certificates must
//!   chain to one of them. X.509 v1 client certificates, which webpki refuses and Java
//!   accepts, are verified by [`crate::tls_v1::V1Tolerant`].
//! - `ssl.clientAuth`: `need` (ZooKeeper's default) requires a verified client certificate,
//!   `want` verifies one when the client offers it, `none` does not ask for one.
//! - A verified client certificate adds `x509:<subject DN>` to the connection's ids, the DN
//!   in RFC 2253 form as Java's `X500Principal.getName()` prints it.
//!
//! After the handshake the TLS stream is served exactly like a plain connection
//! ([`crate::connection::serve_with_auth`]). A failed or slow handshake closes only that
//! connection.
//!
//! Deviations: encrypted PEM keys (`ssl.keyStore.password` with an `ENCRYPTED PRIVATE KEY`)
//! are refused at start-up with a clear error, because rustls reads only plain PKCS#8, PKCS#1
//! and SEC1 keys; without a trust store, `need`/`want` are refused at start-up where
//! ZooKeeper would fall back to the JVM's default CA list; the trust store's password is not
//! needed for PEM and is ignored; the key and trust stores are read once at start (no reload).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::tls_v1::V1Tolerant;
use warren_proto::Id;

use crate::config::SslConfig;
use crate::connection::serve_with_auth;
use crate::server::ServerCtx;

/// Why the TLS port cannot be set up. Each variant names the file or key at fault.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A key or trust store file could not be read.
    #[error("cannot read {key} {}: {source}", path.display())]
    Read {
        /// The `ssl.*` key that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable, or something malformed.
    #[error("{key} {}: {reason}", path.display())]
    Pem {
        /// The `ssl.*` key that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A required key is not set.
    #[error("{0} must be set for the secure client port")]
    Missing(&'static str),
    /// rustls refused the material (for example a key that does not match the certificate).
    #[error("TLS setup: {0}")]
    Rustls(String),
}

/// How the server asks for client certificates (`ssl.clientAuth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// A verified client certificate is required (ZooKeeper's default).
    Need,
    /// A client certificate is verified when offered, and not required.
    Want,
    /// No client certificate is requested.
    None,
}

impl ClientAuth {
    /// From `ssl.clientAuth` as the config stores it (lower case); unset means `need`.
    pub fn from_config(value: Option<&str>) -> ClientAuth {
        match value {
            Some("want") => ClientAuth::Want,
            Some("none") => ClientAuth::None,
            _ => ClientAuth::Need,
        }
    }
}

/// Builds the acceptor for the secure client port from the `ssl.*` settings.
pub fn acceptor(ssl: &SslConfig) -> Result<TlsAcceptor, TlsError> {
    const KEY_STORE: &str = "ssl.keyStore.location";
    const TRUST_STORE: &str = "ssl.trustStore.location";
    let key_path = ssl
        .key_store_location
        .as_deref()
        .ok_or(TlsError::Missing(KEY_STORE))?;
    let (chain, key) = load_key_store(KEY_STORE, key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_auth = ClientAuth::from_config(ssl.client_auth.as_deref());
    let verifier: Arc<dyn ClientCertVerifier> = match client_auth {
        ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::Need | ClientAuth::Want => {
            let trust_path = ssl
                .trust_store_location
                .as_deref()
                .ok_or(TlsError::Missing(TRUST_STORE))?;
            let roots = load_trust_store(TRUST_STORE, trust_path)?;
            let anchors = roots.roots.clone();
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if client_auth == ClientAuth::Want {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            let webpki = builder
                .build()
                .map_err(|e| TlsError::Rustls(format!("{TRUST_STORE}: {e}")))?;
            Arc::new(V1Tolerant::new(
                webpki,
                anchors,
                provider.signature_verification_algorithms,
            ))
        }
    };
    // The certified key is built directly rather than with `with_single_cert`, which parses
    // the leaf with webpki to match it to the key and so refuses X.509 v1 certificates. Java
    // (and so ZooKeeper) serves those, and kazoo's own test harness makes one; a server
    // never verifies its own certificate, its clients do.
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Rustls(format!("{KEY_STORE} {}: {e}", key_path.display())))?;
    let certified = CertifiedKey::new(chain, signing_key);
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(key: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Pem {
        key,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_certs(
    key: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(key, path, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error(key, path, "no CERTIFICATE found"));
    }
    Ok(certs)
}

/// The key store: a private key and the certificate chain, in one PEM file.
fn load_key_store(
    key: &'static str,
    path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let pem = read_file(key, path)?;
    let certs = read_certs(key, path, &pem)?;
    if pem
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
    {
        return Err(pem_error(
            key,
            path,
            "encrypted private keys are not supported; store the key unencrypted",
        ));
    }
    let private_key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        pem_error(
            key,
            path,
            format!("no usable PRIVATE KEY (PKCS#8, RSA or EC): {e}"),
        )
    })?;
    Ok((certs, private_key))
}

/// The trust store: CA certificates in one PEM file.
fn load_trust_store(key: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = read_file(key, path)?;
    let mut roots = RootCertStore::empty();
    for cert in read_certs(key, path, &pem)? {
        roots
            .add(cert)
            .map_err(|e| pem_error(key, path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// Accepts TLS connections until `stop`: each handshake runs in its own task, bounded by
/// the handshake timeout, and a successful one is served like a plain connection with the
/// client certificate's `x509` id added.
pub async fn accept_loop(
    ctx: Arc<ServerCtx>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handshake(ctx.clone(), acceptor.clone(), stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    warn!(error = %e, "secure accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn handshake(
    ctx: Arc<ServerCtx>,
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let limit = Duration::from_millis(ctx.cfg.limits.handshake_timeout_ms.into());
    let tls = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let ids = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| subject_dn(leaf.as_ref()))
        .map(|dn| vec![Id::new("x509", dn)])
        .unwrap_or_default();
    serve_with_auth(ctx, tls, peer, ids).await;
}

// ---------------------------------------------------------------------------------------
// The subject DN of a certificate, in Java's `X500Principal.getName()` (RFC 2253) form.
//
// A few dozen lines of DER walking instead of an X.509 crate: only the subject `Name` is
// needed, and rustls has already verified the certificate.

/// The subject of a DER certificate as RFC 2253 text (`CN=client,O=warren`), or `None` if
/// the certificate does not parse.
pub fn subject_dn(cert: &[u8]) -> Option<String> {
    let (_, certificate, _) = der(cert)?;
    let (_, mut tbs, _) = der(certificate)?;
    let (tag, _, rest) = der(tbs)?;
    if tag == 0xA0 {
        tbs = rest; // the explicit [0] version
    }
    // serialNumber, signature, issuer, validity, then the subject.
    for _ in 0..4 {
        tbs = der(tbs)?.2;
    }
    let (tag, name, _) = der(tbs)?;
    (tag == 0x30).then(|| format_name(name)).flatten()
}

/// One DER element: its tag, its contents, and what follows it (definite lengths only).
pub(crate) fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// `Name ::= SEQUENCE OF SET OF AttributeTypeAndValue`, printed last RDN first.
fn format_name(mut name: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (_, mut set, rest) = der(name)?;
        name = rest;
        let mut avas = Vec::new();
        while !set.is_empty() {
            let (_, ava, rest) = der(set)?;
            set = rest;
            avas.push(format_ava(ava)?);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn format_ava(ava: &[u8]) -> Option<String> {
    let (tag, oid, rest) = der(ava)?;
    if tag != 0x06 {
        return None;
    }
    let (vtag, value, _) = der(rest)?;
    let whole_value = &rest[..rest.len() - der(rest)?.2.len()];
    let text = match (keyword(oid), decode_string(vtag, value)) {
        (Some(k), Some(s)) => format!("{k}={}", escape_rfc2253(&s)),
        _ => format!("{}=#{}", oid_text(oid)?, hex::encode(whole_value)),
    };
    Some(text)
}

/// The keywords Java prints in RFC 2253 form; every other type is printed as its OID.
fn keyword(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0A] => "O",
        [0x55, 0x04, 0x0B] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

fn oid_text(oid: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    let (&first, rest) = arcs.split_first()?;
    let (a, b) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{a}.{b}");
    for arc in rest {
        out.push_str(&format!(".{arc}"));
    }
    Some(out)
}

/// The directory string types; anything else is printed as hex, as Java does.
fn decode_string(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String
        0x0C | 0x13 | 0x16 => String::from_utf8(value.to_vec()).ok(),
        // TeletexString, read as Latin-1 as Java does
        0x14 => Some(value.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE
        0x1E => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString: UTF-32BE
        0x1C => value
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

/// RFC 2253 escaping as Java's `AVA.toRFC2253String`: the special characters anywhere, a
/// leading `#` or space and a trailing space.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_java() {
        assert_eq!(escape_rfc2253("a,b"), "a\\,b");
        assert_eq!(escape_rfc2253(" x "), "\\ x\\ ");
        assert_eq!(escape_rfc2253("plain name"), "plain name");
    }

    #[test]
    fn oids_print_dotted() {
        // 1.2.840.113549.1.9.1 (emailAddress)
        let oid = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01];
        assert_eq!(oid_text(&oid).unwrap(), "1.2.840.113549.1.9.1");
    }

    #[test]
    fn client_auth_defaults_to_need() {
        assert_eq!(ClientAuth::from_config(None), ClientAuth::Need);
        assert_eq!(ClientAuth::from_config(Some("want")), ClientAuth::Want);
        assert_eq!(ClientAuth::from_config(Some("none")), ClientAuth::None);
    }

    #[test]
    fn missing_key_store_names_the_key_and_file() {
        let ssl = SslConfig {
            key_store_location: Some("/nonexistent/keystore.pem".into()),
            ..SslConfig::default()
        };
        let err = acceptor(&ssl).err().expect("fails").to_string();
        assert!(err.contains("ssl.keyStore.location"), "{err}");
        assert!(err.contains("/nonexistent/keystore.pem"), "{err}");
        let err = acceptor(&SslConfig::default()).err().expect("fails");
        assert!(matches!(err, TlsError::Missing("ssl.keyStore.location")));
    }
}
