//! A version's files with the SHA-256 of their content, as formats made for other tools
//! list them: OMS signatures (`mreg sign`, `mreg verify`) and OCI artifacts (`mreg
//! export --oci`, `mreg push-oci`). Digests come from the registry's sealed cache
//! ([`crate::sign::digests`]), computed once per object; objects a registry lacks are
//! fetched first, as a pull fetches them.

use std::collections::HashMap;

use anyhow::Result;

use crate::error::Failure;
use crate::id::ObjectId;
use crate::manifest::VersionRecord;
use crate::sign::digests::Digests;
use crate::store::select::Select;
use crate::store::tree::Kind;
use crate::store::{Progress, Registry, models};

/// A file of a version, with its digests.
#[derive(Debug, Clone)]
pub struct DigestedFile {
    /// Its path in the version.
    pub path: String,
    /// Its object (the BLAKE3 of its content).
    pub id: ObjectId,
    /// The SHA-256 of its content.
    pub sha256: [u8; 32],
    /// Content bytes.
    pub size: u64,
    /// Whether it is executable.
    pub exec: bool,
}

/// The files of a version, with their digests.
pub struct VersionFiles {
    /// Each file, and each link to a file of the version under the link's own path
    /// with its target's content.
    pub files: Vec<DigestedFile>,
    /// Bytes read to learn digests not known before.
    pub digested: u64,
    /// Whether links were listed (a signature then says `allow_symlinks`).
    pub links: bool,
}

/// The most links followed from one link to the file it stands for.
const LINK_HOPS: usize = 40;

/// Returns the files of a version with their digests: its files, and its links to files
/// of the version under their own paths with their targets' content (as the stock
/// model signer lists links with `--allow_symlinks`, and as an unpacked artifact holds
/// them); a link to a folder is left out. A top-level entry named `reserved` (the name
/// the caller writes beside the files) is refused. With `select`, only the paths it
/// takes are listed (and fetched, and digested).
pub fn version_files(
    reg: &Registry,
    record: &VersionRecord,
    reserved: Option<&str>,
    select: Option<&Select>,
    progress: &dyn Progress,
) -> Result<VersionFiles> {
    let graph = models::graph(reg, record)?;
    let mut entries: HashMap<String, (Kind, ObjectId, u64)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    graph.for_each(&mut |v| {
        if let Some(name) = reserved.filter(|name| v.path == *name) {
            return Err(Failure::error(format!(
                "{} holds a file named {name} at its top, the name its signature takes beside a pulled version",
                record.reference()
            ))
            .hint("rename that file and push again to sign the version")
            .into());
        }
        entries.insert(v.path.to_owned(), (v.entry.kind, v.entry.id, v.entry.size));
        order.push(v.path.to_owned());
        Ok(())
    })?;
    let links = entries.values().any(|(kind, ..)| *kind == Kind::Link);
    if links {
        // Link targets are objects too: a clone may lack them.
        super::pull::fetch_missing(reg, record.tree, select, progress)?;
    }
    let mut listed: Vec<(String, ObjectId, u64, bool)> = Vec::new();
    for path in order {
        if select.is_some_and(|s| !s.selects(&path)) {
            continue;
        }
        let (kind, id, size) = entries[&path];
        match kind {
            Kind::File | Kind::Exec => listed.push((path, id, size, kind == Kind::Exec)),
            Kind::Link => {
                if let Some((id, size, exec)) = link_file(reg, record, &entries, &path)? {
                    listed.push((path, id, size, exec));
                }
            }
            Kind::Dir => {}
        }
    }
    let mut objects: Vec<(ObjectId, u64)> =
        listed.iter().map(|(_, id, size, _)| (*id, *size)).collect();
    objects.sort_unstable();
    objects.dedup();
    let digests = Digests::load(reg);
    let to_read = digests.to_read(&objects);
    if to_read > 0 {
        // Digests are computed from the objects: those a registry lacks (a clone, a
        // bucket's mirror) are fetched first, as a pull fetches them. A link a
        // selection takes may lead to a file it does not: then all is fetched.
        super::pull::fetch_missing(reg, record.tree, select, progress)?;
        if select.is_some() && objects.iter().any(|(id, _)| !reg.has_object(*id)) {
            super::pull::fetch_missing(reg, record.tree, None, progress)?;
        }
    }
    progress.start("digesting", to_read);
    let sha = digests.sha256_of(reg, &objects, &|n| progress.advance(n));
    progress.finish();
    let by_id: HashMap<ObjectId, [u8; 32]> = objects.iter().map(|(id, _)| *id).zip(sha?).collect();
    digests.save(reg);
    let files = listed
        .into_iter()
        .map(|(path, id, size, exec)| DigestedFile {
            sha256: by_id[&id],
            path,
            id,
            size,
            exec,
        })
        .collect();
    Ok(VersionFiles {
        files,
        digested: to_read,
        links,
    })
}

/// Returns the file a link of a version stands for (its object and size), following
/// links inside the version; `None` for a link to a folder. A link whose target is
/// not in the version is refused.
fn link_file(
    reg: &Registry,
    record: &VersionRecord,
    entries: &HashMap<String, (Kind, ObjectId, u64)>,
    path: &str,
) -> Result<Option<(ObjectId, u64, bool)>> {
    let mut at = path.to_owned();
    for _ in 0..LINK_HOPS {
        let Some(&(kind, id, size)) = entries.get(&at) else {
            break;
        };
        match kind {
            Kind::File | Kind::Exec => return Ok(Some((id, size, kind == Kind::Exec))),
            Kind::Dir => return Ok(None),
            Kind::Link => {
                let target = crate::store::read::link_target(reg, id, size)?;
                let mut parts: Vec<&str> = at.split('/').collect();
                parts.pop();
                for part in target.split('/') {
                    match part {
                        "" | "." => {}
                        ".." => {
                            if parts.pop().is_none() {
                                break;
                            }
                        }
                        other => parts.push(other),
                    }
                }
                at = parts.join("/");
            }
        }
    }
    Err(Failure::error(format!(
        "{} holds the link {path}, which does not lead to a file or folder of the version",
        record.reference()
    ))
    .hint("a signature or an artifact lists file contents: push the folder with the link's target inside it")
    .into())
}
