//! The TLS client port and SASL DIGEST-MD5, over real sockets: certificates made here with
//! rcgen, a rustls client presenting (or not) a client certificate, and a small DIGEST-MD5
//! client written from RFC 2831 against a JAAS file.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{RawClient, read_frame, test_config};
use md5::{Digest as _, Md5};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use warren_proto::records::{
    ConnectRequest, ConnectResponse, CreateRequest, CreateResponse, GetDataRequest,
    GetDataResponse, GetSaslRequest, SetSaslResponse, WhoAmIResponse,
};
use warren_proto::request::{Request, encode_request};
use warren_proto::{Acl, ErrorCode, Id, Reader, Record, SessionId, Xid, Zxid, perms};
use warren_server::config::ServerConfig;
use warren_server::server::Server;

// ---------------------------------------------------------------------------------------
// A server with its secure port, on its own runtime.

struct SecureServer {
    addr: SocketAddr,
    secure_addr: Option<SocketAddr>,
    server: Option<Server>,
    rt: tokio::runtime::Runtime,
}

impl SecureServer {
    fn start(cfg: ServerConfig) -> SecureServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(Server::start(cfg)).expect("server starts");
        SecureServer {
            addr: server.local_addr(),
            secure_addr: server.secure_addr(),
            server: Some(server),
            rt,
        }
    }
}

impl Drop for SecureServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown(Duration::from_millis(200)));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Certificates: a CA, a server certificate for localhost, a client certificate.

struct Pki {
    ca_pem: String,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: String,
}

/// The client certificate's subject as Java's `X500Principal.getName()` prints it.
const CLIENT_DN: &str = "CN=warren client,O=warren";

