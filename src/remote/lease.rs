//! Leases on a bucket: how `gc` and the writers of a bucket keep apart where there is
//! no OS lock to share.
//!
//! A writer (a push, a log, a sync sending there) writes a lease of its own,
//! `gc/writers/ID`, *then* looks for the collector's lease, `gc/collector`; it goes on
//! only when there is none (or an abandoned one), and deletes its lease once its last
//! record is published. A `gc` writes `gc/collector` create-only, *then* lists the
//! writers' leases and waits until none is left. The bucket is strongly consistent, so
//! of a writer and a `gc` starting at once, at least one sees the other's lease: the
//! writer waits, or the `gc` waits for the writer.
//!
//! A process killed with its lease held leaves it behind. Every lease says how long it
//! lives (`ttl_s`), and its holder rewrites it, compare-and-swap, many times within
//! that life. A lease is abandoned when it was last written longer than its life ago
//! by the bucket's clock, or when an observer saw it unchanged for that long. A holder
//! acts (publishes a record, deletes an object) only while the start of its last
//! renewal is less than three fifths of the life ago, so whatever it sent lands before
//! anyone may take its lease as abandoned; a holder that went silent for that long (a
//! machine asleep, a stalled network) has lost its lease for good and stops.
//! docs/lifecycle.md gives the whole argument.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{Created, Fetched, Remote, Swap};
use crate::error::Failure;
use crate::store::keys::{GC_COLLECTOR, GC_WRITERS};

/// The life of the leases this process writes, unless `MREG_LEASE_SECONDS` says.
pub const DEFAULT_LIFE: Duration = Duration::from_secs(300);

/// The shortest and longest life a lease may declare; a lease that declares none
/// readable is given the longest.
const LIFE_RANGE: (u64, u64) = (2, 3600);

/// The largest lease read: leases are a few hundred bytes; a larger key under `gc/` is
/// no lease of mreg's and is not waited for.
const LEASE_LIMIT: u64 = 64 * 1024;

/// The most writer leases a `gc` reads before refusing to go on.
const MAX_WRITERS: usize = 10_000;

/// Returns a factory of handles on the same remote, for a lease's renewal thread.
pub type Handles<'a> = &'a dyn Fn() -> Box<dyn Remote>;

/// Returns the life of the leases this process writes: `MREG_LEASE_SECONDS` (2 to
/// 3600), else five minutes. Each lease carries its own life, so readers never need to
/// agree with its writer's setting.
pub fn own_life() -> Result<Duration> {
    match std::env::var("MREG_LEASE_SECONDS") {
        Ok(text) if !text.is_empty() => match text.parse::<u64>() {
            Ok(s) if (LIFE_RANGE.0..=LIFE_RANGE.1).contains(&s) => Ok(Duration::from_secs(s)),
            _ => Err(Failure::usage(format!(
                "MREG_LEASE_SECONDS={text:?} is not a whole number of seconds from {} to {}",
                LIFE_RANGE.0, LIFE_RANGE.1
            ))
            .into()),
        },
        _ => Ok(DEFAULT_LIFE),
    }
}

/// How often a holder rewrites its lease: thirty times in its life.
fn renew_every(life: Duration) -> Duration {
    (life / 30).max(Duration::from_millis(50))
}

/// How long after the start of its last renewal a holder still acts: three fifths of
/// the life. The other two fifths are for a request already sent (its retries
/// included) to land.
fn act_window(life: Duration) -> Duration {
    life * 3 / 5
}

/// How often a waiting process looks again.
fn poll(life: Duration) -> Duration {
    (life / 100).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

/// A lease as stored: who holds it, for what, and how long it lives unrenewed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Text {
    /// `writer` or `collector`.
    kind: String,
    /// `user@host pid N`.
    holder: String,
    /// The command line, secrets masked.
    command: String,
    /// When it was taken (RFC 3339, UTC, the holder's clock).
    since: String,
    /// Seconds it lives without a renewal.
    ttl_s: u64,
    /// Counts renewals, so that each one changes the bytes (and the tag).
    renewal: u64,
}

