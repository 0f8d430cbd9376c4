//! TLS termination for a listener (rustls with aws-lc-rs): a PEM certificate chain and key
//! from files, TLS 1.3 preferred and 1.2 allowed, ALPN `h2` and `http/1.1`.
//!
//! Reloadable without a restart: at most once a second, a handshake checks the files'
//! modification times; when they changed, the pair is read again and, if it loads and the
//! key matches the certificate, new handshakes use it (open connections keep theirs). A pair
//! that does not load is logged and the previous one keeps serving, so a half-written renewal
//! never takes the listener down.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio_rustls::TlsAcceptor;

/// Where a listener's certificate chain and private key live (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// How often, at most, a handshake looks at the files.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Loads the pair and returns the acceptor; the error names what to fix.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (key, stamp) = load(files, &provider)?;
    let resolver = Arc::new(Reloading {
        files: files.clone(),
        provider: provider.clone(),
        current: RwLock::new(key),
        watch: Mutex::new(Watch { stamp, checked: Instant::now() }),
    });
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// The files' modification times.
type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn stamp(files: &TlsFiles) -> Stamp {
    let m = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(&files.cert), m(&files.key))
}

fn load(files: &TlsFiles, provider: &Arc<CryptoProvider>) -> Result<(Arc<CertifiedKey>, Stamp), String> {
    let stamp = stamp(files);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: cannot read the certificate chain: {e}", files.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| format!("{}: cannot read the private key: {e}", files.key.display()))?;
    let certified = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("{} and {}: the key does not fit the certificate or is unsupported: {e}", files.cert.display(), files.key.display()))?;
    Ok((Arc::new(certified), stamp))
}

struct Watch {
    stamp: Stamp,
    checked: Instant,
}

struct Reloading {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    watch: Mutex<Watch>,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading").field("files", &self.files).finish_non_exhaustive()
    }
}

impl Reloading {
    fn maybe_reload(&self) {
        // One handshake checks; concurrent ones go on with the current pair.
        let Ok(mut watch) = self.watch.try_lock() else { return };
        if watch.checked.elapsed() < CHECK_EVERY {
            return;
        }
        watch.checked = Instant::now();
        if stamp(&self.files) == watch.stamp {
            return;
        }
        match load(&self.files, &self.provider) {
            Ok((key, stamp)) => {
                if let Ok(mut cur) = self.current.write() {
                    *cur = key;
                }
                watch.stamp = stamp;
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                // Keep serving the previous pair; try again at the next change.
                watch.stamp = stamp(&self.files);
                tracing::error!(error = %e, "TLS certificate reload failed; keeping the previous certificate");
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.maybe_reload();
        self.current.read().ok().map(|k| k.clone())
    }
}
