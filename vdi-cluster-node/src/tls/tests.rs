//! Loading, verification, the names of a client certificate and reloads,
//! with a CA and certificates generated here.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use super::*;

/// A CA made for one test.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `cn`, also valid for localhost and 127.0.0.1:
    /// (certificate PEM, key PEM).
    fn leaf(&self, cn: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Writes a host's files into `dir`: `<name>.crt`, `<name>.key`.
fn write_leaf(dir: &Path, name: &str, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    (c, k)
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vdi-tls-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_bad_file_is_refused_naming_its_flag() {
    let dir = temp_dir("bad-files");
    let ca = TestCa::new("ca");
    let (cert, key) = write_leaf(&dir, "cp", &ca.leaf("cp"));
    let missing = dir.join("missing.pem");
    let settings = |cert: &Path, key: &Path, ca: Option<&Path>| TlsSettings {
        identity: Some((cert.to_owned(), key.to_owned())),
        ca: ca.map(Path::to_owned),
        require_client_cert: false,
    };
    let flag = |s: TlsSettings| Tls::load(&s).unwrap_err().flag();
    assert_eq!(flag(settings(&missing, &key, None)), "--tls-cert");
    assert_eq!(flag(settings(&cert, &missing, None)), "--tls-key");
    assert_eq!(flag(settings(&cert, &key, Some(&missing))), "--tls-ca");
    // A key that is not the certificate's.
    let (_, other_key) = write_leaf(&dir, "other", &ca.leaf("other"));
    let err = Tls::load(&settings(&cert, &other_key, None)).unwrap_err();
    assert_eq!(err.flag(), "--tls-key");
    assert!(err.to_string().contains("does not fit --tls-cert"), "{err}");
    // A certificate file with no certificate in it.
    assert_eq!(flag(settings(&key, &key, None)), "--tls-cert");
    let without_ca = TlsSettings {
        require_client_cert: true,
        ..settings(&cert, &key, None)
    };
    assert_eq!(flag(without_ca), "--tls-require-client-cert");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The host names the client's certificate carries when it connects to
/// `server`, and the server's certificate as the client saw it.
async fn handshake(
    server: &Tls,
    client: &Tls,
) -> std::io::Result<(Option<PeerCertificate>, Vec<u8>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = server.acceptor(&["http/1.1"]).unwrap();
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut conn = MaybeTls::accept(tcp, Some(&acceptor), stream::HANDSHAKE_TIMEOUT).await?;
        let peer = conn.peer_certificate();
        conn.write_all(b"ok").await?;
        conn.shutdown().await?;
        Ok::<_, std::io::Error>(peer)
    });
    // A full handshake each time: a resumed session shows the
    // certificate of the session it resumes.
    let mut config = client.client_config();
    config.resumption = rustls::client::Resumption::disabled();
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let seen = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    assert_eq!(answer, b"ok");
    let peer = served.await.unwrap()?;
    Ok((peer, seen))
}

#[tokio::test]
async fn mutual_tls_verifies_both_sides_and_names_the_client() {
    let dir = temp_dir("mutual");
    let ca = TestCa::new("lab CA");
    std::fs::write(dir.join("ca.crt"), &ca.pem).unwrap();
    let host = |name: &str, ca_path: &Path| {
        let identity = write_leaf(&dir, name, &ca.leaf(name));
        Tls::load(&TlsSettings {
            identity: Some(identity),
            ca: Some(ca_path.to_owned()),
            require_client_cert: true,
        })
        .unwrap()
    };
    let server = host("control-plane", &dir.join("ca.crt"));
    let worker = host("w-1", &dir.join("ca.crt"));
    assert!(server.https_only());
    let (peer, _) = handshake(&server, &worker).await.unwrap();
    let peer = peer.expect("the worker presented its certificate");
    assert!(peer.names("w-1") && peer.names("localhost") && !peer.names("w-2"));

    // A client from another CA is refused by the server; a client without
    // a certificate too.
    let stranger_ca = TestCa::new("another CA");
    std::fs::write(dir.join("other-ca.crt"), &stranger_ca.pem).unwrap();
    let stranger_identity = write_leaf(&dir, "stranger", &stranger_ca.leaf("w-1"));
    let stranger = Tls::load(&TlsSettings {
        identity: Some(stranger_identity),
        ca: Some(dir.join("ca.crt")),
        require_client_cert: false,
    })
    .unwrap();
    assert!(handshake(&server, &stranger).await.is_err());
    let anonymous = Tls::load(&TlsSettings {
        identity: None,
        ca: Some(dir.join("ca.crt")),
        require_client_cert: false,
    })
    .unwrap();
    assert!(handshake(&server, &anonymous).await.is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_reload_changes_what_the_next_handshake_presents() {
    let dir = temp_dir("reload");
    let ca = TestCa::new("lab CA");
    std::fs::write(dir.join("ca.crt"), &ca.pem).unwrap();
    let first = ca.leaf("cp");
    let (cert, key) = write_leaf(&dir, "cp", &first);
    let server = Tls::load(&TlsSettings {
        identity: Some((cert.clone(), key.clone())),
        ca: None,
        require_client_cert: false,
    })
    .unwrap();
    let client = Tls::load(&TlsSettings {
        identity: None,
        ca: Some(dir.join("ca.crt")),
        require_client_cert: false,
    })
    .unwrap();
    let (_, before) = handshake(&server, &client).await.unwrap();
    // A half-written file is not taken: the previous pair stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    let identity = server.identity.as_ref().unwrap();
    assert_eq!(identity.reload().unwrap_err().flag(), "--tls-cert");
    let (_, still) = handshake(&server, &client).await.unwrap();
    assert_eq!(still, before);
    write_leaf(&dir, "cp", &ca.leaf("cp"));
    identity.reload().unwrap();
    let (_, after) = handshake(&server, &client).await.unwrap();
    assert_ne!(after, before, "the new certificate is presented");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_reloaded_ca_bundle_verifies_the_next_handshake() {
    let dir = temp_dir("ca-reload");
    let (old_ca, new_ca) = (TestCa::new("old CA"), TestCa::new("new CA"));
    let bundle = dir.join("ca.crt");
    std::fs::write(&bundle, &old_ca.pem).unwrap();
    let server = Tls::load(&TlsSettings {
        identity: Some(write_leaf(&dir, "cp", &old_ca.leaf("cp"))),
        ca: Some(bundle.clone()),
        require_client_cert: true,
    })
    .unwrap();
    // A worker whose certificate the new CA issued (it trusts the old one
    // for the control plane's).
    std::fs::write(dir.join("old-ca.crt"), &old_ca.pem).unwrap();
    let worker = Tls::load(&TlsSettings {
        identity: Some(write_leaf(&dir, "w-1", &new_ca.leaf("w-1"))),
        ca: Some(dir.join("old-ca.crt")),
        require_client_cert: false,
    })
    .unwrap();
    assert!(handshake(&server, &worker).await.is_err());

    // A half-written bundle is not taken: the old one stays.
    std::fs::write(&bundle, "not a certificate").unwrap();
    let ca = server.ca.as_ref().unwrap();
    assert!(ca.changed());
    assert_eq!(ca.reload().unwrap_err().flag(), "--tls-ca");
    assert!(handshake(&server, &worker).await.is_err());
    // Both CAs in the bundle, read again without a restart: the worker is
    // verified against the new bundle.
    std::fs::write(&bundle, format!("{}{}", old_ca.pem, new_ca.pem)).unwrap();
    ca.reload().unwrap();
    assert!(!ca.changed());
    let (peer, _) = handshake(&server, &worker).await.unwrap();
    assert!(peer.expect("a certificate").names("w-1"));
    std::fs::remove_dir_all(dir).unwrap();
}