impl Text {
    fn new(kind: &str, life: Duration) -> Text {
        Text {
            kind: kind.to_owned(),
            holder: format!("{} pid {}", crate::clock::actor(), std::process::id()),
            command: crate::lineage::this_command(),
            since: crate::clock::format_time(SystemTime::now()),
            ttl_s: life.as_secs().max(1),
            renewal: 0,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        toml::to_string(self)
            .expect("a lease always serializes")
            .into_bytes()
    }

    /// Parses a lease read from the bucket, if it is one.
    fn parse(bytes: &[u8]) -> Option<Text> {
        toml::from_str(std::str::from_utf8(bytes).ok()?).ok()
    }
}

/// Returns the life a stored lease declares, within the bounds; the default life for
/// one that does not parse (no mreg wrote it, so none renews it either).
fn life_of(bytes: &[u8]) -> Duration {
    let secs = Text::parse(bytes).map_or(DEFAULT_LIFE.as_secs(), |t| t.ttl_s);
    Duration::from_secs(secs.clamp(LIFE_RANGE.0, LIFE_RANGE.1))
}

/// Returns who holds a stored lease, for messages.
fn describe(key: &str, bytes: &[u8]) -> String {
    match Text::parse(bytes) {
        Some(t) => crate::lineage::mask_text(&format!(
            "{} ({}, since {}; lease {key})",
            t.holder, t.command, t.since
        )),
        None => format!("a holder whose lease {key} does not read (delete it if no mreg wrote it)"),
    }
}

/// Reads the collector's lease, or `None` when there is none. A key there too large
/// for a lease is no lease of mreg's and reads as `None` (a `gc` replaces it).
fn collector_lease(remote: &dyn Remote) -> Result<Option<Fetched>> {
    match remote.get(GC_COLLECTOR) {
        Ok(found) => Ok(found.filter(|f| f.bytes.len() as u64 <= LEASE_LIMIT)),
        Err(err) => match remote.size(GC_COLLECTOR)? {
            Some(len) if len > LEASE_LIMIT => Ok(None),
            _ => Err(err),
        },
    }
}

/// What an observer saw of other holders' leases: each key's tag, and since when.
#[derive(Default)]
pub struct Watch {
    seen: HashMap<String, (String, Instant)>,
}

impl Watch {
    /// Returns whether the lease `fetched` at `key` is abandoned: written longer ago
    /// than its life by the bucket's clock (`now`, when known), or seen unchanged by
    /// this observer for that long.
    pub fn abandoned(&mut self, key: &str, fetched: &Fetched, now: Option<SystemTime>) -> bool {
        let life = life_of(&fetched.bytes);
        if let (Some(now), Some(written)) = (now, fetched.modified)
            && now.duration_since(written).is_ok_and(|age| age > life)
        {
            return true;
        }
        let entry = self
            .seen
            .entry(key.to_owned())
            .or_insert_with(|| (fetched.tag.clone(), Instant::now()));
        if entry.0 != fetched.tag {
            *entry = (fetched.tag.clone(), Instant::now());
        }
        entry.1.elapsed() >= life
    }
}

/// The state a holder keeps of its lease.
struct State {
    /// The bytes last written, and their tag.
    bytes: Vec<u8>,
    tag: String,
    /// When the last renewal known to have landed started ([`crate::clock::since_boot`]).
    last_start: Duration,
    /// A renewal whose reply was lost: its bytes and when it started.
    pending: Option<(Vec<u8>, Duration)>,
    /// The bucket's clock at the last renewal read back.
    server_now: Option<SystemTime>,
    /// Why the lease was lost, once it was.
    lost: Option<String>,
}

/// What a held lease's renewal thread shares with its holder.
struct Inner {
    remote: Box<dyn Remote>,
    key: String,
    life: Duration,
    text: Mutex<Text>,
    state: Mutex<State>,
}

impl Inner {
    /// Rewrites the lease once, compare-and-swap; a lease found changed, gone, or
    /// renewed after too long a silence is lost for good.
    fn renew(&self) {
        let start = crate::clock::since_boot();
        let Ok(found) = self.remote.get(&self.key) else {
            return;
        };
        let mut state = self.state.lock().expect("lease state");
        if state.lost.is_some() {
            return;
        }
        let Some(found) = found else {
            state.lost = Some("it was deleted, as abandoned".to_owned());
            return;
        };
        if found.bytes != state.bytes {
            match state.pending.take() {
                Some((bytes, started)) if bytes == found.bytes => {
                    self.landed(&mut state, bytes, found.tag.clone(), started, start);
                }
                _ => {
                    state.lost = Some("another process took it over, as abandoned".to_owned());
                    return;
                }
            }
        }
        if state.lost.is_some() {
            return;
        }
        let bytes = {
            let mut text = self.text.lock().expect("lease text");
            text.renewal += 1;
            text.bytes()
        };
        let expected = found.tag.clone();
        drop(state);
        let swapped = self.remote.swap(&self.key, Some(&expected), &bytes);
        let mut state = self.state.lock().expect("lease state");
        match swapped {
            Ok(Swap::Done(())) => match self.remote.get(&self.key) {
                Ok(Some(now)) if now.bytes == bytes => {
                    let end = crate::clock::since_boot();
                    self.landed(&mut state, bytes, now.tag.clone(), start, end);
                    state.server_now = now.modified.or(state.server_now);
                }
                Ok(_) => state.lost = Some("another process took it over, as abandoned".to_owned()),
                Err(_) => state.pending = Some((bytes, start)),
            },
            Ok(Swap::Moved) => {
                state.lost = Some("another process took it over, as abandoned".to_owned());
            }
            Err(_) => state.pending = Some((bytes, start)),
        }
    }

