//! Walking a tree graph read from anywhere: every distinct tree read once, iteratively,
//! within limits checked before any other work starts.
//!
//! A version's tree is untrusted input: a registry folder someone else wrote, or a
//! remote anyone with write access can change. Its trees form a graph, not a tree: two
//! identical folders share one sub-tree, so a few small trees can each name the one
//! below twice and declare more paths than any disk holds. [`load`] reads each distinct
//! tree once, with an explicit stack (no recursion, so no depth can overflow the
//! stack), and counts what the graph declares *through every path* before anyone
//! expands it. A graph over the [`LIMITS`] is refused whole, as is one whose folder
//! sizes disagree with the files below them. What passes can be walked path by path
//! ([`Graph::for_each`]) in time and memory proportional to the paths it declares.

use std::collections::HashMap;

use anyhow::{Result, bail};
use serde::Serialize;

use super::tree::{Entry, Kind, Tree};
use crate::id::{ObjectId, TreeId};

/// The most a version's tree graph may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Folders nested below the root.
    pub depth: usize,
    /// Files, links and folders, counted through every path.
    pub paths: u64,
    /// Bytes of all files, counted through every path.
    pub bytes: u64,
    /// Bytes of one link's target (the longest path Linux resolves).
    pub link_target: u64,
    /// Bytes of one path below the root (the longest path Linux resolves).
    pub path_len: u64,
    /// Bytes of all paths together, counted through every path: what expanding the
    /// graph into a list of paths costs.
    pub path_bytes: u64,
}

/// The limits every tree graph is checked against; docs/threat-model.md lists them.
pub const LIMITS: Limits = Limits {
    depth: 512,
    paths: 10_000_000,
    bytes: 1 << 50,
    link_target: 4096,
    path_len: 4096,
    path_bytes: 2 << 30,
};

/// What a tree graph declares, counted through every path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Shape {
    /// Regular files (executable or not).
    pub files: u64,
    /// Symbolic links.
    pub links: u64,
    /// Folders below the root.
    pub dirs: u64,
    /// Bytes of all files.
    pub bytes: u64,
    /// The deepest folder nesting (0: no folder below the root).
    pub depth: usize,
    /// Bytes of the longest path below the root.
    pub longest: u64,
    /// Bytes of all paths below the root together.
    pub path_bytes: u64,
}

impl Shape {
    /// Returns every path: files, links and folders.
    pub fn paths(&self) -> u64 {
        self.files
            .saturating_add(self.links)
            .saturating_add(self.dirs)
    }

    /// Adds the path of a file or link named `name` to this shape.
    fn add_name(&mut self, name: &str) {
        let len = name.len() as u64;
        self.longest = self.longest.max(len);
        self.path_bytes = self.path_bytes.saturating_add(len);
    }

    /// Adds a sub-folder named `name` and its shape (the folder itself counted) to
    /// this one.
    fn add_dir(&mut self, name: &str, below: &Shape) {
        let len = name.len() as u64;
        self.dirs = self.dirs.saturating_add(1).saturating_add(below.dirs);
        self.files = self.files.saturating_add(below.files);
        self.links = self.links.saturating_add(below.links);
        self.bytes = self.bytes.saturating_add(below.bytes);
        self.depth = self.depth.max(below.depth.saturating_add(1));
        let deepest = if below.paths() == 0 {
            len
        } else {
            len.saturating_add(1).saturating_add(below.longest)
        };
        self.longest = self.longest.max(deepest);
        // The folder's own path, then every path below with `name/` in front.
        self.path_bytes = self
            .path_bytes
            .saturating_add(len)
            .saturating_add(below.paths().saturating_mul(len.saturating_add(1)))
            .saturating_add(below.path_bytes);
    }

    /// Returns the first limit this shape passes, as a sentence, for the tree at
    /// `path`, `level` folders below the root.
    fn over_at(&self, limits: &Limits, path: &str, level: usize) -> Option<String> {
        if level.saturating_add(self.depth) > limits.depth {
            return Some(format!(
                "it nests folders deeper than {} levels (below {})",
                limits.depth,
                if path.is_empty() { "the root" } else { path }
            ));
        }
        let prefix = if path.is_empty() {
            0
        } else {
            path.len() as u64 + 1
        };
        if prefix.saturating_add(self.longest) > limits.path_len {
            return Some(format!(
                "it holds a path longer than {} bytes (below {})",
                limits.path_len,
                if path.is_empty() { "the root" } else { path }
            ));
        }
        if self.path_bytes > limits.path_bytes {
            return Some(format!(
                "its paths take more than {} bytes together (counted through every path)",
                limits.path_bytes
            ));
        }
        self.over(limits)
    }

