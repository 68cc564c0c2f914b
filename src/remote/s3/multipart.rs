//! Uploads in parts: an object larger than [`PART_SIZE`] goes in parts, several at once,
//! with a journal beside the registry recording each part that arrived, so that an
//! interrupted upload resumes with only the missing parts.

use std::fs::{self, File};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as KeyPath;
use serde::{Deserialize, Serialize};

use super::S3Remote;
use crate::remote::Tick;

/// Objects larger than this are sent in parts of this size (a part of a file stored in
/// parts is never larger: it goes in one request).
pub const PART_SIZE: u64 = 16 << 20;

/// Parts of one object in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The longest journal read back: one part list of the largest object there can be is
/// far shorter.
const JOURNAL_LIMIT: u64 = 64 << 20;

/// What an interrupted multipart upload left: enough to resume it.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    key: String,
    upload: String,
    len: u64,
    part_size: u64,
    parts: Vec<Option<String>>,
}

impl S3Remote {
    pub(super) async fn put_parts(
        &self,
        key: &str,
        source: &File,
        len: u64,
        journal: &PathBuf,
        tick: Tick<'_>,
    ) -> Result<()> {
        let path = self.path(key);
        let count = len.div_ceil(PART_SIZE) as usize;
        let mut state = self.begin_or_resume(&path, key, len, journal).await?;
        let done: u64 = state
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(i, _)| part_len(i, len))
            .sum();
        if done > 0 {
            tick(done);
        }
        let todo: Vec<usize> = (0..count).filter(|i| state.parts[*i].is_none()).collect();
        let upload = state.upload.clone();
        let sends = futures_util::stream::iter(todo.into_iter().map(|index| {
            let path = path.clone();
            let upload = upload.clone();
            async move {
                let size = part_len(index, len);
                // The part's bytes count against the memory every upload shares.
                let _held = self
                    .in_flight
                    .acquire_many(super::mib_of(size))
                    .await
                    .context("waiting for memory to send a part")?;
                let payload = self.blocks.read(source, index as u64 * PART_SIZE, size)?;
                let part = self.store.put_part(&path, &upload, index, payload).await;
                Ok::<_, anyhow::Error>((index, size, part))
            }
        }))
        .buffer_unordered(PARTS_IN_FLIGHT);
        futures_util::pin_mut!(sends);
        while let Some(sent) = sends.next().await {
            let (index, size, part) = sent?;
            match part {
                Ok(part) => {
                    state.parts[index] = Some(part.content_id);
                    write_journal(journal, &state)?;
                    tick(size);
                }
                Err(object_store::Error::NotFound { .. }) => {
                    // The upload expired or was aborted on the server: start over.
                    let _ = fs::remove_file(journal);
                    bail!(
                        "the bucket no longer knows the interrupted upload of {}; run the command again to send it afresh",
                        self.describe(key)
                    );
                }
                Err(err) => return Err(self.explain(&err, "sending a part of", key)),
            }
        }
        self.complete(&path, key, &state).await?;
        let _ = fs::remove_file(journal);
        Ok(())
    }

    /// Returns the journal of an interrupted upload of this very object, else starts an
    /// upload and writes its journal.
    async fn begin_or_resume(
        &self,
        path: &KeyPath,
        key: &str,
        len: u64,
        journal: &std::path::Path,
    ) -> Result<Journal> {
        if let Some(state) = read_journal(journal, key, len) {
            return Ok(state);
        }
        let upload = self
            .store
            .create_multipart(path)
            .await
            .map_err(|err| self.explain(&err, "starting an upload to", key))?;
        let state = Journal {
            key: key.to_owned(),
            upload,
            len,
            part_size: PART_SIZE,
            parts: vec![None; len.div_ceil(PART_SIZE) as usize],
        };
        write_journal(journal, &state)?;
        Ok(state)
    }

    /// Completes an upload whose every part arrived.
    async fn complete(&self, path: &KeyPath, key: &str, state: &Journal) -> Result<()> {
        let parts = state
            .parts
            .iter()
            .map(|p| PartId {
                content_id: p.clone().expect("every part was sent"),
            })
            .collect();
        self.store
            .complete_multipart(path, &state.upload, parts)
            .await
            .map_err(|err| self.explain(&err, "completing the upload of", key))?;
        Ok(())
    }
}

/// Returns the length of part `index` of an object of `len` bytes.
fn part_len(index: usize, len: u64) -> u64 {
    let start = index as u64 * PART_SIZE;
    (len - start).min(PART_SIZE)
}

fn read_journal(path: &std::path::Path, key: &str, len: u64) -> Option<Journal> {
    let text = crate::store::files::read_cache(path, JOURNAL_LIMIT)?;
    let journal: Journal = serde_json::from_slice(&text).ok()?;
    (journal.key == key
        && journal.len == len
        && journal.part_size == PART_SIZE
        && journal.parts.len() as u64 == len.div_ceil(PART_SIZE))
    .then_some(journal)
}

fn write_journal(path: &std::path::Path, journal: &Journal) -> Result<()> {
    let bytes = serde_json::to_vec(journal)?;
    // One temp name per journal, so a killed upload leaves at most one behind, which
    // the next write of that journal reuses; a link or FIFO planted there is replaced,
    // never written through.
    let mut name = path.file_name().expect("a journal has a name").to_owned();
    name.push(".tmp");
    let temp = path.with_file_name(name);
    let mut file = crate::store::files::open_resumable(&temp)?;
    file.set_len(0)
        .and_then(|()| std::io::Write::write_all(&mut file, &bytes))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temp.display()))?;
    fs::rename(&temp, path).with_context(|| format!("writing {}", path.display()))
}