    /// Records a renewal that started at `start` as landed (known at `end`): lost when
    /// it came too long after the one before, which others may have taken for dead.
    fn landed(
        &self,
        state: &mut State,
        bytes: Vec<u8>,
        tag: String,
        start: Duration,
        end: Duration,
    ) {
        if end.saturating_sub(state.last_start) >= act_window(self.life) {
            state.lost = Some(format!(
                "it went {} s without a renewal, so others may have taken it for abandoned",
                end.saturating_sub(state.last_start).as_secs()
            ));
            return;
        }
        state.bytes = bytes;
        state.tag = tag;
        state.last_start = start.max(state.last_start);
    }

    /// Fails unless the lease may still be acted on.
    fn check(&self) -> Result<()> {
        let mut state = self.state.lock().expect("lease state");
        let silent = crate::clock::since_boot().saturating_sub(state.last_start);
        if state.lost.is_none() && silent >= act_window(self.life) {
            state.lost = Some(format!(
                "it went {} s without a renewal, so others may take it for abandoned",
                silent.as_secs()
            ));
        }
        match &state.lost {
            None => Ok(()),
            Some(why) => Err(Failure::error(format!(
                "lost the lease {} on {}: {why}; nothing more was written",
                self.key,
                self.remote.url()
            ))
            .hint("run the command again")
            .into()),
        }
    }
}

/// A lease this process holds, rewritten in the background until it is dropped, and
/// then deleted (unless it was lost, when it may be someone else's by then).
pub struct Held {
    inner: Arc<Inner>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Held {
    /// Writes a new lease at `key`, create-only; `None` when the key exists.
    fn create(
        remote: Box<dyn Remote>,
        key: &str,
        kind: &str,
        life: Duration,
    ) -> Result<Option<Held>> {
        let text = Text::new(kind, life);
        let bytes = text.bytes();
        let start = crate::clock::since_boot();
        if remote.create(key, &bytes)? == Created::Exists {
            return Ok(None);
        }
        Held::started(remote, key, text, bytes, start).map(Some)
    }

    /// Takes over the abandoned lease at `key` whose tag is `tag`; `None` when it
    /// changed meanwhile.
    fn take_over(
        remote: Box<dyn Remote>,
        key: &str,
        kind: &str,
        life: Duration,
        tag: &str,
    ) -> Result<Option<Held>> {
        let text = Text::new(kind, life);
        let bytes = text.bytes();
        let start = crate::clock::since_boot();
        if remote.swap(key, Some(tag), &bytes)? == Swap::Moved {
            return Ok(None);
        }
        Held::started(remote, key, text, bytes, start).map(Some)
    }

    /// Reads back a lease just written and starts renewing it.
    fn started(
        remote: Box<dyn Remote>,
        key: &str,
        text: Text,
        bytes: Vec<u8>,
        start: Duration,
    ) -> Result<Held> {
        let life = Duration::from_secs(text.ttl_s);
        let back = remote
            .get(key)
            .with_context(|| format!("reading back the lease {key}"))?;
        let Some(back) = back.filter(|b| b.bytes == bytes) else {
            return Err(Failure::conflict(format!(
                "the lease {key} on {} changed as soon as it was written",
                remote.url()
            ))
            .hint("run the command again")
            .into());
        };
        let inner = Arc::new(Inner {
            key: key.to_owned(),
            life,
            text: Mutex::new(text),
            state: Mutex::new(State {
                bytes,
                tag: back.tag,
                last_start: start,
                pending: None,
                server_now: back.modified,
                lost: None,
            }),
            remote,
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let renewing = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("mreg-lease".to_owned())
            .spawn(move || {
                let every = renew_every(renewing.life);
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    renewing.renew();
                }
            })
            .context("starting the thread that renews a lease")?;
        Ok(Held {
            inner,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Fails unless the lease may still be acted on: held, renewed recently enough.
    pub fn check(&self) -> Result<()> {
        self.inner.check()
    }

    /// Returns the bucket's clock at the last renewal read back, when it says.
    pub fn server_now(&self) -> Option<SystemTime> {
        self.inner.state.lock().expect("lease state").server_now
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if self.inner.check().is_ok() {
            let _ = self.inner.remote.delete(&self.inner.key);
        }
    }
}

/// Returns a new random lease id: 32 hex digits.
fn new_id() -> String {
    crate::store::registry::new_registry_id()
}

/// The writer leases this process holds, by remote URL: how many guards share each.
type Table = Mutex<HashMap<String, (usize, Arc<Held>)>>;

/// Returns the writer leases this process holds.
fn writers() -> &'static Table {
    static WRITERS: OnceLock<Table> = OnceLock::new();
    WRITERS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// This process's share of its writer lease on one remote; the lease is released
/// when the last share is dropped.
pub struct Writing {
    url: String,
}

impl Drop for Writing {
    fn drop(&mut self) {
        let last = {
            let mut table = writers().lock().expect("lease table");
            match table.get_mut(&self.url) {
                Some((count, _)) if *count > 1 => {
                    *count -= 1;
                    None
                }
                Some(_) => table.remove(&self.url).map(|(_, held)| held),
                None => None,
            }
        };
        drop(last);
    }
}

/// Takes this process's writer lease on `remote` (later calls share the first),
/// waiting while a `gc` that is alive collects it; `on_wait` hears once why it waits.
pub fn writing(remote: &dyn Remote, handles: Handles, on_wait: &dyn Fn(&str)) -> Result<Writing> {
    writing_for(remote, handles, on_wait, own_life()?)
}

/// [`writing`], with leases that live `life`.
fn writing_for(
    remote: &dyn Remote,
    handles: Handles,
    on_wait: &dyn Fn(&str),
    life: Duration,
) -> Result<Writing> {
    let url = remote.url().to_owned();
    let share = || Writing { url: url.clone() };
    if let Some((count, _)) = writers().lock().expect("lease table").get_mut(&url) {
        *count += 1;
        return Ok(share());
    }
    let held = acquire(remote, handles, on_wait, life)?;
    let mut table = writers().lock().expect("lease table");
    match table.get_mut(&url) {
        // Another thread of this process took one meanwhile: share it, drop ours.
        Some((count, _)) => {
            *count += 1;
            drop(table);
            drop(held);
        }
        None => {
            table.insert(url.clone(), (1, Arc::new(held)));
        }
    }
    Ok(share())
}

/// Writes a new writer lease on `remote` and returns it once no `gc` that is alive
/// collects the remote.
fn acquire(
    remote: &dyn Remote,
    handles: Handles,
    on_wait: &dyn Fn(&str),
    life: Duration,
) -> Result<Held> {
    let mut watch = Watch::default();
    let mut told = false;
    let url = remote.url();
    let held = loop {
        let key = format!("{GC_WRITERS}{}", new_id());
        let Some(held) = Held::create(handles(), &key, "writer", life)? else {
            continue;
        };
        match collector_lease(remote)? {
            None => break held,
            Some(gc) if watch.abandoned(GC_COLLECTOR, &gc, held.server_now()) => break held,
            Some(gc) => {
                drop(held);
                if !told {
                    on_wait(&format!(
                        "Waiting for the gc of {url} by {} to finish.",
                        describe(GC_COLLECTOR, &gc.bytes)
                    ));
                    told = true;
                }
                std::thread::sleep(poll(life_of(&gc.bytes)));
            }
        }
    };
    Ok(held)
}

/// Takes a new writer lease on `remote` in place of this process's lost one, waiting
/// for any `gc` alive to finish: what a writer does when its lease was lost while a
/// record of its was on its way, before it makes sure the objects the record names
/// are there.
pub fn retake_writer(remote: &dyn Remote, handles: Handles, on_wait: &dyn Fn(&str)) -> Result<()> {
    let held = Arc::new(acquire(remote, handles, on_wait, own_life()?)?);
    let old = {
        let mut table = writers().lock().expect("lease table");
        if let Some((_, slot)) = table.get_mut(remote.url()) {
            Some(std::mem::replace(slot, held))
        } else {
            table.insert(remote.url().to_owned(), (1, held));
            None
        }
    };
    drop(old);
    Ok(())
}

/// The collector's leases this process holds, by remote URL.
fn collectors() -> &'static Mutex<HashMap<String, std::sync::Weak<Inner>>> {
    static COLLECTORS: OnceLock<Mutex<HashMap<String, std::sync::Weak<Inner>>>> = OnceLock::new();
    COLLECTORS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Fails when this process holds a lease on the remote at `url` (a writer's, or the
/// collector's) that may no longer be acted on: checked before each attempt of each
/// record create and deletion there. A process holding none (a promotion) is not
/// asked.
pub fn require_held(url: &str) -> Result<()> {
    let held = writers()
        .lock()
        .expect("lease table")
        .get(url)
        .map(|(_, held)| Arc::clone(held));
    if let Some(held) = held {
        held.check()?;
    }
    let collector = collectors()
        .lock()
        .expect("lease table")
        .get(url)
        .and_then(std::sync::Weak::upgrade);
    match collector {
        Some(inner) => inner.check(),
        None => Ok(()),
    }
}

/// Returns the bucket's clock now, read from a key written for the purpose (and
/// deleted), or `None` when the store does not say.
fn server_now(remote: &dyn Remote) -> Result<Option<SystemTime>> {
    let key = format!("gc/clock-{}", new_id());
    remote.create(&key, b"")?;
    let now = remote.get(&key)?.and_then(|f| f.modified);
    remote.delete(&key)?;
    Ok(now)
}

/// Takes the collector's lease on `remote` and waits until no writer holds a lease
/// that is alive; gives up (a conflict) after `wait`, releasing it. `on_wait` hears
/// once why it waits.
pub fn collecting(
    remote: &dyn Remote,
    handles: Handles,
    wait: Duration,
    on_wait: &dyn Fn(&str),
) -> Result<Held> {
    collecting_for(remote, handles, wait, on_wait, own_life()?)
}

/// [`collecting`], with a lease that lives `life`.
fn collecting_for(
    remote: &dyn Remote,
    handles: Handles,
    wait: Duration,
    on_wait: &dyn Fn(&str),
    life: Duration,
) -> Result<Held> {
    let deadline = Instant::now() + wait;
    let mut watch = Watch::default();
    let held = take_collector(remote, handles, deadline, on_wait, life, &mut watch)?;
    wait_for_writers(remote, held, deadline, on_wait, life, &mut watch)
}

/// Writes the collector's lease, taking over one that is abandoned; a conflict when
/// another `gc` alive holds it past `deadline`.
fn take_collector(
    remote: &dyn Remote,
    handles: Handles,
    deadline: Instant,
    on_wait: &dyn Fn(&str),
    life: Duration,
    watch: &mut Watch,
) -> Result<Held> {
    let url = remote.url();
    let mut told = false;
    let mut clock: Option<Option<SystemTime>> = None;
    loop {
        if let Some(held) = Held::create(handles(), GC_COLLECTOR, "collector", life)? {
            return Ok(held);
        }
        let Some(other) = collector_lease(remote)? else {
            // Gone meanwhile, or a key too large for a lease, which no mreg wrote and
            // which is replaced.
            if remote
                .size(GC_COLLECTOR)?
                .is_some_and(|len| len > LEASE_LIMIT)
            {
                remote.delete(GC_COLLECTOR)?;
            }
            continue;
        };
        let now = match clock {
            Some(now) => now,
            None => *clock.insert(server_now(remote)?),
        };
        if watch.abandoned(GC_COLLECTOR, &other, now) {
            match Held::take_over(handles(), GC_COLLECTOR, "collector", life, &other.tag)? {
                Some(held) => return Ok(held),
                None => continue,
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure::conflict(format!(
                "another gc is collecting {url}: {}; nothing was deleted",
                describe(GC_COLLECTOR, &other.bytes)
            ))
            .hint("run gc again once it is done; a gc that was killed is taken for gone once its lease is older than its life (5 minutes unless set otherwise)")
            .into());
        }
        if !told {
            on_wait(&format!(
                "Waiting for the gc of {url} by {} to finish.",
                describe(GC_COLLECTOR, &other.bytes)
            ));
            told = true;
        }
        std::thread::sleep(poll(life));
    }
}

/// Waits, holding the collector's lease, until no writer holds a lease that is alive
/// (deleting the abandoned ones); a conflict, the lease released, past `deadline`.
fn wait_for_writers(
    remote: &dyn Remote,
    held: Held,
    deadline: Instant,
    on_wait: &dyn Fn(&str),
    life: Duration,
    watch: &mut Watch,
) -> Result<Held> {
    let url = remote.url().to_owned();
    let mut told = false;
    loop {
        held.check()?;
        let listed = remote.list(GC_WRITERS)?;
        if listed.len() > MAX_WRITERS {
            return Err(Failure::error(format!(
                "{url} holds {} keys under {GC_WRITERS}, far more than writers ever run at once; gc deleted nothing",
                listed.len()
            ))
            .hint("look at what wrote them: the keys there are the leases of mreg writers, each a few hundred bytes")
            .into());
        }
        let now = held.server_now();
        let mut alive = Vec::new();
        for item in listed {
            if item.size > LEASE_LIMIT || item.special.is_some() {
                continue;
            }
            let Some(lease) = remote.get(&item.key)? else {
                continue;
            };
            if watch.abandoned(&item.key, &lease, now) {
                remote.delete(&item.key)?;
            } else {
                alive.push(describe(&item.key, &lease.bytes));
            }
        }
        let Some(first) = alive.first() else {
            collectors()
                .lock()
                .expect("lease table")
                .insert(url.clone(), Arc::downgrade(&held.inner));
            return Ok(held);
        };
        if Instant::now() >= deadline {
            return Err(Failure::conflict(format!(
                "{} kept writing to {url} for all of --wait, so gc deleted nothing (among them {first})",
                if alive.len() == 1 { "a writer".to_owned() } else { format!("{} writers", alive.len()) },
            ))
            .hint("run gc again when fewer pushes run, or give it longer with --wait SECONDS; a writer that was killed is taken for gone once its lease is older than its life (5 minutes unless set otherwise)")
            .into());
        }
        if !told {
            on_wait(&format!(
                "Waiting for {} writing to {url} to finish, among them {first}.",
                if alive.len() == 1 {
                    "a command".to_owned()
                } else {
                    format!("{} commands", alive.len())
                }
            ));
            told = true;
        }
        std::thread::sleep(poll(life));
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
