//! TLS end to end, with a CA and certificates generated here: two `serve`
//! replicas on one Redis store and two workers, every link over mutual
//! TLS (`--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-require-client-cert`).
//! A session is placed through each replica; a worker's certificate for
//! another code is refused; plain HTTP is refused on every listener; a
//! control plane's certificate is rotated (file rewritten, SIGHUP) while a
//! connection stays open on the old one, and new handshakes see the new
//! one; a CA added to the bundle (SIGHUP) verifies a worker it issued
//! without a restart. Over gRPC too, a certificate for another code is
//! refused and plain text is not answered, and a node agent heartbeats
//! over `grpcs://` with mutual TLS. An unreachable Redis is a SKIP, or a
//! failure with `VDI_REQUIRE_BACKENDS=1`.

use std::path::PathBuf;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use reqwest::StatusCode;
use rustix::process::Signal;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vdi_cluster_grpc::tonic::Code;
use vdi_cluster_grpc::tonic::transport::{Endpoint, Uri};

use crate::common::{
    Api, CLUSTER_TOKEN, ControlPlane, CpOptions, WORKER_TOKEN, Worker, WorkerOptions, eventually,
    http, wait_worker,
};
use crate::grpc::{Client, as_worker, heartbeat, refused, registration};
use crate::redis_prefix::RedisPrefix;

/// A CA for one test, and the files it issues.
pub(crate) struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) dir: PathBuf,
}

impl TestCa {
    pub(crate) fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("vdi-e2e-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "e2e lab CA");
        std::fs::write(dir.join("ca.crt"), params.self_signed(&key).unwrap().pem()).unwrap();
        // As lab-ca.sh leaves it: the installation script signs with it.
        std::fs::write(dir.join("ca.key"), key.serialize_pem()).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            dir,
        }
    }

    pub(crate) fn ca(&self) -> String {
        self.path("ca.crt")
    }

    pub(crate) fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }

    /// Writes `<name>.crt` and `<name>.key`: a certificate whose CN is
    /// `cn`, valid for 127.0.0.1, as a server and as a client.
    pub(crate) fn issue(&self, name: &str, cn: &str) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(self.dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(self.dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }

    /// The TLS flags of a host whose files are `<name>.crt|key`.
    pub(crate) fn flags(&self, name: &str) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.path(&format!("{name}.crt")),
            "--tls-key".into(),
            self.path(&format!("{name}.key")),
            "--tls-ca".into(),
            self.ca(),
            "--tls-require-client-cert".into(),
        ]
    }

    /// An HTTPS client trusting the CA, presenting `<name>`'s certificate
    /// when given.
    pub(crate) fn client(&self, name: Option<&str>) -> reqwest::Client {
        let ca = std::fs::read(self.ca()).unwrap();
        let mut builder = http_builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        if let Some(name) = name {
            let mut pem = std::fs::read(self.dir.join(format!("{name}.crt"))).unwrap();
            pem.extend(std::fs::read(self.dir.join(format!("{name}.key"))).unwrap());
            builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    }

    /// An HTTPS client trusting this CA and presenting `<name>`'s
    /// certificate issued by `issuer`, another CA.
    pub(crate) fn client_issued_by(&self, issuer: &TestCa, name: &str) -> reqwest::Client {
        let ca = std::fs::read(self.ca()).unwrap();
        let mut pem = std::fs::read(issuer.dir.join(format!("{name}.crt"))).unwrap();
        pem.extend(std::fs::read(issuer.dir.join(format!("{name}.key"))).unwrap());
        http_builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// A rustls client configuration trusting the CA and presenting
    /// `<name>`'s certificate, offering `alpn`, with no session
    /// resumption (each handshake shows the server's certificate).
    fn rustls_config(&self, name: &str, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.ca()).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let certs: Vec<_> = CertificateDer::pem_file_iter(self.path(&format!("{name}.crt")))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key"))).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .unwrap();
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(config)
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(20))
}

/// `host:port` of a URL.
fn authority(url: &str) -> &str {
    url.split("://").nth(1).unwrap().trim_end_matches('/')
}

