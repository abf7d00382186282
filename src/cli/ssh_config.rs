//! `switchboard ssh-config ROUTE`: the `~/.ssh/config` stanzas a user pastes
//! to reach ROUTE, one per mode (key, agent, jump; SPEC §5).
//!
//! Key and agent mode put the target in the username (`User root@alice-ws`,
//! HostName = the gateway): OpenSSH splits `user@host` at the last `@`, and
//! in `User` the whole string is sent as is. Jump mode names the route as the
//! HostName and lets `ProxyJump` carry the connection, end to end.
//!
//! ROUTE is looked up in the routes file first: a route it does not have is
//! a warning and exit 1 with nothing printed (like `kubectl get` of a missing
//! object), unless the file cannot be read or Kubernetes may hold the route,
//! where the stanzas are printed with a warning that ROUTE was not checked.

use anyhow::anyhow;

use super::{ConfigArg, Error, host_port};
use crate::config::Config;
use crate::config::text::closest;
use crate::routes::file;

/// Shown when the gateway's public name is unknown (wildcard listen address).
const PLACEHOLDER_HOST: &str = "gateway.example.com";

/// `ssh-config` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The route (box) to reach, e.g. alice-ws.
    pub route: String,
    /// The gateway as users reach it [default: from the first listen address].
    #[arg(long, value_name = "HOST:PORT")]
    pub gateway: Option<String>,
    /// Login user on the box [default: the route's `user`].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// Prints the stanzas on stdout.
pub fn run(args: &Args, config: &Config) -> Result<(), Error> {
    check_word("ROUTE", &args.route)?;
    if let Some(user) = &args.user {
        check_word("--user", user)?;
    }
    let (host, port, guessed) = match &args.gateway {
        Some(g) => {
            let (host, port) = split_host_port(g).map_err(Error::Invalid)?;
            (host, port, false)
        }
        None => {
            let addr = config
                .server
                .listen
                .first()
                .ok_or_else(|| Error::Invalid(anyhow!("no listen address")))?;
            let unspecified = addr.ip().is_unspecified();
            let host = if unspecified {
                PLACEHOLDER_HOST.to_owned()
            } else {
                addr.ip().to_string()
            };
            (host, addr.port(), unspecified)
        }
    };
    if let Some(warning) = lookup(&args.route, config)? {
        eprintln!("warning: {warning}");
    }
    print!(
        "{}",
        stanzas(args, &config.routing.target_separator, &host, port, guessed)
    );
    Ok(())
}

fn stanzas(args: &Args, separator: &str, host: &str, port: u16, guessed: bool) -> String {
    let route = &args.route;
    let login = args.user.as_deref().unwrap_or("");
    let gw_user = format!("{login}{separator}{route}");
    let jump_host = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut out = format!(
        "# ~/.ssh/config stanzas for {route} through the gateway {jump_host}; keep the one you need.\n"
    );
    if guessed {
        out += &format!(
            "# Replace {PLACEHOLDER_HOST} with the gateway's public name (or pass --gateway).\n"
        );
    }
    if args.user.is_none() {
        out += &format!(
            "# \"{gw_user}\" logs in as the route's configured user; pass --user to choose.\n"
        );
    }
    out += &format!(
        "\n# Key mode: your key is registered for {route} at the gateway.   ssh {route}\n\
         Host {route}\n    HostName {host}\n    Port {port}\n    User {gw_user}\n"
    );
    out += &format!(
        "\n# Agent mode: the box itself accepts your key; the gateway logs in with your\n\
         # forwarded agent.   ssh {route}-agent\n\
         Host {route}-agent\n    HostName {host}\n    Port {port}\n    User {gw_user}\n    ForwardAgent yes\n"
    );
    out += &format!(
        "\n# Jump mode: end-to-end SSH with the box; the gateway only carries bytes\n\
         # (known_hosts records the box's own key as \"{route}\").   ssh {route}-jump\n\
         Host {route}-jump\n    HostName {route}\n"
    );
    match &args.user {
        Some(user) => out += &format!("    User {user}\n"),
        None => out += "    # User <login on the box>   (default: your local user name)\n",
    }
    out += &format!("    ProxyJump {jump_host}\n");
    out
}

