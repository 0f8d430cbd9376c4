//! The upstream of `bench/gateway.sh`: a tiny, fast HTTP/1.1 server (hyper 1, one
//! current-thread tokio runtime) that answers every request with `200` and a small JSON body
//! after reading the request body. It must be much faster than the proxies measured in front
//! of it, so it does nothing else: no routing, no logging, no allocation beyond hyper's own.
//!
//!   upstream [--listen 127.0.0.1:0]
//!
//! Prints `BENCH listening ADDR` once bound, then serves until killed. Not a test; never run
//! by CI (`cargo bench --bench upstream --no-run` builds it).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::Write;

const BODY: &[u8] = br#"{"ok":true,"service":"bench-upstream"}"#;

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole request body (a proxy's request is only complete once it is sent).
    let _ = req.into_body().collect().await;
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    Ok(resp)
}

fn main() {
    let mut listen = "127.0.0.1:0".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().unwrap_or(listen),
            other => {
                eprintln!("upstream: unknown argument {other} (usage: upstream [--listen ADDR])");
                std::process::exit(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("upstream: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("upstream: cannot listen on {listen}: {e}");
                std::process::exit(1);
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        println!("BENCH listening {addr}");
        let _ = std::io::stdout().flush();
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::task::spawn(async move {
                let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service_fn(answer)).await;
            });
        }
    });
}
