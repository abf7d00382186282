//! The admin endpoint's routing and the sessions API's auth rules, without
//! a socket: requests built in memory, answered by [`api::answer`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};

use super::api::{self, Endpoint, endpoint};
use super::auth::{AdminAuth, Need};
use super::{Admin, Health};
use crate::ops::sessions::SessionList;
use crate::ops::{Conn, Sessions};
use crate::routes::RouteSources;

const ID: &str = "0123456789abcdef";

#[test]
fn paths_and_methods_name_endpoints() {
    let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
    assert_eq!(endpoint(&get, "/healthz"), Endpoint::Healthz);
    assert_eq!(endpoint(&Method::HEAD, "/metrics"), Endpoint::Metrics);
    assert_eq!(endpoint(&get, "/sessions"), Endpoint::List);
    assert_eq!(endpoint(&get, "/sessions/"), Endpoint::List);
    assert_eq!(
        endpoint(&get, &format!("/sessions/{ID}")),
        Endpoint::Show(ID)
    );
    assert_eq!(
        endpoint(&post, &format!("/sessions/{ID}/kill")),
        Endpoint::Kill(ID)
    );
    assert_eq!(
        endpoint(&delete, &format!("/sessions/{ID}")),
        Endpoint::Kill(ID)
    );
    assert_eq!(
        endpoint(&get, &format!("/sessions/{ID}/kill")),
        Endpoint::NotAllowed("POST")
    );
    assert_eq!(
        endpoint(&post, "/sessions"),
        Endpoint::NotAllowed("GET, HEAD")
    );
    assert_eq!(
        endpoint(&delete, "/healthz"),
        Endpoint::NotAllowed("GET, HEAD")
    );
    for path in [
        "/",
        "/nope",
        "/sessions/xyz",
        "/sessions/0123456789ABCDEF0",
        "/sessions/0123456789abcdeg/kill",
        &format!("/sessions/{ID}/other"),
        &format!("/sessions/{ID}/kill/more"),
    ] {
        assert_eq!(endpoint(&post, path), Endpoint::NotFound, "{path}");
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

#[test]
fn without_tokens_loopback_reads_and_nobody_writes() {
    let auth = AdminAuth::default();
    for peer in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        assert_eq!(auth.check(Need::Read, ip(peer), None), Ok(()), "{peer}");
    }
    let remote = auth
        .check(Need::Read, ip("10.0.0.5"), None)
        .expect_err("remote");
    assert_eq!(remote.status, StatusCode::FORBIDDEN);
    let write = auth
        .check(Need::Write, ip("127.0.0.1"), Some(b"Bearer anything"))
        .expect_err("no write token");
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert!(
        write.reason.contains("write_token_file"),
        "{}",
        write.reason
    );
    assert!(!write.reason.contains('\n'));
}

#[test]
fn tokens_are_required_once_configured() {
    let auth = AdminAuth::from_tokens(Some(b"r3ad"), Some(b"wr1te"));
    let local = ip("127.0.0.1");
    let check = |need, value: Option<&[u8]>| auth.check(need, local, value).map_err(|d| d.status);
    let unauthorized = Err(StatusCode::UNAUTHORIZED);
    // Reading: the read or the write token, from loopback too.
    assert_eq!(check(Need::Read, None), unauthorized);
    assert_eq!(check(Need::Read, Some(b"Bearer wrong")), unauthorized);
    assert_eq!(check(Need::Read, Some(b"Bearer r3ad")), Ok(()));
    assert_eq!(check(Need::Read, Some(b"bearer  r3ad ")), Ok(()));
    assert_eq!(check(Need::Read, Some(b"Bearer wr1te")), Ok(()));
    assert_eq!(check(Need::Read, Some(b"Basic r3ad")), unauthorized);
    assert_eq!(check(Need::Read, Some(b"Bearer r3a")), unauthorized);
    // Writing: the write token only.
    assert_eq!(check(Need::Write, Some(b"Bearer r3ad")), unauthorized);
    assert_eq!(check(Need::Write, None), unauthorized);
    assert_eq!(check(Need::Write, Some(b"Bearer wr1te")), Ok(()));
}

#[test]
fn a_write_token_alone_lets_remote_clients_read_with_it() {
    let auth = AdminAuth::from_tokens(None, Some(b"wr1te"));
    let remote = ip("10.0.0.5");
    assert!(
        auth.check(Need::Read, remote, Some(b"Bearer wr1te"))
            .is_ok()
    );
    assert!(auth.check(Need::Read, remote, Some(b"Bearer no")).is_err());
    assert!(auth.check(Need::Read, ip("127.0.0.1"), None).is_ok());
}

#[test]
fn the_debug_form_holds_no_token_digest() {
    let auth = AdminAuth::from_tokens(Some(b"r3ad"), None);
    let shown = format!("{auth:?}");
    assert!(
        shown.contains("<redacted>") && shown.contains("None"),
        "{shown}"
    );
}

fn admin(auth: AdminAuth) -> (Admin, Arc<Sessions>) {
    let sessions = Sessions::new();
    let admin = Admin {
        health: Health::new(RouteSources::new()),
        sessions: sessions.clone(),
        auth,
    };
    (admin, sessions)
}

/// `method path` from 127.0.0.1 (with `Authorization: token`): status, body.
async fn ask(
    admin: &Admin,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(()).expect("request");
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let response = api::answer(&request, peer, admin);
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_sessions_api_lists_and_ends_sessions() {
    let (admin, sessions) = admin(AdminAuth::from_tokens(None, Some(b"wr1te")));
    let conn = Arc::new(Conn::new(
        "203.0.113.7:50001".parse().expect("addr"),
        "ssh",
        None,
    ));
    let _listed = sessions.register(conn.clone());

    let (status, body) = ask(&admin, Method::GET, "/sessions", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list: SessionList = serde_json::from_str(&body).expect("JSON list");
    assert_eq!((list.count, list.truncated), (1, false));
    assert_eq!(list.sessions[0].id, conn.id());
    assert_eq!(list.sessions[0].client_port, 50001);

    let kill = format!("/sessions/{}/kill", conn.id());
    let (status, body) = ask(&admin, Method::POST, &kill, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = ask(&admin, Method::POST, &kill, Some("nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let other = format!("/sessions/{ID}/kill");
    let (status, body) = ask(&admin, Method::POST, &other, Some("wr1te")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = ask(&admin, Method::POST, &kill, Some("wr1te")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(conn.id()), "{body}");
    assert_eq!(conn.end_reason(), Some("operator_kill"));
}

#[tokio::test]
async fn health_and_metrics_need_no_token() {
    let (admin, _) = admin(AdminAuth::from_tokens(Some(b"r3ad"), Some(b"wr1te")));
    assert_eq!(
        ask(&admin, Method::GET, "/healthz", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        ask(&admin, Method::GET, "/metrics", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        ask(&admin, Method::GET, "/sessions", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ask(&admin, Method::DELETE, "/healthz", None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}