/// Whether ROUTE exists: `Err` (exit 1) when the route sources are readable
/// and none has it; a warning when it could not be checked or is broken.
fn lookup(route: &str, config: &Config) -> Result<Option<String>, Error> {
    let path = &config.sources.file.path;
    let load = match file::load(path) {
        Ok(load) => load,
        Err(e) => return Ok(Some(format!("{route} not checked: {e}"))),
    };
    if load.routes.iter().any(|r| r.name == route) {
        return Ok(None);
    }
    if let Some(e) = load
        .errors
        .iter()
        .find(|e| e.route.as_deref() == Some(route))
    {
        return Ok(Some(format!(
            "route {route:?} is broken and not served until fixed: {e}"
        )));
    }
    if config.sources.kubernetes.enabled {
        return Ok(Some(format!(
            "{route} is not in {}; not checked in Kubernetes (sources.kubernetes)",
            path.display()
        )));
    }
    let names = load.routes.iter().map(|r| r.name.as_str());
    let hint = match closest(route, names.clone()) {
        Some(near) => format!("; did you mean {near}?"),
        None if load.routes.is_empty() => format!("; {} has no routes", path.display()),
        None => {
            let mut list: Vec<&str> = names.take(10).collect();
            if load.routes.len() > list.len() {
                list.push("…");
            }
            format!("; its routes: {}", list.join(", "))
        }
    };
    eprintln!("warning: no route {route:?} in {}{hint}", path.display());
    Err(Error::Runtime(anyhow!(
        "unknown route {route:?}: no ~/.ssh/config stanzas printed"
    )))
}

/// Refuses values that would break or change the meaning of a config line.
fn check_word(what: &str, value: &str) -> Result<(), Error> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || "\"'#*?!,%".contains(c);
    if value.is_empty() || value.chars().any(bad) {
        return Err(Error::Invalid(anyhow!(
            "{what} `{value}` cannot be written into ~/.ssh/config"
        )));
    }
    Ok(())
}

/// `host:port`, `[v6]:port`, or `host` (port 22).
fn split_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = host_port::split(s)
        .ok_or_else(|| anyhow!("--gateway `{s}`: expected HOST:PORT, e.g. gw.example.com:2233"))?;
    Ok((host.to_owned(), port.unwrap_or(22)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(user: Option<&str>) -> Args {
        Args {
            route: "alice-ws".into(),
            gateway: None,
            user: user.map(Into::into),
            config: ConfigArg { config: None },
        }
    }

    #[test]
    fn gateway_forms() {
        assert_eq!(split_host_port("gw:2233").expect("ok"), ("gw".into(), 2233));
        assert_eq!(split_host_port("gw").expect("ok"), ("gw".into(), 22));
        assert_eq!(
            split_host_port("[::1]:2233").expect("ok"),
            ("::1".into(), 2233)
        );
        assert_eq!(split_host_port("::1").expect("ok"), ("::1".into(), 22));
        assert!(split_host_port("gw:port").is_err());
    }

    #[test]
    fn stanzas_for_each_mode() {
        let text = stanzas(&args(Some("root")), "@", "gw.example.com", 2233, false);
        assert!(text.contains(
            "Host alice-ws\n    HostName gw.example.com\n    Port 2233\n    User root@alice-ws\n"
        ));
        assert!(text.contains("Host alice-ws-agent\n"));
        assert!(text.contains("    ForwardAgent yes\n"));
        assert!(text.contains("Host alice-ws-jump\n    HostName alice-ws\n    User root\n    ProxyJump gw.example.com:2233\n"));
    }

    #[test]
    fn no_user_means_the_routes_user() {
        let text = stanzas(&args(None), "+", "10.0.0.1", 22, false);
        assert!(text.contains("    User +alice-ws\n"), "{text}");
    }

    #[test]
    fn unsafe_words_are_refused() {
        assert!(check_word("ROUTE", "alice ws").is_err());
        assert!(check_word("ROUTE", "*").is_err());
        assert!(check_word("ROUTE", "alice-ws.team").is_ok());
    }
}
