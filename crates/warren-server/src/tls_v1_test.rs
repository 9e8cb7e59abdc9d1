use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    PublicKeyData, SigningKey,
};
use rustls::RootCertStore;
use rustls::client::ResolvesClientCert;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use super::*;

fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = contents.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(contents);
    out
}

/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2), rcgen's default key's signature algorithm.
const ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];

struct Ca {
    key: KeyPair,
    der: CertificateDer<'static>,
    params: CertificateParams,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    let der = params.self_signed(&key).unwrap().der().clone();
    Ca { key, der, params }
}

/// The issuer `Name` element of a (v3) certificate, tag and length included.
fn issuer_element(cert: &[u8]) -> Vec<u8> {
    let (_, body, _) = der(cert).unwrap();
    let (_, tbs, _) = der(body).unwrap();
    let mut rest = der(tbs).unwrap().2; // the [0] version
    for _ in 0..2 {
        rest = der(rest).unwrap().2; // serialNumber, signature
    }
    let (_, _, after) = der(rest).unwrap();
    rest[..rest.len() - after.len()].to_vec()
}

/// A v1 certificate (no version field, no extensions) for `key`, signed by `ca`, valid
/// from `not_before` to `not_after` (UTCTime text).
fn v1_cert(ca: &Ca, key: &KeyPair, not_before: &str, not_after: &str) -> Vec<u8> {
    let alg = tlv(SEQUENCE, ECDSA_SHA256);
    let validity = [
        tlv(UTC_TIME, not_before.as_bytes()),
        tlv(UTC_TIME, not_after.as_bytes()),
    ]
    .concat();
    let cn = [tlv(0x06, &[0x55, 0x04, 0x03]), tlv(0x0C, b"v1 client")].concat();
    let subject = tlv(SEQUENCE, &tlv(0x31, &tlv(SEQUENCE, &cn)));
    let tbs_body = [
        tlv(INTEGER, &[0x01]),
        alg.clone(),
        issuer_element(&ca.der),
        tlv(SEQUENCE, &validity),
        subject,
        key.subject_public_key_info(),
    ]
    .concat();
    let tbs = tlv(SEQUENCE, &tbs_body);
    let signature = ca.key.sign(&tbs).unwrap();
    let bits = [&[0u8][..], &signature].concat();
    tlv(SEQUENCE, &[tbs, alg, tlv(BIT_STRING, &bits)].concat())
}

fn verifier(ca: &Ca) -> V1Tolerant {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let anchors = roots.roots.clone();
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    V1Tolerant::new(inner, anchors, provider.signature_verification_algorithms)
}

