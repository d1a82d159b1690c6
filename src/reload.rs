//! When to reload the config: on SIGHUP, and when the config file or a topic profile changes
//! on disk.
//!
//! Changes are found by polling file stamps (modification time and size) every two seconds
//! rather than with inotify: it costs a few `stat` calls, needs no extra dependency, and also
//! sees edits that editors make by renaming a new file over the old one and edits through
//! container bind mounts, where inotify events are often lost.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::Config;

/// How often the files are looked at.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// A change must hold still this long before it is read (an editor may still be writing).
const SETTLE: Duration = Duration::from_millis(500);

/// What the watched files look like at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<(PathBuf, Option<(SystemTime, u64)>)>);

/// Watches the config file and the topic profiles folder.
#[derive(Debug)]
pub struct ConfigWatcher {
    config: PathBuf,
    topics: PathBuf,
    last: Stamp,
}

impl ConfigWatcher {
    /// Starts watching the files `config` was read from.
    pub fn new(config: &Config) -> ConfigWatcher {
        let mut watcher = ConfigWatcher {
            config: config.path.clone(),
            topics: config.topics_dir.clone(),
            last: Stamp(Vec::new()),
        };
        watcher.last = watcher.stamp();
        watcher
    }

    fn stamp(&self) -> Stamp {
        let mut files = vec![self.config.clone()];
        if let Ok(dir) = std::fs::read_dir(&self.topics) {
            let mut profiles: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
            profiles.sort();
            files.extend(profiles);
        }
        Stamp(
            files
                .into_iter()
                .map(|p| {
                    let meta = file_meta(&p);
                    (p, meta)
                })
                .collect(),
        )
    }

    /// Whether the files changed since the last call (or since `new`).
    pub fn changed(&mut self) -> bool {
        let now = self.stamp();
        if now == self.last {
            return false;
        }
        self.last = now;
        true
    }
}

fn file_meta(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Yields once per reload request: a SIGHUP or a settled change of the watched files.
pub struct ReloadSignal {
    watcher: ConfigWatcher,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl ReloadSignal {
    /// Listens for SIGHUP (on Unix) and watches the files.
    pub fn new(watcher: ConfigWatcher) -> ReloadSignal {
        ReloadSignal {
            watcher,
            #[cfg(unix)]
            hangup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Watches the files of the config in force after a reload (the topics folder may move).
    ///
    /// With the same files, the stamp taken when the reload was requested is kept: it was
    /// taken before the files were read, so an edit made while the reload was reading and
    /// applying them is still seen as a change. (Stamping the files again here would take
    /// that edit as already applied, and the daemon would run on the older config until the
    /// next edit.)
    pub fn rearm(&mut self, config: &Config) {
        if self.watcher.config == config.path && self.watcher.topics == config.topics_dir {
            return;
        }
        self.watcher = ConfigWatcher::new(config);
    }

    /// Waits for the next reload request.
    pub async fn next(&mut self) {
        loop {
            let hangup = async {
                #[cfg(unix)]
                if let Some(h) = self.hangup.as_mut() {
                    h.recv().await;
                    return;
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                () = hangup => {
                    tracing::info!(signal = "SIGHUP", "reload requested");
                    // Take the files as they are now, so the same edit does not reload twice.
                    self.watcher.changed();
                    return;
                }
                () = tokio::time::sleep(POLL_EVERY) => {
                    if self.watcher.changed() {
                        // Let the writer finish, then take the settled state.
                        tokio::time::sleep(SETTLE).await;
                        self.watcher.changed();
                        tracing::info!(path = %self.watcher.config.display(), "config changed on disk; reloading");
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watcher_sees_edits_to_the_config_and_to_new_topic_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tradefeed.toml");
        std::fs::write(&path, "").unwrap();
        let config = Config::load(&path).unwrap();
        let mut watcher = ConfigWatcher::new(&config);
        assert!(!watcher.changed(), "nothing changed yet");
        std::fs::write(&path, "[server]\n").unwrap();
        assert!(watcher.changed(), "a size change is seen");
        assert!(!watcher.changed(), "and reported once");
        std::fs::create_dir(dir.path().join("topics")).unwrap();
        std::fs::write(dir.path().join("topics/x.toml"), "name = 'x'").unwrap();
        assert!(watcher.changed(), "a new profile is seen");
    }

    #[tokio::test]
    async fn an_edit_made_while_a_reload_is_applied_brings_another_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tradefeed.toml");
        std::fs::write(&path, "").unwrap();
        let config = Config::load(&path).unwrap();
        let mut signal = ReloadSignal::new(ConfigWatcher::new(&config));

        std::fs::write(&path, "[server]\n").unwrap();
        tokio::time::timeout(Duration::from_secs(10), signal.next())
            .await
            .expect("the first edit is seen");
        // The daemon reads the config and applies it; meanwhile the file is written again.
        let applied = Config::load(&path).unwrap();
        std::fs::write(&path, "[server]\ntitle = \"edited during the reload\"\n").unwrap();
        signal.rearm(&applied);

        tokio::time::timeout(Duration::from_secs(10), signal.next())
            .await
            .expect("the edit made during the reload is seen, not taken as applied");
        // And that settled edit is reported once.
        assert!(!signal.watcher.changed());
    }
}
