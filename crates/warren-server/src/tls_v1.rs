//! X.509 **v1** client certificates on the secure client port.
//!
//! rustls verifies certificates with webpki, which accepts only v3 end-entity certificates.
//! Java's TLS stack (and so ZooKeeper) also accepts v1 certificates, which have no
//! extensions; kazoo's own test harness signs its client certificate as v1, and older
//! deployments made with `openssl x509 -req` without `-extfile` have them too.
//! [`V1Tolerant`] wraps rustls' verifier: a v3 certificate goes to it unchanged; a v1
//! certificate is accepted when it is within its validity period and signed directly by a
//! certificate of the trust store (a v1 certificate cannot be a CA, so there is no chain to
//! walk), and the handshake signature is checked against its public key.
//!
//! Written by hand because no maintained crate verifies v1 certificates for rustls; the
//! signature checks themselves are rustls' own algorithms (ring), chosen by the same
//! algorithm identifiers webpki matches.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};

use crate::tls::der;

/// rustls' client verifier, extended to X.509 v1 client certificates (module doc).
#[derive(Debug)]
pub struct V1Tolerant {
    inner: Arc<dyn ClientCertVerifier>,
    anchors: Vec<TrustAnchor<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl V1Tolerant {
    /// Wraps `inner`, which verifies against `anchors` with `algorithms`.
    pub fn new(
        inner: Arc<dyn ClientCertVerifier>,
        anchors: Vec<TrustAnchor<'static>>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> V1Tolerant {
        V1Tolerant {
            inner,
            anchors,
            algorithms,
        }
    }

    fn verify_v1(&self, cert: &Parsed<'_>, now: UnixTime) -> Result<ClientCertVerified, Error> {
        let now = now.as_secs();
        if now < cert.not_before {
            return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
        }
        if now > cert.not_after {
            return Err(Error::InvalidCertificate(CertificateError::Expired));
        }
        if cert.inner_signature_alg != cert.signature_alg {
            return Err(Error::InvalidCertificate(CertificateError::BadEncoding));
        }
        let mut issuer_found = false;
        for anchor in &self.anchors {
            if anchor.subject.as_ref() != cert.issuer {
                continue;
            }
            issuer_found = true;
            let Some((key_alg, key)) = spki_parts(anchor.subject_public_key_info.as_ref()) else {
                continue;
            };
            let signed = self.algorithms.all.iter().any(|alg| {
                alg.signature_alg_id().as_ref() == cert.signature_alg
                    && alg.public_key_alg_id().as_ref() == key_alg
                    && alg.verify_signature(key, cert.tbs, cert.signature).is_ok()
            });
            if signed {
                return Ok(ClientCertVerified::assertion());
            }
        }
        Err(Error::InvalidCertificate(if issuer_found {
            CertificateError::BadSignature
        } else {
            CertificateError::UnknownIssuer
        }))
    }

    /// Checks a handshake signature made with a v1 certificate's key: the candidates are
    /// rustls' algorithms for the scheme (TLS 1.3 allows only the first).
    fn verify_handshake(
        &self,
        cert: &Parsed<'_>,
        message: &[u8],
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, Error> {
        let candidates: &[&dyn SignatureVerificationAlgorithm] = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .unwrap_or(&[]);
        let candidates = if tls13 {
            &candidates[..candidates.len().min(1)]
        } else {
            candidates
        };
        let ok = candidates.iter().any(|alg| {
            alg.public_key_alg_id().as_ref() == cert.key_alg
                && alg
                    .verify_signature(cert.public_key, message, dss.signature())
                    .is_ok()
        });
        if ok {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(Error::InvalidCertificate(CertificateError::BadSignature))
        }
    }
}

impl ClientCertVerifier for V1Tolerant {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match Parsed::v1(end_entity.as_ref()) {
            Some(cert) => self.verify_v1(&cert, now),
            None => self
                .inner
                .verify_client_cert(end_entity, intermediates, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        match Parsed::v1(cert.as_ref()) {
            Some(parsed) => self.verify_handshake(&parsed, message, dss, false),
            None => self.inner.verify_tls12_signature(message, cert, dss),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        match Parsed::v1(cert.as_ref()) {
            Some(parsed) => self.verify_handshake(&parsed, message, dss, true),
            None => self.inner.verify_tls13_signature(message, cert, dss),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The parts of a v1 certificate that its verification reads (RFC 5280 §4.1).
struct Parsed<'a> {
    /// The whole `tbsCertificate` element: the signed bytes.
    tbs: &'a [u8],
    /// `signatureAlgorithm` outside the TBS, and `signature` inside it (must be equal).
    signature_alg: &'a [u8],
    inner_signature_alg: &'a [u8],
    /// `signatureValue` without its unused-bits byte.
    signature: &'a [u8],
    /// The issuer `Name`'s contents (as a trust anchor's `subject` holds them).
    issuer: &'a [u8],
    not_before: u64,
    not_after: u64,
    /// The subject key's algorithm identifier contents and its key bits.
    key_alg: &'a [u8],
    public_key: &'a [u8],
}

impl<'a> Parsed<'a> {
    /// Parses `cert` if it is a well-formed v1 certificate (no `[0]` version field), else
    /// `None` (v3 certificates, and anything malformed, are left to webpki).
    fn v1(cert: &'a [u8]) -> Option<Parsed<'a>> {
        let (SEQUENCE, body, []) = der(cert)? else {
            return None;
        };
        let (SEQUENCE, tbs_body, after_tbs) = der(body)? else {
            return None;
        };
        let tbs = &body[..body.len() - after_tbs.len()];
        let (SEQUENCE, signature_alg, rest) = der(after_tbs)? else {
            return None;
        };
        let (BIT_STRING, bits, []) = der(rest)? else {
            return None;
        };
        let (&0, signature) = bits.split_first()? else {
            return None;
        };
        // tbsCertificate: no explicit [0] version (that is v1), serialNumber, signature,
        // issuer, validity, subject, subjectPublicKeyInfo, and nothing after it (v1 has no
        // unique ids or extensions).
        let (INTEGER, _serial, rest) = der(tbs_body)? else {
            return None;
        };
        let (SEQUENCE, inner_signature_alg, rest) = der(rest)? else {
            return None;
        };
        let (SEQUENCE, issuer, rest) = der(rest)? else {
            return None;
        };
        let (SEQUENCE, validity, rest) = der(rest)? else {
            return None;
        };
        let (SEQUENCE, _subject, rest) = der(rest)? else {
            return None;
        };
        let (SEQUENCE, spki, []) = der(rest)? else {
            return None;
        };
        let (t1, not_before, rest) = der(validity)?;
        let (t2, not_after, []) = der(rest)? else {
            return None;
        };
        let (key_alg, public_key) = spki_parts(spki)?;
        Some(Parsed {
            tbs,
            signature_alg,
            inner_signature_alg,
            signature,
            issuer,
            not_before: asn1_time(t1, not_before)?,
            not_after: asn1_time(t2, not_after)?,
            key_alg,
            public_key,
        })
    }
}

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The contents of a `SubjectPublicKeyInfo` → (algorithm identifier contents, key bits).
fn spki_parts(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let (SEQUENCE, alg, rest) = der(spki)? else {
        return None;
    };
    let (BIT_STRING, bits, []) = der(rest)? else {
        return None;
    };
    let (&0, key) = bits.split_first()? else {
        return None;
    };
    Some((alg, key))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as
/// seconds since the Unix epoch.
fn asn1_time(tag: u8, text: &[u8]) -> Option<u64> {
    let digits = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let (month, day) = (digits(&rest[0..2])?, digits(&rest[2..4])?);
    let (hour, minute, second) = (
        digits(&rest[4..6])?,
        digits(&rest[6..8])?,
        digits(&rest[8..10])?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || year < 1970 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's days_from_civil).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

#[cfg(test)]
#[path = "tls_v1_test.rs"]
mod tests;