fn issue(
    issuer: &Issuer<'_, KeyPair>,
    dn: &[(DnType, &str)],
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(names).unwrap();
    // rcgen starts every name with its own CN; start empty so the order is ours.
    params.distinguished_name = DistinguishedName::new();
    for (t, v) in dn {
        params.distinguished_name.push(t.clone(), *v);
    }
    params.extended_key_usages.push(usage);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes `keystore.pem` (server key + chain) and `truststore.pem` (the CA) into `dir`.
fn make_pki(dir: &Path) -> Pki {
    let mut ca = CertificateParams::new(Vec::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "warren test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let (server_pem, server_key) = issue(
        &issuer,
        &[(DnType::CommonName, "localhost")],
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    // O first, then CN: RFC 2253 prints the last RDN first.
    let (client_pem, client_key) = issue(
        &issuer,
        &[
            (DnType::OrganizationName, "warren"),
            (DnType::CommonName, "warren client"),
        ],
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    // ZooKeeper's PEM key store: the private key and the certificate chain in one file.
    std::fs::write(
        dir.join("keystore.pem"),
        format!("{server_key}{server_pem}{ca_pem}"),
    )
    .unwrap();
    std::fs::write(dir.join("truststore.pem"), &ca_pem).unwrap();
    std::fs::write(dir.join("client.pem"), &client_pem).unwrap();
    let client_chain = CertificateDer::pem_slice_iter(client_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    Pki {
        ca_pem,
        client_chain,
        client_key,
    }
}

fn tls_config(dir: &Path, client_auth: &str) -> ServerConfig {
    let keystore = dir.join("keystore.pem");
    let truststore = dir.join("truststore.pem");
    let mut cfg = test_config(
        &dir.join("data"),
        &[
            ("ssl.keyStore.location", keystore.to_str().unwrap()),
            ("ssl.keyStore.type", "PEM"),
            ("ssl.trustStore.location", truststore.to_str().unwrap()),
            ("ssl.trustStore.type", "PEM"),
            ("ssl.clientAuth", client_auth),
        ],
    );
    // `secureClientPort=0` in a file means "no TLS port"; tests ask the OS for a free one.
    cfg.secure_client_port = Some(0);
    cfg.secure_client_port_address = Some("127.0.0.1".into());
    cfg
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_connect(addr: SocketAddr, pki: &Pki, with_cert: bool) -> TlsStream {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        let key = PrivateKeyDer::from_pem_slice(pki.client_key.as_bytes()).unwrap();
        builder
            .with_client_auth_cert(pki.client_chain.clone(), key)
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

// ---------------------------------------------------------------------------------------
// A minimal client over any stream (the common RawClient speaks plain TCP only).

struct Client<S: Read + Write> {
    stream: S,
    next_xid: i32,
}

fn write_frame<S: Write>(s: &mut S, body: &[u8]) -> std::io::Result<()> {
    s.write_all(&(body.len() as i32).to_be_bytes())?;
    s.write_all(body)?;
    s.flush()
}

fn read_frame_io<S: Read>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

impl<S: Read + Write> Client<S> {
    /// Handshakes a new session; the error is whatever stopped it (a refused TLS peer).
    fn connect(mut stream: S) -> std::io::Result<Client<S>> {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: Zxid(0),
            timeout_ms: 10_000,
            session_id: SessionId(0),
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        write_frame(&mut stream, &req.to_bytes())?;
        let resp = ConnectResponse::from_bytes(&read_frame_io(&mut stream)?).expect("decodes");
        assert_ne!(resp.timeout_ms, 0, "session granted");
        Ok(Client {
            stream,
            next_xid: 1,
        })
    }

    fn call(&mut self, req: &Request) -> (ErrorCode, Vec<u8>) {
        let xid = Xid(self.next_xid);
        self.next_xid += 1;
        self.stream.write_all(&encode_request(xid, req)).unwrap();
        self.stream.flush().unwrap();
        let body = read_frame_io(&mut self.stream).expect("a reply");
        let mut r = Reader::new(&body);
        let header = warren_proto::records::ReplyHeader::decode(&mut r).unwrap();
        assert_eq!(header.xid, xid, "the reply echoes the xid");
        (header.err, body[r.position()..].to_vec())
    }
}

fn create(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(b"v".to_vec()),
        acl,
        flags: 0,
    })
}

fn get(path: &str) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch: false,
    })
}

fn ids(who: WhoAmIResponse) -> Vec<(String, String)> {
    who.client_info
        .into_iter()
        .map(|c| (c.auth_scheme, c.user))
        .collect()
}

#[test]
fn tls_port_with_client_certificates_beside_the_plain_port() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let server = SecureServer::start(tls_config(dir.path(), "need"));
    let secure = server.secure_addr.expect("secure port bound");
    assert_ne!(secure, server.addr);

    // Phase 1: a client with a certificate signed by the trusted CA handshakes, creates and
    // reads back over TLS, and carries the x509 identity of its certificate's subject.
    let mut c = Client::connect(tls_connect(secure, &pki, true)).expect("TLS session");
    let only_client = vec![Acl {
        perms: perms::ALL,
        id: Id::new("x509", CLIENT_DN),
    }];
    let (err, body) = c.call(&create("/tls", only_client));
    assert_eq!(err, ErrorCode::Ok);
    assert_eq!(CreateResponse::from_bytes(&body).unwrap().path, "/tls");
    let (err, body) = c.call(&get("/tls"));
    assert_eq!(err, ErrorCode::Ok);
    assert_eq!(
        GetDataResponse::from_bytes(&body).unwrap().data,
        Some(b"v".to_vec())
    );
    let (_, body) = c.call(&Request::WhoAmI);
    let who = ids(WhoAmIResponse::from_bytes(&body).unwrap());
    assert!(who.contains(&("x509".into(), CLIENT_DN.into())), "{who:?}");

    // Phase 2: the plain port works beside it, and a plain client lacks the x509 identity.
    let mut plain = RawClient::connect(server.addr);
    assert_eq!(plain.call(&get("/tls")).0, ErrorCode::NoAuth);
    let (err, _) = plain.call(&create("/plain", Acl::open_unsafe()));
    assert_eq!(err, ErrorCode::Ok);
    assert_eq!(c.call(&get("/plain")).0, ErrorCode::Ok);

    // Phase 3: with clientAuth=need, a client without a certificate is refused (the server
    // aborts the handshake; with TLS 1.3 the client notices on its first read), and the
    // server keeps serving the others.
    let refused = Client::connect(tls_connect(secure, &pki, false));
    assert!(
        refused.is_err(),
        "a client without a certificate is refused"
    );
    assert_eq!(c.call(&get("/tls")).0, ErrorCode::Ok);

    // Phase 4: a peer that is not speaking TLS at all is closed without harming the port.
    let mut junk = TcpStream::connect(secure).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    junk.write_all(b"ruok").unwrap();
    let mut answer = Vec::new();
    let _ = junk.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"imok"),
        "no plain text on the TLS port"
    );
    let mut again = Client::connect(tls_connect(secure, &pki, true)).expect("TLS session");
    assert_eq!(again.call(&get("/plain")).0, ErrorCode::Ok);
}