/// A raw TLS connection to `url`, kept open across requests.
async fn open(config: &Arc<rustls::ClientConfig>, url: &str) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(authority(url)).await.unwrap();
    TlsConnector::from(Arc::clone(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// The certificate the server presented on `conn`.
fn server_cert(conn: &TlsStream<TcpStream>) -> Vec<u8> {
    conn.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// `GET /healthz` on an open connection: its status line.
async fn healthz_on(conn: &mut BufReader<TlsStream<TcpStream>>) -> String {
    conn.get_mut()
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut status = String::new();
    conn.read_line(&mut status).await.unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.unwrap();
    status.trim_end().to_owned()
}

/// A worker's registration of `code` sent by `client` with the shared
/// token.
async fn register_as(client: &reqwest::Client, cp: &ControlPlane, code: &str) -> StatusCode {
    client
        .post(format!("{}/api/vdi/workers/register", cp.url))
        .header("x-worker-token", WORKER_TOKEN)
        .json(&json!({"code": code, "apiBaseUrl": "https://127.0.0.1:9"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_and_workers_over_mutual_tls() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    let ca = TestCa::new();
    for (name, cn) in [
        ("cp1", "control-plane"),
        ("cp2", "control-plane"),
        ("w1", "w1"),
        ("w2", "w2"),
        ("probe", "probe"),
    ] {
        ca.issue(name, cn);
    }
    let mut options = redis.options();
    options.extra = ca.flags("cp1");
    let first = ControlPlane::start(options.clone()).await;
    options.extra = ca.flags("cp2");
    let second = ControlPlane::start(options).await;
    assert!(first.url.starts_with("https://"), "{}", first.url);
    let bases = format!("{},{}", first.api_base(), second.api_base());
    let worker = |code: &str| WorkerOptions {
        extra: ca.flags(code),
        ..WorkerOptions::default()
    };
    let w1 = Worker::start("w1", &bases, worker("w1")).await;
    let w2 = Worker::start("w2", &bases, worker("w2")).await;
    assert!(w1.url.starts_with("https://"), "{}", w1.url);

    // Both replicas see both workers; each places a session on a worker
    // over mutual TLS (the worker refuses a caller without a certificate).
    let operator = ca.client(None);
    let apis = [
        Api::with_http(&first.url, operator.clone()),
        Api::with_http(&second.url, operator.clone()),
    ];
    for api in &apis {
        for code in ["w1", "w2"] {
            wait_worker(api, code, "availability", json!("healthy")).await;
        }
    }
    for (i, api) in apis.iter().enumerate() {
        let placed = api.allocate("exam-tls", &format!("student-{i}")).await;
        assert!(
            ["w1", "w2"].contains(&placed["workerCode"].as_str().unwrap_or_default()),
            "{placed}"
        );
    }

    // A worker's certificate for another code is refused, whatever token
    // it holds; no certificate at all is refused.
    let as_w2 = ca.client(Some("w2"));
    assert_eq!(
        register_as(&as_w2, &first, "w1").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        register_as(&as_w2, &second, "w1").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        register_as(&operator, &first, "w1").await,
        StatusCode::UNAUTHORIZED
    );
    // Nor can it join under another code with a join token.
    let (status, created) = apis[0]
        .admin(
            reqwest::Method::POST,
            "/api/vdi/join-tokens",
            Some(json!({"ttlSec": 600, "maxUses": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let joined = as_w2
        .post(format!("{}/api/vdi/workers/join", first.url))
        .header("x-join-token", created["token"].as_str().unwrap())
        .json(&json!({"code": "w1", "apiBaseUrl": "https://127.0.0.1:9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), StatusCode::FORBIDDEN);

    // Plain HTTP is refused on every listener: the control plane's and
    // the workers'.
    for url in [&first.url, &second.url, &w1.url, &w2.url] {
        let plain = url.replacen("https://", "http://", 1);
        let answer = http().get(format!("{plain}/healthz")).send().await;
        assert!(answer.is_err(), "{plain} answered plain HTTP: {answer:?}");
    }
    // And the worker refuses the control plane's client without a
    // certificate.
    let call = operator
        .post(format!("{}/api/vdi/cluster/status", w1.url))
        .header("x-cluster-token", CLUSTER_TOKEN)
        .send()
        .await;
    assert!(
        call.is_err(),
        "a worker answered a caller without certificate"
    );

    // A CA rotated in: a worker whose certificate a new CA issued is
    // refused until the control plane's bundle holds that CA, then
    // verified against the new bundle without a restart.
    let new_ca = TestCa::new();
    new_ca.issue("w3", "w3");
    let as_w3 = ca.client_issued_by(&new_ca, "w3");
    let register_w3 = || async {
        as_w3
            .post(format!("{}/api/vdi/workers/register", first.url))
            .header("x-worker-token", WORKER_TOKEN)
            .json(&json!({"code": "w3", "apiBaseUrl": "https://127.0.0.1:9"}))
            .send()
            .await
            .map(|r| r.status())
    };
    assert!(register_w3().await.is_err(), "an unknown CA was accepted");
    let bundle = [ca.ca(), new_ca.ca()]
        .map(|path| std::fs::read_to_string(path).unwrap())
        .concat();
    std::fs::write(ca.ca(), bundle).unwrap();
    first.proc.signal(Signal::HUP);
    let status = eventually("w3 is verified against the new bundle", || async {
        register_w3().await.ok()
    })
    .await;
    assert!(status.is_success(), "{status}");

    // Rotation: a connection open on the old certificate stays usable;
    // new handshakes get the new certificate.
    let config = ca.rustls_config("probe", b"http/1.1");
    let kept = open(&config, &first.url).await;
    let old = server_cert(&kept);
    let mut kept = BufReader::new(kept);
    assert_eq!(healthz_on(&mut kept).await, "HTTP/1.1 200 OK");
    ca.issue("cp1", "control-plane");
    first.proc.signal(Signal::HUP);
    first.proc.wait_log("TLS certificate reloaded").await;
    let fresh = eventually("a new handshake sees the new certificate", || async {
        let conn = open(&config, &first.url).await;
        (server_cert(&conn) != old).then_some(conn)
    })
    .await;
    assert_eq!(
        healthz_on(&mut BufReader::new(fresh)).await,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        healthz_on(&mut kept).await,
        "HTTP/1.1 200 OK",
        "the connection opened before the rotation is still served"
    );
    // The workers keep heartbeating to the rotated replica.
    let after = eventually("w1 heartbeats after the rotation", || async {
        let seen = apis[0].worker("w1").await;
        (seen["availability"] == "healthy").then_some(seen)
    })
    .await;
    assert_eq!(after["code"], "w1");
    drop((w1, w2, first, second));
}

/// A gRPC client of `addr` over TLS with `config`.
async fn grpc_client(addr: &str, config: Arc<rustls::ClientConfig>) -> Client {
    let addr = addr.to_owned();
    let connector = tower::service_fn(move |_: Uri| {
        let (addr, config) = (addr.clone(), Arc::clone(&config));
        async move {
            let tcp = TcpStream::connect(&addr).await?;
            let tls = TlsConnector::from(config)
                .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
                .await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    let channel = Endpoint::from_static("http://127.0.0.1")
        .connect_with_connector(connector)
        .await
        .unwrap();
    Client::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_grpc_a_certificate_for_another_code_is_refused() {
    let ca = TestCa::new();
    ca.issue("cp", "control-plane");
    ca.issue("w1", "w1");
    ca.issue("w2", "w2");
    let mut extra = ca.flags("cp");
    extra.extend(["--grpc-listen".into(), "127.0.0.1:0".into()]);
    let mut cp = ControlPlane::start(CpOptions {
        extra,
        ..CpOptions::default()
    })
    .await;
    let line = cp.proc.wait_line("gRPC listening on").await;
    let addr = line.rsplit("://").next().unwrap().trim().to_owned();

    // w2's certificate cannot register nor heartbeat as w1.
    let mut as_w2 = grpc_client(&addr, ca.rustls_config("w2", b"h2")).await;
    let url = "https://127.0.0.1:9";
    refused(
        as_w2
            .register_worker(as_worker(registration("w1", url, None)))
            .await,
        Code::PermissionDenied,
        "registration of w1 with w2's certificate",
    );
    refused(
        as_w2.heartbeat(as_worker(heartbeat("w1", url, 1))).await,
        Code::PermissionDenied,
        "heartbeat of w1 with w2's certificate",
    );
    // w1's own certificate registers and heartbeats as w1.
    let mut as_w1 = grpc_client(&addr, ca.rustls_config("w1", b"h2")).await;
    let registered = as_w1
        .register_worker(as_worker(registration("w1", url, None)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.worker_id, "w1");
    let answer = as_w1
        .heartbeat(as_worker(heartbeat("w1", url, 1)))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.accepted, "{answer:?}");

    // Plain text is refused where TLS is required.
    let plain = vdi_cluster_grpc::tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let call = Client::new(channel)
            .heartbeat(as_worker(heartbeat("w1", url, 2)))
            .await;
        assert!(call.is_err(), "a plain-text call was answered: {call:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_heartbeats_over_grpc_with_mutual_tls() {
    let ca = TestCa::new();
    for name in ["cp", "w1", "w2"] {
        ca.issue(name, if name == "cp" { "control-plane" } else { name });
    }
    let mut extra = ca.flags("cp");
    extra.extend(["--grpc-listen".into(), "127.0.0.1:0".into()]);
    let mut cp = ControlPlane::start(CpOptions {
        extra,
        ..CpOptions::default()
    })
    .await;
    let line = cp.proc.wait_line("gRPC listening on").await;
    let addr = line.rsplit("://").next().unwrap().trim().to_owned();

    // The agent's gRPC client over TLS: it verifies the control plane
    // with the CA and presents w1's certificate (the control plane
    // requires one of workers).
    let w1 = Worker::start(
        "w1",
        &format!("grpcs://{addr}"),
        WorkerOptions {
            extra: ca.flags("w1"),
            ..WorkerOptions::default()
        },
    )
    .await;
    let api = Api::with_http(&cp.url, ca.client(None));
    wait_worker(&api, "w1", "availability", json!("healthy")).await;
    let placed = api.allocate("exam-grpcs", "student-1").await;
    assert_eq!(placed["workerCode"], "w1", "{placed}");

    // With a CA, the agent refuses to speak plain text to a gRPC control
    // plane: it never registers.
    let plain = Worker::start(
        "w2",
        &format!("grpc://{addr}"),
        WorkerOptions {
            extra: ca.flags("w2"),
            ..WorkerOptions::default()
        },
    )
    .await;
    plain.proc.wait_log("use grpcs://host:port").await;
    drop((w1, plain));
}