fn at(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

const JAN_2026: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

#[test]
fn asn1_times_convert_to_unix_seconds() {
    assert_eq!(asn1_time(UTC_TIME, b"700101000000Z"), Some(0));
    assert_eq!(asn1_time(UTC_TIME, b"260101000000Z"), Some(JAN_2026));
    assert_eq!(
        asn1_time(GENERALIZED_TIME, b"20260101000000Z"),
        Some(JAN_2026)
    );
    assert_eq!(asn1_time(UTC_TIME, b"000229120000Z"), Some(951_825_600)); // a leap day
    assert_eq!(asn1_time(UTC_TIME, b"260101000000+0100"), None);
    assert_eq!(asn1_time(UTC_TIME, b"261301000000Z"), None);
    assert_eq!(asn1_time(GENERALIZED_TIME, b"260101000000Z"), None);
}

#[test]
fn a_v1_certificate_signed_by_a_trusted_ca_is_accepted_where_webpki_refuses_it() {
    let ca = ca("v1 test CA");
    let key = KeyPair::generate().unwrap();
    let cert = CertificateDer::from(v1_cert(&ca, &key, "250101000000Z", "491231235959Z"));
    let v = verifier(&ca);
    assert!(
        v.inner
            .verify_client_cert(&cert, &[], at(JAN_2026))
            .is_err()
    );
    assert!(v.verify_client_cert(&cert, &[], at(JAN_2026)).is_ok());
    assert_eq!(
        crate::tls::subject_dn(cert.as_ref()).as_deref(),
        Some("CN=v1 client")
    );
}

#[test]
fn a_v1_certificate_is_refused_outside_its_validity_tampered_or_from_another_ca() {
    let ca1 = ca("v1 test CA");
    let ca2 = ca("another CA");
    let key = KeyPair::generate().unwrap();
    let cert = v1_cert(&ca1, &key, "250101000000Z", "270101000000Z");
    let v = verifier(&ca1);
    let check =
        |bytes: &[u8], now| v.verify_client_cert(&CertificateDer::from(bytes.to_vec()), &[], now);
    assert!(check(&cert, at(JAN_2026)).is_ok());
    assert_eq!(
        check(&cert, at(JAN_2026 - 400 * 86_400)).unwrap_err(),
        Error::InvalidCertificate(CertificateError::NotValidYet)
    );
    assert_eq!(
        check(&cert, at(JAN_2026 + 400 * 86_400)).unwrap_err(),
        Error::InvalidCertificate(CertificateError::Expired)
    );
    // One byte of the subject's name changed: the CA's signature no longer matches.
    let pos = cert.windows(9).position(|w| w == b"v1 client").unwrap();
    let mut tampered = cert.clone();
    tampered[pos] = b'V';
    assert_eq!(
        check(&tampered, at(JAN_2026)).unwrap_err(),
        Error::InvalidCertificate(CertificateError::BadSignature)
    );
    // Signed by a CA the trust store does not hold.
    let foreign = v1_cert(&ca2, &key, "250101000000Z", "270101000000Z");
    assert_eq!(
        check(&foreign, at(JAN_2026)).unwrap_err(),
        Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
    // Garbage is left to webpki, which refuses it.
    assert!(check(b"\x30\x03\x02\x01\x01", at(JAN_2026)).is_err());
}

/// The client side of a handshake: presents `chain` with `key` whatever the server asks.
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// A full TLS handshake over an in-memory pipe with a v1 client certificate; returns what
/// the server saw (`Ok(subject DN)`) or the error.
fn handshake(
    tls12: bool,
    client_key: &KeyPair,
    client_cert: Vec<u8>,
    ca: &Ca,
) -> Result<String, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(verifier(ca)))
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let signing = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            client_key.serialize_der(),
        )))
        .unwrap();
    let certified = CertifiedKey::new(vec![CertificateDer::from(client_cert)], signing);
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Present(Arc::new(certified))));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
        let server = async move {
            let mut tls = acceptor.accept(a).await.map_err(|e| e.to_string())?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            Ok::<_, String>(crate::tls::subject_dn(leaf.as_ref()).unwrap())
        };
        let client = async move {
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector
                .connect(name, b)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"x").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            // Keep the client open until the server has read (or refused).
            let mut sink = [0u8; 1];
            let _ = tls.read(&mut sink).await;
            Ok::<_, String>(())
        };
        let (server, _client) = tokio::join!(server, async {
            tokio::time::timeout(Duration::from_secs(5), client).await
        });
        server
    })
}

#[test]
fn a_v1_client_certificate_completes_tls13_and_tls12_handshakes() {
    let ca = ca("v1 test CA");
    let key = KeyPair::generate().unwrap();
    let cert = v1_cert(&ca, &key, "250101000000Z", "491231235959Z");
    assert_eq!(
        handshake(false, &key, cert.clone(), &ca).as_deref(),
        Ok("CN=v1 client")
    );
    assert_eq!(
        handshake(true, &key, cert, &ca).as_deref(),
        Ok("CN=v1 client")
    );
    // The same certificate with another key: the handshake signature does not verify.
    let other = KeyPair::generate().unwrap();
    let cert = v1_cert(&ca, &key, "250101000000Z", "491231235959Z");
    assert!(handshake(false, &other, cert.clone(), &ca).is_err());
    assert!(handshake(true, &other, cert, &ca).is_err());
}
