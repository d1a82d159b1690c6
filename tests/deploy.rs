//! The systemd unit in `deploy/`: the directives operators rely on are there, each explained,
//! and `systemd-analyze` accepts it without a warning.
//!
//! `systemd-analyze verify` checks that `ExecStart=`'s binary exists, and
//! `/usr/local/bin/tradefeed` does not on a build machine, so the unit is verified as a temp
//! copy whose `ExecStart=` points at the binary cargo built for this test; nothing else changes.
//! When `systemd-analyze` is missing the checks that need it print a notice and pass (CI
//! installs the `systemd` package, see `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNIT: &str = include_str!("../deploy/tradefeed.service");
const INSTALLED_BINARY: &str = "/usr/local/bin/tradefeed";

/// `[Service]` lines as (key, value), in order.
fn service_directives() -> Vec<(String, String)> {
    let mut in_service = false;
    let mut out = Vec::new();
    for line in UNIT.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.is_empty() && !line.starts_with('#') {
            let (k, v) = line.split_once('=').expect("directive lines are KEY=VALUE");
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

#[test]
fn the_unit_sets_every_directive_operators_rely_on() {
    let directives = service_directives();
    let has = |key: &str, value: &str| directives.iter().any(|(k, v)| k == key && v == value);
    let required = [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "60"),
        (
            "ExecStart",
            "/usr/local/bin/tradefeed --config /etc/tradefeed/tradefeed.toml run",
        ),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "on-failure"),
        ("RestartSec", "5"),
        ("TimeoutStopSec", "15"),
        (
            "Environment",
            "TRADEFEED_DB=/var/lib/tradefeed/tradefeed.db",
        ),
        ("DynamicUser", "yes"),
        ("StateDirectory", "tradefeed"),
        ("ConfigurationDirectory", "tradefeed"),
        ("UMask", "0077"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallArchitectures", "native"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("CapabilityBoundingSet", ""),
    ];
    for (key, value) in required {
        assert!(has(key, value), "[Service] must set {key}={value}");
    }
    assert!(
        directives.iter().any(|(k, _)| k == "LimitNOFILE"),
        "LimitNOFILE is set"
    );
}

#[test]
fn every_service_directive_has_a_comment_above_it() {
    let lines: Vec<&str> = UNIT.lines().map(str::trim).collect();
    let mut in_service = false;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('[') {
            in_service = *line == "[Service]";
            continue;
        }
        if in_service && !line.is_empty() && !line.starts_with('#') {
            assert!(
                lines[i - 1].starts_with('#'),
                "line {}: {line} has no comment above it",
                i + 1
            );
        }
    }
}

/// Runs `systemd-analyze ARGS`, or returns `None` (with a notice) when it is not installed.
fn systemd_analyze(args: &[&str]) -> Option<Output> {
    match Command::new("systemd-analyze").args(args).output() {
        Ok(output) => Some(output),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "notice: systemd-analyze not found (Debian package `systemd`); \
                 skipping the unit verification"
            );
            None
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

/// Writes the unit into `dir` with `ExecStart=` pointing at the freshly built binary, plus
/// `extra` lines at the end of `[Service]`, and returns its path.
fn unit_for_this_build(dir: &Path, extra: &str) -> PathBuf {
    assert!(UNIT.contains(&format!("ExecStart={INSTALLED_BINARY} ")));
    let unit = UNIT
        .replace(
            &format!("ExecStart={INSTALLED_BINARY} "),
            &format!("ExecStart={} ", env!("CARGO_BIN_EXE_tradefeed")),
        )
        .replace("\n[Install]", &format!("{extra}\n[Install]"));
    // The unit name is what systemd reports; keep it.
    let path = dir.join("tradefeed.service");
    std::fs::write(&path, unit).unwrap();
    path
}

/// stderr lines that are about our unit (other units on the machine may warn too).
fn warnings_about_our_unit(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.contains("tradefeed"))
        .map(str::to_string)
        .collect()
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let good = unit_for_this_build(dir.path(), "");
    let Some(output) = systemd_analyze(&["verify", good.to_str().unwrap()]) else {
        return;
    };
    assert!(
        output.status.success(),
        "verify failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(warnings_about_our_unit(&output), Vec::<String>::new());

    // The same check catches a mistake, so a clean result above means something.
    let bad = unit_for_this_build(dir.path(), "ProtectKernelTunabels=yes\n");
    let output = systemd_analyze(&["verify", bad.to_str().unwrap()]).unwrap();
    let warnings = warnings_about_our_unit(&output);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Unknown key") && w.contains("ProtectKernelTunabels")),
        "{warnings:?}"
    );
}

#[test]
fn systemd_analyze_security_rates_the_unit_as_well_confined() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path(), "");
    let Some(output) = systemd_analyze(&["security", "--offline=yes", unit.to_str().unwrap()])
    else {
        return;
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && text.contains("--offline") {
        eprintln!("notice: this systemd-analyze has no offline security check; skipping");
        return;
    }
    // "→ Overall exposure level for tradefeed.service: 1.2 OK" (0 best, 10 worst).
    let exposure: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for tradefeed.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    eprintln!("systemd-analyze security exposure: {exposure}");
    assert!(exposure <= 2.0, "exposure {exposure} (want ≤ 2.0): {text}");
}

#[test]
fn exec_start_is_a_command_line_the_binary_accepts() {
    use clap::Parser;
    let exec_start = service_directives()
        .into_iter()
        .find(|(k, _)| k == "ExecStart")
        .map(|(_, v)| v)
        .unwrap();
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    assert_eq!(words[0], INSTALLED_BINARY);
    let cli = tradefeed::cli::Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(cli.command, tradefeed::cli::Command::Run));
    assert_eq!(cli.config, Path::new("/etc/tradefeed/tradefeed.toml"));
}

#[test]
fn the_installed_layout_from_the_readme_passes_check_with_the_units_database_path() {
    // README: the config and the topics folder are copied side by side into /etc/tradefeed.
    let etc = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        repo.join("config/tradefeed.toml"),
        etc.path().join("tradefeed.toml"),
    )
    .unwrap();
    std::fs::create_dir(etc.path().join("topics")).unwrap();
    for entry in std::fs::read_dir(repo.join("config/topics")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            etc.path().join("topics").join(entry.file_name()),
        )
        .unwrap();
    }
    let db = service_directives()
        .into_iter()
        .find_map(|(k, v)| {
            (k == "Environment")
                .then(|| v.strip_prefix("TRADEFEED_DB=").map(str::to_string))
                .flatten()
        })
        .expect("the unit sets TRADEFEED_DB");
    let out = Command::new(env!("CARGO_BIN_EXE_tradefeed"))
        .arg("--config")
        .arg(etc.path().join("tradefeed.toml"))
        .arg("check")
        .env("TRADEFEED_DB", &db)
        .env_remove("TRADEFEED_LISTEN")
        .env_remove("TRADEFEED_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{out:?}");
    assert!(out.status.success(), "{all}");
    assert!(stdout.contains(&format!("database {db}")), "{all}");
    assert!(
        stdout.contains("trade-policy"),
        "the copied topic profiles load: {all}"
    );
}