    /// Returns the first limit of paths or bytes this shape passes, as a sentence.
    fn over(&self, limits: &Limits) -> Option<String> {
        if self.paths() > limits.paths {
            return Some(format!(
                "it declares more than {} paths (files, links and folders, counted through \
                 every path)",
                limits.paths
            ));
        }
        if self.bytes > limits.bytes {
            return Some(format!(
                "it declares more than {} bytes of files",
                limits.bytes
            ));
        }
        None
    }
}

/// A tree graph that passed the limits: each distinct tree once, parsed.
#[derive(Debug)]
pub struct Graph {
    root: TreeId,
    trees: HashMap<ObjectId, Node>,
    shape: Shape,
}

/// One distinct tree of a graph.
#[derive(Debug)]
struct Node {
    tree: Tree,
    /// What it holds, counted through every path below it.
    shape: Shape,
    /// The shortest path that reaches it, `/`-separated (empty for the root).
    path: String,
    /// Folders between the root and it along that path: the shallowest place it is.
    depth: usize,
}

/// A tree being read by [`load`]: its entries, and how far through them it is.
struct Frame {
    id: ObjectId,
    tree: Tree,
    path: String,
    next: usize,
    shape: Shape,
}

/// Gives every tree of a loaded graph its shortest path from the root, breadth first.
fn place(root: ObjectId, trees: &mut HashMap<ObjectId, Node>) {
    let mut queue = std::collections::VecDeque::from([root]);
    let mut placed = std::collections::HashSet::from([root]);
    while let Some(id) = queue.pop_front() {
        let node = &trees[&id];
        let below: Vec<(ObjectId, String, usize)> = node
            .tree
            .entries
            .iter()
            .filter(|e| e.kind == Kind::Dir && placed.insert(e.id))
            .map(|e| (e.id, join(&node.path, &e.name), node.depth + 1))
            .collect();
        for (id, path, depth) in below {
            let child = trees
                .get_mut(&id)
                .expect("every folder of a graph is loaded");
            child.path = path;
            child.depth = depth;
            queue.push_back(id);
        }
    }
}

/// Reads the graph below `root` with `read` (which reads and verifies one tree), each
/// distinct tree once, and refuses it when it passes `limits` or when a folder's
/// declared size differs from the bytes of the files below it.
pub fn load(
    root: TreeId,
    limits: &Limits,
    read: &mut dyn FnMut(TreeId) -> Result<Tree>,
) -> Result<Graph> {
    let refuse = |why: String| anyhow::anyhow!("tree {} is refused: {why}", root.0.short(16));
    let mut done: HashMap<ObjectId, Node> = HashMap::new();
    let mut stack = vec![Frame {
        id: root.0,
        tree: read(root)?,
        path: String::new(),
        next: 0,
        shape: Shape::default(),
    }];
    loop {
        let open = stack.len();
        let Some(frame) = stack.last_mut() else {
            break;
        };
        let Some(entry) = frame.tree.entries.get(frame.next) else {
            let finished = stack.pop().expect("the loop holds a frame");
            let shape = finished.shape;
            let level = stack.len().saturating_sub(1);
            if let Some(parent) = stack.last_mut() {
                let entry = &parent.tree.entries[parent.next];
                check_declared(entry, &parent.path, &shape).map_err(refuse)?;
                parent.shape.add_dir(&entry.name, &shape);
                parent.next += 1;
                if let Some(why) = parent.shape.over_at(limits, &parent.path, level) {
                    return Err(refuse(why));
                }
            }
            done.insert(
                finished.id,
                Node {
                    tree: finished.tree,
                    shape,
                    path: String::new(),
                    depth: 0,
                },
            );
            continue;
        };
        match entry.kind {
            Kind::File | Kind::Exec => {
                frame.shape.add_name(&entry.name);
                frame.shape.files += 1;
                frame.shape.bytes = frame.shape.bytes.saturating_add(entry.size);
                frame.next += 1;
            }
            Kind::Link => {
                if entry.size > limits.link_target {
                    let path = join(&frame.path, &entry.name);
                    return Err(refuse(format!(
                        "link {path} declares a target of {} bytes, more than {}",
                        entry.size, limits.link_target
                    )));
                }
                frame.shape.add_name(&entry.name);
                frame.shape.links += 1;
                frame.next += 1;
            }
            Kind::Dir => {
                if let Some(known) = done.get(&entry.id) {
                    let shape = known.shape;
                    check_declared(entry, &frame.path, &shape).map_err(refuse)?;
                    frame.shape.add_dir(&entry.name, &shape);
                    frame.next += 1;
                } else {
                    let path = join(&frame.path, &entry.name);
                    if open > limits.depth {
                        return Err(refuse(format!(
                            "it nests folders deeper than {} levels (at {path})",
                            limits.depth
                        )));
                    }
                    let id = entry.id;
                    let tree = read(TreeId(id))?;
                    stack.push(Frame {
                        id,
                        tree,
                        path,
                        next: 0,
                        shape: Shape::default(),
                    });
                    continue;
                }
            }
        }
        let level = stack.len() - 1;
        let frame = stack.last().expect("the loop holds a frame");
        if let Some(why) = frame.shape.over_at(limits, &frame.path, level) {
            return Err(refuse(why));
        }
    }
    let shape = done
        .get(&root.0)
        .expect("the root is the last tree finished")
        .shape;
    place(root.0, &mut done);
    Ok(Graph {
        root,
        trees: done,
        shape,
    })
}

