//! Tests of the reload path: the pure merge, and the watcher against real files.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use super::fixture::{Fixture, KEY_A};
use super::*;
use crate::routes::{RouteSources, RouteTable, SharedRoutes};

fn route(name: &str, user: &str) -> String {
    format!("[[route]]\nname = \"{name}\"\naddress = \"10.0.0.1:22\"\nuser = \"{user}\"\n\n")
}

fn user_of(table: &RouteTable, name: &str) -> Option<String> {
    table.get(name).and_then(|r| r.user.clone())
}

#[test]
fn merge_adds_removes_and_keeps_broken_routes() {
    let fx = Fixture::new();
    let before = RouteTable::new(
        fx.load(&format!(
            "{}{}{}",
            route("a", "a1"),
            route("b", "b1"),
            route("c", "c1")
        ))
        .routes,
    );
    // a: edited fine; b: broken by the edit; c: deleted; d: new; e: new but broken.
    let next = fx.load(&format!(
        "{}{}{}{}",
        route("a", "a2"),
        route("b", ""),
        route("d", "d1"),
        route("e", "")
    ));
    let merged = merge(&before, next);
    assert_eq!(merged.added, ["d"]);
    assert_eq!(merged.removed, ["c"]);
    assert_eq!(merged.kept_previous, ["b"]);
    let table = RouteTable::new(merged.routes);
    assert_eq!(table.names(), ["a", "b", "d"]);
    assert_eq!(user_of(&table, "a").as_deref(), Some("a2"));
    assert_eq!(user_of(&table, "b").as_deref(), Some("b1"));
}

#[test]
fn merge_does_not_resurrect_a_valid_first_duplicate() {
    let fx = Fixture::new();
    let before = RouteTable::new(fx.load(&route("a", "old")).routes);
    let merged = merge(
        &before,
        fx.load(&format!("{}{}", route("a", "new"), route("a", "dup"))),
    );
    assert!(merged.kept_previous.is_empty());
    assert_eq!(
        user_of(&RouteTable::new(merged.routes), "a").as_deref(),
        Some("new")
    );
}

#[test]
fn merge_of_a_renamed_broken_route_drops_the_old_name() {
    let fx = Fixture::new();
    let before = RouteTable::new(fx.load(&route("a", "x")).routes);
    let merged = merge(
        &before,
        fx.load("[[route]]\nname = \"bad name\"\naddress = \"h:1\"\n"),
    );
    assert_eq!(merged.removed, ["a"]);
    assert!(merged.routes.is_empty());
}

/// Waits until `check` holds for the current table (polling), or fails.
async fn eventually(routes: &SharedRoutes, what: &str, check: impl Fn(&RouteTable) -> bool) {
    for _ in 0..200 {
        if check(&routes.load()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn start(fx: &Fixture, text: &str) -> (SharedRoutes, tokio::task::JoinHandle<()>) {
    let path = fx.write(text);
    let sources = RouteSources::new();
    sources.publish(SOURCE, load(&path).expect("initial load").routes);
    let handle = spawn_watcher(path, sources.clone(), Duration::from_millis(20));
    (sources.table().clone(), handle)
}

#[tokio::test]
async fn watcher_reloads_on_change_and_on_replace() {
    let fx = Fixture::new();
    let (routes, handle) = start(&fx, &route("a", "one"));
    tokio::time::sleep(Duration::from_millis(60)).await;
    fx.write(&format!("{}{}", route("a", "two"), route("b", "b")));
    eventually(&routes, "edit picked up", |t| {
        t.len() == 2 && user_of(t, "a").as_deref() == Some("two")
    })
    .await;

    // An editor that writes a new file and renames it over the old one.
    let tmp = fx.dir.path().join(".routes.toml.swp");
    fs::write(&tmp, route("c", "c")).expect("write");
    fs::rename(&tmp, fx.path()).expect("rename");
    eventually(&routes, "replacement picked up", |t| t.names() == ["c"]).await;
    handle.abort();
}

#[tokio::test]
async fn watcher_follows_a_configmap_style_symlink_swap() {
    let fx = Fixture::new();
    let d = fx.dir.path();
    fs::create_dir(d.join("v1")).expect("mkdir");
    fs::create_dir(d.join("v2")).expect("mkdir");
    fs::write(d.join("v1/routes.toml"), route("a", "v1")).expect("w");
    fs::write(d.join("v2/routes.toml"), route("a", "v2")).expect("w");
    std::os::unix::fs::symlink("v1", d.join("..data")).expect("symlink");
    let link = d.join("cm.toml");
    std::os::unix::fs::symlink("..data/routes.toml", &link).expect("symlink");
    let sources = RouteSources::new();
    sources.publish(SOURCE, load(&link).expect("loads").routes);
    let routes = sources.table().clone();
    let handle = spawn_watcher(link, sources.clone(), Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(60)).await;
    std::os::unix::fs::symlink("v2", d.join("..data_tmp")).expect("symlink");
    fs::rename(d.join("..data_tmp"), d.join("..data")).expect("swap");
    eventually(&routes, "symlink swap picked up", |t| {
        user_of(t, "a").as_deref() == Some("v2")
    })
    .await;
    handle.abort();
}

#[tokio::test]
async fn watcher_keeps_the_table_when_the_file_is_broken_or_gone() {
    let fx = Fixture::new();
    let (routes, handle) = start(&fx, &route("a", "one"));
    let before = routes.load_full();
    fx.write("[[route]\nthis is not toml");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        Arc::ptr_eq(&before, &routes.load_full()),
        "a broken file must not replace the table"
    );
    fs::remove_file(fx.path()).expect("rm");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        Arc::ptr_eq(&before, &routes.load_full()),
        "a missing file must not replace the table"
    );
    fx.write(&route("a", "fixed"));
    eventually(&routes, "fixed file picked up", |t| {
        user_of(t, "a").as_deref() == Some("fixed")
    })
    .await;
    handle.abort();
}

#[tokio::test]
async fn watcher_keeps_the_previous_version_of_a_broken_route() {
    let fx = Fixture::new();
    let (routes, handle) = start(&fx, &format!("{}{}", route("a", "one"), route("b", "b")));
    tokio::time::sleep(Duration::from_millis(60)).await;
    fx.write(&format!(
        "{}{}{}",
        route("a", "has space"),
        route("b", "b2"),
        route("c", "c")
    ));
    eventually(&routes, "reload with one broken route", |t| t.len() == 3).await;
    let table = routes.load();
    assert_eq!(user_of(&table, "a").as_deref(), Some("one"));
    assert_eq!(user_of(&table, "b").as_deref(), Some("b2"));
    handle.abort();
}

#[tokio::test]
async fn watcher_reloads_when_a_key_file_changes() {
    let fx = Fixture::new();
    let keys = fx.dir.path().join("keys/rotating.pub");
    fs::write(&keys, "").expect("w");
    let (routes, handle) = start(
        &fx,
        &format!(
            "{}authorized_keys_file = \"keys/rotating.pub\"\n",
            route("a", "u")
        ),
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    fs::write(&keys, format!("{KEY_A}\n")).expect("w");
    let key = russh::keys::PublicKey::from_openssh(KEY_A).expect("key");
    eventually(&routes, "rotated key picked up", |t| {
        t.routes_for_key(&key).len() == 1
    })
    .await;
    handle.abort();
}
