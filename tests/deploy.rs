//! The systemd unit in `deploy/`: the directives operators rely on are there, each explained,
//! and `systemd-analyze` accepts it without a warning.
//!
//! `systemd-analyze verify` checks that `ExecStart=`'s binary exists, and
//! `/usr/local/bin/tradefeed` does not on a build machine, so the unit is verified as a temp
//! copy whose `ExecStart=` points at the binary cargo built for this test; nothing else changes.
//! When `systemd-analyze` is missing the checks that need it print a notice and pass (CI
//! installs the `systemd` package, see `.ci/run`).
//!
//! Also the binary itself as deployed: its relocations packed where glibc reads them so.

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

/// The daemon binary's relative relocations are packed (`DT_RELR`, see `build.rs`) where
/// the machine's glibc reads them so: 47,000 of them took 1.1 MiB, resident for as long as
/// the daemon runs. Read from the ELF file's dynamic section.
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
#[test]
fn the_binary_packs_its_relative_relocations_where_glibc_reads_them() {
    let glibc = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .expect("getconf runs");
    let glibc = String::from_utf8_lossy(&glibc.stdout).trim().to_string();
    let version: Vec<u32> = glibc
        .strip_prefix("glibc ")
        .expect("`glibc X.Y`")
        .split('.')
        .map(|n| n.parse().expect("a version number"))
        .collect();
    let elf = std::fs::read(env!("CARGO_BIN_EXE_tradefeed")).expect("the binary reads");
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    // The program headers (e_phoff, e_phentsize, e_phnum), then PT_DYNAMIC's entries.
    let (headers, size, count) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    let dynamic = (0..count)
        .map(|i| headers + i * size)
        .find(|&h| u32::from_le_bytes(elf[h..h + 4].try_into().unwrap()) == 2)
        .expect("a dynamic section");
    let (start, length) = (u64_at(dynamic + 8) as usize, u64_at(dynamic + 32) as usize);
    let entries: Vec<(u64, u64)> = elf[start..start + length]
        .chunks_exact(16)
        .map(|e| {
            let word = |at: usize| u64::from_le_bytes(e[at..at + 8].try_into().unwrap());
            (word(0), word(8))
        })
        .take_while(|&(tag, _)| tag != 0)
        .collect();
    let value = |tag: u64| entries.iter().find(|e| e.0 == tag).map(|e| e.1);
    const DT_RELASZ: u64 = 8;
    const DT_RELR: u64 = 36;
    if version >= vec![2, 36] {
        assert!(value(DT_RELR).is_some(), "packed relocations with {glibc}");
        let unpacked = value(DT_RELASZ).unwrap_or(0);
        assert!(
            unpacked < 64 * 1024,
            "{unpacked} bytes of unpacked relocations"
        );
    } else {
        assert_eq!(
            value(DT_RELR),
            None,
            "{glibc} cannot load packed relocations"
        );
    }
}