/// Checks that a folder entry's declared size is the bytes of the files below it.
fn check_declared(entry: &Entry, parent: &str, below: &Shape) -> Result<(), String> {
    if entry.size == below.bytes {
        return Ok(());
    }
    Err(format!(
        "folder {} declares {} bytes but holds {}",
        join(parent, &entry.name),
        entry.size,
        below.bytes
    ))
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// One path of a graph, as [`Graph::for_each`] visits it.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    /// The path, `/`-separated.
    pub path: &'a str,
    /// The entry at that path.
    pub entry: &'a Entry,
    /// Folders between the root and the entry (0: in the root).
    pub depth: usize,
}

/// One distinct tree of a graph, as [`Graph::trees`] lists it.
#[derive(Debug, Clone, Copy)]
pub struct Placed<'a> {
    /// The tree's id.
    pub id: ObjectId,
    /// The shortest path that reaches it (empty for the root).
    pub path: &'a str,
    /// Folders between the root and it along that path.
    pub depth: usize,
    /// Its entries.
    pub tree: &'a Tree,
}

impl Placed<'_> {
    /// Returns the path of one of its entries.
    pub fn join(&self, name: &str) -> String {
        join(self.path, name)
    }
}

impl Graph {
    /// Returns the root tree's id.
    pub fn root(&self) -> TreeId {
        self.root
    }

    /// Returns what the graph declares, counted through every path.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Returns the parsed tree of one of the graph's folders.
    pub fn tree(&self, id: ObjectId) -> Option<&Tree> {
        self.trees.get(&id).map(|n| &n.tree)
    }

    /// Returns each distinct tree once, with the shortest path that reaches it and
    /// its depth there (the shallowest place it appears, which decides how far a link
    /// inside it may climb), in path order.
    pub fn trees(&self) -> Vec<Placed<'_>> {
        let mut out: Vec<Placed> = self
            .trees
            .iter()
            .map(|(id, node)| Placed {
                id: *id,
                path: &node.path,
                depth: node.depth,
                tree: &node.tree,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(b.path));
        out
    }

    /// Returns every distinct object of the graph, the trees included, with content
    /// sizes (0 for a tree), each once.
    pub fn objects(&self) -> Vec<(ObjectId, u64)> {
        let mut out: Vec<(ObjectId, u64)> = self.trees.keys().map(|id| (*id, 0)).collect();
        let mut seen: std::collections::HashSet<ObjectId> = self.trees.keys().copied().collect();
        for node in self.trees.values() {
            for entry in &node.tree.entries {
                if entry.kind != Kind::Dir && seen.insert(entry.id) {
                    out.push((entry.id, entry.size));
                }
            }
        }
        out
    }