#[test]
fn tls_client_auth_want_and_none_accept_clients_without_certificates() {
    for mode in ["want", "none"] {
        let dir = tempfile::tempdir().unwrap();
        let pki = make_pki(dir.path());
        let server = SecureServer::start(tls_config(dir.path(), mode));
        let secure = server.secure_addr.unwrap();

        // Without a certificate: served, with no x509 identity.
        let mut c = Client::connect(tls_connect(secure, &pki, false)).expect(mode);
        let (_, body) = c.call(&Request::WhoAmI);
        let who = ids(WhoAmIResponse::from_bytes(&body).unwrap());
        assert!(who.iter().all(|(s, _)| s != "x509"), "{mode}: {who:?}");

        // With one: `want` verifies it and adds the identity; `none` never asks for it.
        let mut c = Client::connect(tls_connect(secure, &pki, true)).expect(mode);
        let (_, body) = c.call(&Request::WhoAmI);
        let who = ids(WhoAmIResponse::from_bytes(&body).unwrap());
        let has_x509 = who.contains(&("x509".into(), CLIENT_DN.into()));
        assert_eq!(has_x509, mode == "want", "{mode}: {who:?}");
    }
}

#[test]
fn unreadable_tls_material_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    std::fs::write(dir.path().join("truststore.pem"), "not a certificate\n").unwrap();
    let cfg = tls_config(dir.path(), "need");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(Server::start(cfg)).err().expect("start fails");
    let text = err.to_string();
    assert!(text.contains("ssl.trustStore.location"), "{text}");
    assert!(text.contains("truststore.pem"), "{text}");
}

// ---------------------------------------------------------------------------------------
// SASL DIGEST-MD5.

const JAAS: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret";
};
"#;

fn sasl_config(dir: &Path) -> ServerConfig {
    let jaas = dir.join("jaas.conf");
    std::fs::write(&jaas, JAAS).unwrap();
    test_config(
        &dir.join("data"),
        &[("java.security.auth.login.config", jaas.to_str().unwrap())],
    )
}

fn directives(token: &[u8]) -> BTreeMap<String, String> {
    let text = std::str::from_utf8(token).unwrap();
    let mut out = BTreeMap::new();
    for part in text.split(',') {
        let (k, v) = part.split_once('=').unwrap();
        out.insert(k.to_owned(), v.trim_matches('"').to_owned());
    }
    out
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// A DIGEST-MD5 client step (RFC 2831 §2.1.2, md5-sess, qop=auth): the response to
/// `challenge`, and the `rspauth` the server must send back.
fn digest_response(challenge: &[u8], user: &str, password: &str) -> (Vec<u8>, String) {
    let d = directives(challenge);
    let (realm, nonce) = (&d["realm"], &d["nonce"]);
    let (cnonce, nc, uri) = ("Y2xpZW50bm9uY2U", "00000001", "zookeeper/zk-sasl-md5");
    let mut a1 = Md5::digest(format!("{user}:{realm}:{password}")).to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    let ha1 = md5_hex(&a1);
    let kd = |a2: &str| {
        let ha2 = md5_hex(a2.as_bytes());
        md5_hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes())
    };
    let response = format!(
        "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc={nc},\
         cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={},qop=auth",
        kd(&format!("AUTHENTICATE:{uri}"))
    );
    (response.into_bytes(), kd(&format!(":{uri}")))
}

