//! The standard `process_*` metrics (what Prometheus' client libraries call
//! the process collector), read from `/proc/self` at each scrape: CPU
//! seconds, resident and virtual memory, open and maximum file descriptors,
//! threads and start time. Values that cannot be read are left out.

use std::fs;

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// What `/proc/self/stat` says, in the units the metrics use.
#[derive(Debug, Default, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    threads: i64,
    /// Since boot, in seconds.
    started_after_boot: f64,
    virtual_bytes: i64,
    resident_bytes: i64,
}

/// Parses `/proc/self/stat` (after the `(comm)`, which may hold spaces).
fn parse_stat(text: &str, ticks: f64, page: i64) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let num = |n: usize| f.get(n - 3)?.parse::<i64>().ok();
    let ticks_of = |n: usize| num(n).map(|t| t as f64 / ticks);
    Some(Stat {
        cpu_seconds: ticks_of(14)? + ticks_of(15)?,
        threads: num(20)?,
        started_after_boot: ticks_of(22)?,
        virtual_bytes: num(23)?,
        resident_bytes: num(24)?.saturating_mul(page),
    })
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the epoch.
fn boot_time(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// A registry holding the process metrics as they are now.
pub(super) fn registry() -> Registry {
    let mut r = Registry::default();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let page = i64::try_from(rustix::param::page_size()).unwrap_or(4096);
    let stat = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| parse_stat(&t, ticks, page));
    if let Some(s) = &stat {
        r.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            ConstCounter::new(s.cpu_seconds),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            ConstGauge::new(s.resident_bytes),
        );
        r.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            ConstGauge::new(s.virtual_bytes),
        );
        r.register(
            "process_threads",
            "Number of OS threads in the process",
            ConstGauge::new(s.threads),
        );
        let boot = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| boot_time(&t));
        if let Some(boot) = boot {
            r.register(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                ConstGauge::new(boot + s.started_after_boot),
            );
        }
    }
    if let Ok(fds) = fs::read_dir("/proc/self/fd") {
        let open = i64::try_from(fds.count()).unwrap_or(i64::MAX);
        r.register(
            "process_open_fds",
            "Number of open file descriptors",
            ConstGauge::new(open),
        );
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(max) = limit.current.and_then(|m| i64::try_from(m).ok()) {
        r.register(
            "process_max_fds",
            "Maximum number of open file descriptors",
            ConstGauge::new(max),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_name_with_spaces_and_parens() {
        let text = "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    1000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let s = parse_stat(text, 100.0, 4096).expect("parses");
        assert_eq!(
            s,
            Stat {
                cpu_seconds: 3.0,
                threads: 7,
                started_after_boot: 10.0,
                virtual_bytes: 104_857_600,
                resident_bytes: 2560 * 4096,
            }
        );
        assert_eq!(parse_stat("garbage", 100.0, 4096), None);
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
    }

    #[test]
    fn this_process_has_every_metric() {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry()).expect("encode");
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_threads",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert!(out.contains(&format!("\n{name} ")), "{name}: {out}");
        }
    }
}
