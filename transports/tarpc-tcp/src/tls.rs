//! Certificates made from node keys, and a verifier that pins them.
//!
//! A node's fingerprint is its node id: the base32 SHA-256 of its raw
//! Ed25519 public key. The certificate is only a wrapper that TLS needs
//! around that key; the verifier reads the key out of it, and the handshake
//! signature is checked with that same key. So an address names a key, the
//! key names a node id, and whoever completes the handshake holds it.

use std::path::Path;
use std::sync::Arc;

use tahoe_core::protocol::identity::{NodeKey, node_id_of, write_private};
use tahoe_core::{Error, Result};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime,
};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

/// Where the certificate is kept.
const CERT_FILE: &str = "private/tls.crt";

/// How an Ed25519 SubjectPublicKeyInfo starts (RFC 8410): SEQUENCE,
/// AlgorithmIdentifier id-Ed25519 with no parameters, BIT STRING of 33
/// bytes (no unused bits, then the 32-byte key).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The fingerprint a certificate answers to: the node id of the Ed25519
/// key it carries. Certificates with any other kind of key have none.
pub fn fingerprint_of(cert_der: &[u8]) -> Result<String> {
    let der = CertificateDer::from(cert_der);
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| Error::permission_denied(format!("unreadable peer certificate: {e:?}")))?;
    let spki = cert.subject_public_key_info();
    let spki: &[u8] = spki.as_ref();
    match spki.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(key) if key.len() == 32 => Ok(node_id_of(key)),
        _ => Err(Error::permission_denied(
            "the peer's certificate does not carry an Ed25519 key",
        )),
    }
}

/// A node's TLS credentials.
pub struct Identity {
    /// The certificate (DER).
    pub cert: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
    /// The certificate's fingerprint.
    pub fingerprint: String,
}

/// ring's suites with TLS 1.3's AES-128-GCM first, where ring lists
/// AES-256-GCM first. Decision: every byte of every share crosses TLS on
/// both ends, and AES-128 does 10 rounds per block where AES-256 does 14;
/// 128-bit keys are TLS 1.3's mandatory suite and well beyond reach of
/// brute force, and the peers pin each other's keys, so nothing else
/// changes. Both ends of a connection are ours: both prefer it.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(p)
}

impl Identity {
    /// The identity of the node in `basedir`: its key, and the certificate
    /// made from it (created and saved on first use).
    pub fn load_or_create(basedir: &Path) -> Result<Self> {
        let key = NodeKey::load(basedir)?;
        let cert_path = basedir.join(CERT_FILE);
        let cert = match std::fs::read(&cert_path) {
            Ok(der) => der,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let der = make_certificate(&key)?;
                write_private(&cert_path, &der)?;
                der
            }
            Err(e) => return Err(Error::from(e).context(cert_path.display())),
        };
        Self::from_parts(cert, &key)
    }

    /// An identity from a fresh key (tests).
    pub fn ephemeral() -> Result<Self> {
        let key = NodeKey::generate()?;
        let cert = make_certificate(&key)?;
        Self::from_parts(cert, &key)
    }

    fn from_parts(cert: Vec<u8>, key: &NodeKey) -> Result<Self> {
        // A certificate kept from before must carry this node's key.
        let fingerprint = fingerprint_of(&cert)?;
        if fingerprint != key.node_id() {
            return Err(Error::corrupt(format!(
                "{CERT_FILE} carries another key than private/node.key; remove it to make a new one"
            )));
        }
        Ok(Identity {
            fingerprint,
            cert: CertificateDer::from(cert),
            key_pkcs8: key.pkcs8_der().to_vec(),
        })
    }

    /// A TLS server configuration presenting this identity.
    pub fn server_config(&self) -> Result<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()));
        rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::internal(format!("tls: {e}")))?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .map_err(|e| Error::internal(format!("tls certificate: {e}")))
    }
}

fn make_certificate(key: &NodeKey) -> Result<Vec<u8>> {
    let der = PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec());
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
        .map_err(|e| Error::internal(format!("certificate key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(vec!["tahoe.invalid".to_string()])
        .map_err(|e| Error::internal(format!("certificate: {e}")))?;
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(9999, 12, 31);
    let cert = params
        .self_signed(&pair)
        .map_err(|e| Error::internal(format!("certificate: {e}")))?;
    Ok(cert.der().to_vec())
}

/// Accepts exactly the certificate whose fingerprint is pinned.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if fingerprint_of(end_entity).is_ok_and(|f| f == self.fingerprint) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the peer's certificate does not match the fingerprint in its address".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not accepted".into()))
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client configuration that accepts only `fingerprint`.
pub fn client_config(fingerprint: &str) -> Result<rustls::ClientConfig> {
    let provider = provider();
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::internal(format!("tls: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                fingerprint: fingerprint.to_string(),
                provider,
            }))
            .with_no_client_auth(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Two of our nodes, handshaking in memory, settle on AES-128-GCM.
    #[test]
    fn our_two_ends_agree_on_aes_128_gcm() {
        let id = Identity::ephemeral().unwrap();
        let mut s = rustls::ServerConnection::new(Arc::new(id.server_config().unwrap())).unwrap();
        let mut c = rustls::ClientConnection::new(
            Arc::new(client_config(&id.fingerprint).unwrap()),
            ServerName::try_from("tahoe.invalid").unwrap(),
        )
        .unwrap();
        for _ in 0..10 {
            if !c.is_handshaking() && !s.is_handshaking() {
                break;
            }
            let mut wire = Vec::new();
            c.write_tls(&mut wire).unwrap();
            s.read_tls(&mut wire.as_slice()).unwrap();
            s.process_new_packets().unwrap();
            let mut wire = Vec::new();
            s.write_tls(&mut wire).unwrap();
            c.read_tls(&mut wire.as_slice()).unwrap();
            c.process_new_packets().unwrap();
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
        for suite in [c.negotiated_cipher_suite(), s.negotiated_cipher_suite()] {
            assert_eq!(
                suite.unwrap().suite(),
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
            );
        }
    }
}