fn sasl(token: &[u8]) -> Request {
    Request::Sasl(GetSaslRequest {
        token: token.to_vec(),
    })
}

#[test]
fn sasl_digest_md5_with_jaas_users_and_sasl_acls() {
    let dir = tempfile::tempdir().unwrap();
    let server = SecureServer::start(sasl_config(dir.path()));

    // Phase 1: bob's exchange as ZooKeeper's clients run it: an empty first token gets the
    // challenge, the digest-response gets rspauth, and the connection becomes sasl:bob.
    let mut bob = RawClient::connect(server.addr);
    let (err, body) = bob.call(&sasl(b""));
    assert_eq!(err, ErrorCode::Ok);
    let challenge = SetSaslResponse::from_bytes(&body).unwrap().token;
    let d = directives(&challenge);
    assert_eq!(d["realm"], "zk-sasl-md5");
    assert_eq!(d["algorithm"], "md5-sess");
    assert_eq!(d["charset"], "utf-8");
    let (response, rspauth) = digest_response(&challenge, "bob", "bobsecret");
    let (err, body) = bob.call(&sasl(&response));
    assert_eq!(err, ErrorCode::Ok);
    let last = SetSaslResponse::from_bytes(&body).unwrap().token;
    assert_eq!(last, format!("rspauth={rspauth}").into_bytes());
    let (_, body) = bob.call(&Request::WhoAmI);
    let who = ids(WhoAmIResponse::from_bytes(&body).unwrap());
    assert!(who.contains(&("sasl".into(), "bob".into())), "{who:?}");

    // Phase 2: a node only sasl:bob may touch is readable by bob, not by an anonymous
    // client.
    let bob_only = vec![Acl {
        perms: perms::ALL,
        id: Id::new("sasl", "bob"),
    }];
    assert_eq!(bob.call(&create("/bob", bob_only)).0, ErrorCode::Ok);
    let (err, body) = bob.call(&get("/bob"));
    assert_eq!(err, ErrorCode::Ok);
    assert_eq!(
        GetDataResponse::from_bytes(&body).unwrap().data,
        Some(b"v".to_vec())
    );
    let mut anonymous = RawClient::connect(server.addr);
    assert_eq!(anonymous.call(&get("/bob")).0, ErrorCode::NoAuth);

    // Phase 3: a wrong password gets AuthFailed and the connection closes; the server goes
    // on serving others.
    let mut mallory = RawClient::connect(server.addr);
    let (_, body) = mallory.call(&sasl(b""));
    let challenge = SetSaslResponse::from_bytes(&body).unwrap().token;
    let (response, _) = digest_response(&challenge, "bob", "guess");
    assert_eq!(mallory.call(&sasl(&response)).0, ErrorCode::AuthFailed);
    assert!(
        mallory.is_closed(),
        "the connection closes after AuthFailed"
    );
    assert_eq!(bob.call(&get("/bob")).0, ErrorCode::Ok);

    // Phase 4: an unknown user fails the same way.
    let mut eve = RawClient::connect(server.addr);
    let (_, body) = eve.call(&sasl(b""));
    let challenge = SetSaslResponse::from_bytes(&body).unwrap().token;
    let (response, _) = digest_response(&challenge, "eve", "bobsecret");
    assert_eq!(eve.call(&sasl(&response)).0, ErrorCode::AuthFailed);
    assert!(eve.is_closed());
}

