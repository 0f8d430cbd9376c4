//! Issue #7 item 8: IP allow and deny lists, global and per route, on the client address the
//! listener resolved (forwarded headers count only from trusted proxies).

use super::upstream::Upstream;
use super::{base, gateway, route};
use warden::gateway::{IpRules, RouteConfig};

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

async fn get_from(s: &crate::support::TestServer, path: &str, client: &str) -> reqwest::Response {
    s.http.get(format!("{}{path}", base(s))).header("x-forwarded-for", client).send().await.unwrap()
}

#[tokio::test]
async fn refused_addresses_get_403_and_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let office = RouteConfig { ip_rules: IpRules { allow: nets(&["198.51.100.0/24"]), deny: vec![] }, ..route("office", "/office/", &["GET"], &up.url()) };
    let open = route("open", "/open/", &["GET"], &up.url());
    let s = gateway(vec![office, open], |c| {
        c.trusted_proxies = warden::http::client_ip::TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
        c.gateway.ip_rules = IpRules { allow: vec![], deny: nets(&["203.0.113.0/24"]) };
    })
    .await;
    assert_eq!(get_from(&s, "/office/x", "198.51.100.7").await.status(), 200);
    assert_eq!(up.seen().len(), 1);
    for (path, client) in [("/office/x", "192.0.2.1"), ("/office/x", "203.0.113.5"), ("/open/x", "203.0.113.5")] {
        let resp = get_from(&s, path, client).await;
        assert_eq!(resp.status(), 403, "{path} from {client}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        assert!(resp.text().await.unwrap().contains("forbidden-address"));
    }
    assert_eq!(up.seen().len(), 1, "no refused request reached the upstream");
    assert_eq!(get_from(&s, "/open/x", "192.0.2.1").await.status(), 200, "only the global deny list applies there");
}

/// A forwarded header from an untrusted peer names nobody: the peer's own address decides.
#[tokio::test]
async fn an_untrusted_peer_cannot_claim_an_allowed_address() {
    let up = Upstream::start().await;
    let office = RouteConfig { ip_rules: IpRules { allow: nets(&["198.51.100.0/24"]), deny: vec![] }, ..route("office", "/office/", &["GET"], &up.url()) };
    let s = gateway(vec![office], |_| {}).await;
    assert_eq!(get_from(&s, "/office/x", "198.51.100.7").await.status(), 403);
    assert!(up.seen().is_empty());
}
