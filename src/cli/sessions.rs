//! `switchboard sessions [list|kill ID]`: the live sessions of one gateway
//! through its admin endpoint's sessions API — a table, or the API's JSON
//! with `--json` — and ending one. The endpoint is `--admin URL`, else the
//! configuration's `admin.listen`; the token `--token-file F`, else the
//! configuration's `admin.read_token_file` (listing) or `write_token_file`
//! (ending), when set.

mod http;
mod table;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, anyhow};
use zeroize::Zeroizing;

use super::{ConfigArg, Error};
use crate::config::Config;
use crate::ops::sessions::{SessionInfo, SessionList};
use http::{AdminUrl, Answer};

/// `sessions` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// `list` the live sessions, or `kill` one (its user is told and disconnected).
    #[arg(value_enum, default_value_t = Action::List)]
    pub action: Action,
    /// The session to end (an ID from `list`).
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    /// The admin endpoint [default: http://<admin.listen>, a wildcard address as loopback].
    #[arg(long, value_name = "URL")]
    pub admin: Option<String>,
    /// File holding the bearer token [default: admin.read_token_file for list,
    /// admin.write_token_file for kill, when configured].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    List,
    Kill,
}

/// Lists or ends sessions; a refusal or an unreachable endpoint is exit 1.
pub fn run(args: &Args, config: &Config) -> Result<(), Error> {
    let url = match &args.admin {
        Some(text) => AdminUrl::parse(text).map_err(Error::Invalid)?,
        None => AdminUrl::of_listen(config.admin.listen),
    };
    let token = token(args, config).map_err(Error::Invalid)?;
    let token = token.as_ref().map(|t| t.as_slice());
    match (args.action, &args.id) {
        (Action::List, None) => list(&url, token, args.json).map_err(Error::Runtime),
        (Action::Kill, Some(id)) if is_session_id(id) => {
            kill(&url, token, id, args.json).map_err(Error::Runtime)
        }
        (Action::Kill, Some(id)) => Err(Error::Invalid(anyhow!(
            "{id:?} is not a session ID (16 hex digits, from `switchboard sessions list`)"
        ))),
        (Action::List, Some(id)) => Err(Error::Invalid(anyhow!(
            "`list` takes no ID (got {id:?}); to end a session: switchboard sessions kill ID"
        ))),
        (Action::Kill, None) => Err(Error::Invalid(anyhow!(
            "`kill` needs the session's ID (from `switchboard sessions list`)"
        ))),
    }
}

fn is_session_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn list(url: &AdminUrl, token: Option<&[u8]>, json: bool) -> anyhow::Result<()> {
    let answer = ok(url, http::request(url, "GET", "/sessions", token)?)?;
    if json {
        print!("{}", String::from_utf8_lossy(&answer.body));
        return Ok(());
    }
    let list: SessionList = serde_json::from_slice(&answer.body)
        .with_context(|| format!("{url}/sessions did not answer a session list"))?;
    print!("{}", table::render(&list, SystemTime::now()));
    Ok(())
}

fn kill(url: &AdminUrl, token: Option<&[u8]>, id: &str, json: bool) -> anyhow::Result<()> {
    let path = format!("/sessions/{id}/kill");
    let answer = ok(url, http::request(url, "POST", &path, token)?)?;
    if json {
        print!("{}", String::from_utf8_lossy(&answer.body));
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Killed {
        killed: SessionInfo,
    }
    let killed: Killed = serde_json::from_slice(&answer.body)
        .with_context(|| format!("{url}{path} did not answer the ended session"))?;
    let s = killed.killed;
    println!(
        "ended session {} (client {}:{}, route {}, user {}); its user was told",
        s.id,
        s.client_address,
        s.client_port,
        s.route.as_deref().unwrap_or("-"),
        s.user.as_deref().unwrap_or("-"),
    );
    Ok(())
}

/// The answer when it is a success; else an error with the gateway's one-line reason.
fn ok(url: &AdminUrl, answer: Answer) -> anyhow::Result<Answer> {
    if (200..300).contains(&answer.status) {
        return Ok(answer);
    }
    let body = String::from_utf8_lossy(&answer.body);
    let reason: String = body
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    Err(anyhow!("{url} answered {}: {reason}", answer.status))
}

/// The token to send: `--token-file`, else the configured file for the action.
fn token(args: &Args, config: &Config) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    let a = &config.admin;
    let (path, field) = match (&args.token_file, args.action) {
        (Some(path), _) => (Some(path.as_path()), "--token-file"),
        (None, Action::List) => match (&a.read_token_file, &a.write_token_file) {
            (Some(read), _) => (Some(read.as_path()), "admin.read_token_file"),
            (None, write) => (write.as_deref(), "admin.write_token_file"),
        },
        (None, Action::Kill) => (a.write_token_file.as_deref(), "admin.write_token_file"),
    };
    path.map(|p| read_token(p, field)).transpose()
}

fn read_token(path: &Path, field: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let raw = Zeroizing::new(
        std::fs::read(path).with_context(|| format!("{field}: cannot read {}", path.display()))?,
    );
    let token = raw.trim_ascii();
    if token.is_empty() {
        return Err(anyhow!("{field}: {} holds no token", path.display()));
    }
    Ok(Zeroizing::new(token.to_vec()))
}