#[test]
fn sasl_without_a_jaas_file_fails_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = SecureServer::start(test_config(dir.path(), &[]));
    let mut c = RawClient::connect(server.addr);
    assert_eq!(c.call(&sasl(b"")).0, ErrorCode::AuthFailed);
    assert!(c.is_closed());
}

#[test]
fn sasl_over_tls() {
    // Phase 1: both layers together: SASL on the TLS port adds sasl:bob next to x509.
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let mut cfg = tls_config(dir.path(), "need");
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(&jaas, JAAS).unwrap();
    cfg.jaas_config_path = Some(jaas);
    let server = SecureServer::start(cfg);
    let mut c = Client::connect(tls_connect(server.secure_addr.unwrap(), &pki, true)).unwrap();
    let (_, body) = c.call(&sasl(b""));
    let challenge = SetSaslResponse::from_bytes(&body).unwrap().token;
    let (response, _) = digest_response(&challenge, "bob", "bobsecret");
    assert_eq!(c.call(&sasl(&response)).0, ErrorCode::Ok);
    let (_, body) = c.call(&Request::WhoAmI);
    let who = ids(WhoAmIResponse::from_bytes(&body).unwrap());
    assert!(who.contains(&("sasl".into(), "bob".into())), "{who:?}");
    assert!(who.contains(&("x509".into(), CLIENT_DN.into())), "{who:?}");
}

/// Sends a handshake and a `sasl` request back to back, as zookeeper-client (Rust) does, and
/// returns the stream with the handshake's answer read.
fn pipelined_sasl(addr: SocketAddr, token: &[u8]) -> TcpStream {
    let mut s = RawClient::tcp(addr);
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: Zxid(0),
        timeout_ms: 10_000,
        session_id: SessionId(0),
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    let mut bytes = (req.to_bytes().len() as i32).to_be_bytes().to_vec();
    bytes.extend(req.to_bytes());
    bytes.extend(encode_request(Xid(1), &sasl(token)));
    s.write_all(&bytes).unwrap();
    let first = read_frame(&mut s).expect("the handshake's answer");
    let resp = ConnectResponse::from_bytes(&first).expect("the handshake is answered first");
    assert_ne!(resp.timeout_ms, 0);
    s
}

fn sasl_reply(s: &mut TcpStream) -> (ErrorCode, Vec<u8>) {
    let body = read_frame(s).expect("the sasl reply");
    let mut r = Reader::new(&body);
    let header = warren_proto::records::ReplyHeader::decode(&mut r).unwrap();
    assert_eq!((header.xid, header.zxid), (Xid(1), Zxid(0)));
    (header.err, body[r.position()..].to_vec())
}

#[test]
fn sasl_pipelined_behind_the_handshake_is_answered_after_it() {
    // Phase 1: with users, the challenge follows the handshake's answer.
    let dir = tempfile::tempdir().unwrap();
    let server = SecureServer::start(sasl_config(dir.path()));
    let mut s = pipelined_sasl(server.addr, b"");
    let (err, body) = sasl_reply(&mut s);
    assert_eq!(err, ErrorCode::Ok);
    let challenge = SetSaslResponse::from_bytes(&body).unwrap().token;
    assert!(challenge.starts_with(b"realm=\"zk-sasl-md5\""));

    // Phase 2: without a JAAS file, AuthFailed (with a null token) follows the handshake's
    // answer, then the connection closes.
    let dir = tempfile::tempdir().unwrap();
    let server = SecureServer::start(test_config(dir.path(), &[]));
    let mut s = pipelined_sasl(server.addr, b"");
    let (err, body) = sasl_reply(&mut s);
    assert_eq!(err, ErrorCode::AuthFailed);
    assert_eq!(body, (-1i32).to_be_bytes());
    assert!(common::is_closed(&mut s));
}