    /// Returns the objects a pull of the paths `select` takes needs: every tree, and the
    /// content of each file and link it takes, each once.
    pub fn objects_selected(&self, select: &super::select::Select) -> Result<Vec<(ObjectId, u64)>> {
        let mut out: Vec<(ObjectId, u64)> = self.trees.keys().map(|id| (*id, 0)).collect();
        let mut seen: std::collections::HashSet<ObjectId> = self.trees.keys().copied().collect();
        self.for_each(&mut |v| {
            if v.entry.kind != Kind::Dir && select.selects(v.path) && seen.insert(v.entry.id) {
                out.push((v.entry.id, v.entry.size));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `visit` on every path of the graph, folders before what they hold, in the
    /// order of the names; stops at the first error `visit` returns.
    pub fn for_each(&self, visit: &mut dyn FnMut(Visit) -> Result<()>) -> Result<()> {
        let mut stack: Vec<(&Tree, usize, String)> =
            vec![(self.node(self.root.0)?, 0, String::new())];
        while let Some((tree, next, prefix)) = stack.last_mut() {
            let Some(entry) = tree.entries.get(*next) else {
                stack.pop();
                continue;
            };
            *next += 1;
            let path = join(prefix, &entry.name);
            let depth = stack.len() - 1;
            visit(Visit {
                path: &path,
                entry,
                depth,
            })?;
            if entry.kind == Kind::Dir {
                let below = self.node(entry.id)?;
                stack.push((below, 0, path));
            }
        }
        Ok(())
    }

    fn node(&self, id: ObjectId) -> Result<&Tree> {
        match self.trees.get(&id) {
            Some(node) => Ok(&node.tree),
            None => bail!("tree {} is not part of the graph", id.short(16)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trees by id, as a registry would hold them.
    #[derive(Default)]
    struct Store(HashMap<ObjectId, Tree>);

    impl Store {
        fn put(&mut self, entries: Vec<Entry>) -> Entry {
            let tree = Tree::new(entries);
            let id = tree.id().0;
            let size = tree.total_size();
            self.0.insert(id, tree);
            Entry {
                name: String::new(),
                kind: Kind::Dir,
                id,
                size,
            }
        }

        fn load(&self, root: &Entry, limits: &Limits) -> Result<Graph> {
            let mut reads = 0;
            let graph = load(TreeId(root.id), limits, &mut |t| {
                reads += 1;
                self.0
                    .get(&t.0)
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("no tree {}", t.0.short(8)))
            });
            assert!(reads <= self.0.len(), "a tree was read twice");
            graph
        }
    }

    fn named(mut entry: Entry, name: &str) -> Entry {
        entry.name = name.to_owned();
        entry
    }

    fn file(name: &str, size: u64) -> Entry {
        Entry {
            name: name.to_owned(),
            kind: Kind::File,
            id: ObjectId::of(name.as_bytes()),
            size,
        }
    }

    #[test]
    fn counts_every_path_of_a_shared_folder() {
        let mut store = Store::default();
        let inner = store.put(vec![file("w.bin", 10), file("x.bin", 5)]);
        let root = store.put(vec![
            named(inner.clone(), "a"),
            named(inner, "b"),
            file("config.json", 1),
        ]);
        let graph = store.load(&root, &LIMITS).unwrap();
        assert_eq!(
            graph.shape(),
            Shape {
                files: 5,
                links: 0,
                dirs: 2,
                bytes: 31,
                depth: 1,
                longest: 11,
                path_bytes: 1 + 7 + 7 + 1 + 7 + 7 + 11,
            }
        );
        let mut paths = Vec::new();
        graph
            .for_each(&mut |v| {
                paths.push((v.path.to_owned(), v.depth));
                Ok(())
            })
            .unwrap();
        let names: Vec<&str> = paths.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "a",
                "a/w.bin",
                "a/x.bin",
                "b",
                "b/w.bin",
                "b/x.bin",
                "config.json"
            ]
        );
        assert_eq!(paths[1].1, 1);
        assert_eq!(
            graph.objects().len(),
            5,
            "two trees and three files, each once"
        );
    }

    #[test]
    fn a_deep_chain_reached_again_deeper_down_is_held_to_the_depth_limit() {
        // A chain 300 deep, named first near the root and then again below another
        // chain 300 deep: its second place nests 600 levels, though it is read once.
        let limits = Limits {
            depth: 512,
            ..LIMITS
        };
        let mut store = Store::default();
        let mut chain = store.put(vec![file("f", 0)]);
        for _ in 0..300 {
            chain = store.put(vec![named(chain, "d")]);
        }
        let mut deep = store.put(vec![named(chain.clone(), "again")]);
        for _ in 0..300 {
            deep = store.put(vec![named(deep, "e")]);
        }
        let root = store.put(vec![named(chain, "a"), named(deep, "b")]);
        let err = store.load(&root, &limits).unwrap_err().to_string();
        assert!(err.contains("deeper than 512 levels"), "{err}");
    }

    #[test]
    fn long_names_through_many_paths_are_refused_by_their_total_bytes() {
        // Thirty levels of two 200-byte names: 2^30 paths of up to 6 KB, refused by
        // length before their count, and by their total in a shallower graph.
        let long = |c: char| c.to_string().repeat(200);
        let mut store = Store::default();
        let mut below = store.put(vec![file("f", 0)]);
        for _ in 0..30 {
            below = store.put(vec![
                named(below.clone(), &long('l')),
                named(below, &long('r')),
            ]);
        }
        let err = store.load(&below, &LIMITS).unwrap_err().to_string();
        assert!(err.contains("a path longer than 4096 bytes"), "{err}");

        let mut store = Store::default();
        let mut below = store.put(vec![file("f", 0)]);
        for _ in 0..16 {
            below = store.put(vec![
                named(below.clone(), &long('l')),
                named(below, &long('r')),
            ]);
        }
        let limits = Limits {
            paths: u64::MAX,
            path_bytes: 1 << 20,
            ..LIMITS
        };
        let err = store.load(&below, &limits).unwrap_err().to_string();
        assert!(err.contains("more than 1048576 bytes together"), "{err}");
    }

    #[test]
    fn a_graph_whose_paths_multiply_is_refused_before_it_is_expanded() {
        // Sixty-four trees, each naming the one below twice: 2^64 paths in 64 reads.
        let mut store = Store::default();
        let mut below = store.put(vec![file("f", 0)]);
        for _ in 0..64 {
            below = store.put(vec![named(below.clone(), "l"), named(below, "r")]);
        }
        let err = store.load(&below, &LIMITS).unwrap_err().to_string();
        assert!(err.contains("more than 10000000 paths"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let mut store = Store::default();
        let mut below = store.put(vec![file("f", 1)]);
        for _ in 0..20_000 {
            below = store.put(vec![named(below, "d")]);
        }
        let err = store.load(&below, &LIMITS).unwrap_err().to_string();
        assert!(err.contains("deeper than 512 levels"), "{err}");
        let mut shallow = Store::default();
        let mut below = shallow.put(vec![file("f", 1)]);
        for _ in 0..512 {
            below = shallow.put(vec![named(below, "d")]);
        }
        assert_eq!(shallow.load(&below, &LIMITS).unwrap().shape().depth, 512);
    }

    #[test]
    fn a_folder_size_that_lies_is_refused() {
        let mut store = Store::default();
        let mut inner = store.put(vec![file("w.bin", 10)]);
        inner.size = 1;
        let root = store.put(vec![named(inner, "a")]);
        let err = store.load(&root, &LIMITS).unwrap_err().to_string();
        assert!(
            err.contains("folder a declares 1 bytes but holds 10"),
            "{err}"
        );
    }

    #[test]
    fn byte_totals_saturate_instead_of_wrapping() {
        let mut store = Store::default();
        let root = store.put(vec![file("a", u64::MAX), file("b", u64::MAX)]);
        let err = store.load(&root, &LIMITS).unwrap_err().to_string();
        assert!(err.contains("bytes of files"), "{err}");
    }

    #[test]
    fn a_long_link_target_is_refused() {
        let mut store = Store::default();
        let link = Entry {
            name: "l".into(),
            kind: Kind::Link,
            id: ObjectId::of(b"x"),
            size: 5000,
        };
        let root = store.put(vec![link]);
        let err = store.load(&root, &LIMITS).unwrap_err().to_string();
        assert!(
            err.contains("link l declares a target of 5000 bytes"),
            "{err}"
        );
    }
}
