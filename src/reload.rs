//! When to reload the config: on SIGHUP, and when the config file or a topic profile changes
//! on disk.
//!
//! Changes are found by polling file stamps every two seconds rather than with inotify: it
//! costs a few `stat` calls, needs no extra dependency, and also sees edits that editors make
//! by renaming a new file over the old one and edits through container bind mounts, where
//! inotify events are often lost. A stamp is the file's size, modification time, inode and
//! status-change time: a file moved into place with its old modification time (`cp -p`,
//! `rsync -a`, `touch -r`) or a symlink pointed at another file of the same size and date
//! (NixOS's `/etc`, whose store files are all dated 1970) changes the inode or the change
//! time, which no tool sets back.
//!
//! A change is read once it has held still for [`SETTLE`]: an editor that truncates the file
//! and then writes it, or a tool writing it in pieces, would otherwise have a partial file
//! applied (a config cut short lists fewer sources and may name no `listen`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::Config;

/// How often the files are looked at.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// A change must hold still this long before it is read (an editor may still be writing).
const SETTLE: Duration = Duration::from_millis(500);
/// A file still changing after this long is read as it is then (a log written into the
/// topics folder, say, must not hold reloads back for ever).
const SETTLE_AT_MOST: Duration = Duration::from_secs(10);

/// One file's stamp: size, modification time, device and inode, status-change time.
type FileStamp = (u64, SystemTime, u64, u64, i64, i64);

/// What the watched files look like at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<(PathBuf, Option<FileStamp>)>);

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

/// The stamp of the file `path` leads to (through symlinks).
fn file_meta(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.len(),
        meta.modified().ok()?,
        meta.dev(),
        meta.ino(),
        meta.ctime(),
        meta.ctime_nsec(),
    ))
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
                        // Let the writer finish: the files must hold still for SETTLE.
                        let seen = tokio::time::Instant::now();
                        loop {
                            tokio::time::sleep(SETTLE).await;
                            if !self.watcher.changed() || seen.elapsed() >= SETTLE_AT_MOST {
                                break;
                            }
                        }
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
        std::fs::write(&path, "#\n").unwrap();
        let config = Config::load(&path).unwrap();
        let mut watcher = ConfigWatcher::new(&config);
        assert!(!watcher.changed(), "nothing changed yet");
        std::fs::write(&path, "[server]\n").unwrap();
        assert!(watcher.changed(), "a size change is seen");
        assert!(!watcher.changed(), "and reported once");
        std::fs::create_dir(dir.path().join("topics")).unwrap();
        std::fs::write(dir.path().join("topics/x.toml"), "name = 'x'").unwrap();
        assert!(watcher.changed(), "a new profile is seen");

        // Moved into place with the old file's size and modification time (`cp -p`, `rsync
        // -a`): a new inode.
        let old_time = std::fs::metadata(&path).unwrap().modified().unwrap();
        let staged = dir.path().join("staged.toml");
        std::fs::write(&staged, "[server]\n".replace("server", "sErver")).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .unwrap()
            .set_modified(old_time)
            .unwrap();
        std::fs::rename(&staged, &path).unwrap();
        assert!(watcher.changed(), "same size and time, another file");
        // Rewritten in place, then its time set back (`touch -r`): the change time moved.
        std::thread::sleep(Duration::from_millis(20));
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut &file, b"[Server]\n").unwrap();
        file.set_modified(old_time).unwrap();
        assert!(
            watcher.changed(),
            "same size, inode and time, new change time"
        );
        // A symlink moved to another file of the same size and time (NixOS's /etc).
        let link = dir.path().join("linked.toml");
        let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
        for (file, text) in [(&a, "[server]\n"), (&b, "[sErver]\n")] {
            std::fs::write(file, text).unwrap();
            std::fs::File::options()
                .write(true)
                .open(file)
                .unwrap()
                .set_modified(old_time)
                .unwrap();
        }
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let mut linked = ConfigWatcher {
            config: link.clone(),
            topics: dir.path().join("no-topics"),
            last: Stamp(Vec::new()),
        };
        linked.last = linked.stamp();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&b, &link).unwrap();
        assert!(linked.changed(), "the link leads to another file");
    }

    /// A file written in pieces is read once it holds still, not half-way.
    #[tokio::test]
    async fn a_reload_waits_for_the_file_to_hold_still() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tradefeed.toml");
        std::fs::write(&path, "#\n").unwrap();
        let config = Config::load(&path).unwrap();
        let mut signal = ReloadSignal::new(ConfigWatcher::new(&config));
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                // Pieces 100 ms apart (well within the settle time, even on a loaded box),
                // over 3 s: at least one look-up of the watcher falls among them.
                for n in 1..=30 {
                    std::fs::write(&path, "#\n".repeat(n)).unwrap();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(20), signal.next())
            .await
            .expect("the edit is seen");
        assert!(writer.is_finished(), "read while still being written");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "#\n".repeat(30));
    }

    #[tokio::test]
    async fn an_edit_made_while_a_reload_is_applied_brings_another_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tradefeed.toml");
        std::fs::write(&path, "#\n").unwrap();
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
