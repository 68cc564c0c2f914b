//! The packs a remote holds ([`crate::store::pack`]): its indexes, read once per
//! process at the first object a fetch finds neither raw, compressed nor in parts
//! there, each checked against its name and parsed strictly, as untrusted input.

use std::collections::HashMap;

use anyhow::Result;

use super::Remote;
use crate::id::ObjectId;
use crate::store::keys;
use crate::store::pack::{self, Entry, PackIndex};

/// Where a remote holds its packed objects: each object's pack key and entry.
#[derive(Debug, Default)]
pub struct RemotePacks {
    packs: Vec<String>,
    objects: HashMap<ObjectId, (u32, Entry)>,
}

impl RemotePacks {
    /// Reads the indexes of every pack `remote` holds. An index that is damaged, or
    /// whose pack is missing or of another length, is left out: its objects count as
    /// missing from the remote, which `mreg fsck` there reports.
    pub fn load(remote: &dyn Remote) -> Result<RemotePacks> {
        let listed = remote.list(keys::PACKS)?;
        let lengths: HashMap<&str, u64> = listed
            .iter()
            .filter(|l| l.special.is_none())
            .map(|l| (l.key.as_str(), l.size))
            .collect();
        let mut out = RemotePacks::default();
        for l in &listed {
            let Some(name) = l
                .key
                .strip_prefix(keys::PACKS)
                .and_then(pack::name_of_index)
            else {
                continue;
            };
            let Ok(Some(fetched)) = remote.get(&l.key) else {
                continue;
            };
            if pack::name_of(&fetched.bytes) != name {
                continue;
            }
            let Ok(index) = PackIndex::parse(&fetched.bytes) else {
                continue;
            };
            let pack_key = pack::pack_key(name);
            if lengths.get(pack_key.as_str()) != Some(&index.pack_len) {
                continue;
            }
            let at = out.packs.len() as u32;
            out.packs.push(pack_key);
            for entry in index.entries {
                out.objects.entry(entry.id).or_insert((at, entry));
            }
        }
        Ok(out)
    }

    /// Returns the key of the pack holding `id` and its entry there.
    pub fn find(&self, id: ObjectId) -> Option<(&str, Entry)> {
        self.objects
            .get(&id)
            .map(|(at, entry)| (self.packs[*at as usize].as_str(), *entry))
    }
}
