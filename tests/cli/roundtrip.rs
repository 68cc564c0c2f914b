//! Property: any folder pushed then pulled comes back byte-identical, modes and
//! symlinks kept.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::{TestEnv, listing};
use proptest::prelude::*;

/// One generated entry: a path of 1 to 3 components and what it is.
#[derive(Debug, Clone)]
enum Node {
    File {
        path: Vec<String>,
        bytes: Vec<u8>,
        exec: bool,
    },
    Link {
        path: Vec<String>,
        up: usize,
        to: String,
    },
    Dir {
        path: Vec<String>,
    },
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}(\\.[a-z]{1,3})?",
        "[A-Za-z0-9 _.-]{1,12}".prop_filter("not . or ..", |n| n != "." && n != ".."),
        Just("naïve ünïcode".to_owned()),
        Just("new\nline".to_owned()),
        Just("back\\slash".to_owned()),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let path = || prop::collection::vec(name(), 1..4);
    prop_oneof![
        4 => (path(), prop::collection::vec(any::<u8>(), 0..3000), any::<bool>())
            .prop_map(|(path, bytes, exec)| Node::File { path, bytes, exec }),
        1 => (path(), 0usize..3, name()).prop_map(|(path, up, to)| Node::Link { path, up, to }),
        1 => path().prop_map(|path| Node::Dir { path }),
    ]
}

/// Builds the generated folder, skipping entries that clash with earlier ones.
fn build(root: &std::path::Path, nodes: &[Node]) {
    fs::create_dir_all(root).unwrap();
    for node in nodes {
        let (path, parents) = match node {
            Node::File { path, .. } | Node::Link { path, .. } | Node::Dir { path } => {
                (root.join(path.join("/")), path.len() - 1)
            }
        };
        let parent = path.parent().unwrap();
        if fs::create_dir_all(parent).is_err() || fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        match node {
            Node::File { bytes, exec, .. } => {
                fs::write(&path, bytes).unwrap();
                let mode = if *exec { 0o755 } else { 0o644 };
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
            Node::Link { up, to, .. } => {
                let target = format!("{}{to}", "../".repeat((*up).min(parents)));
                std::os::unix::fs::symlink(target, &path).unwrap();
            }
            Node::Dir { .. } => fs::create_dir_all(&path).unwrap(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn push_then_pull_is_identity(nodes in prop::collection::vec(node(), 0..20)) {
        let env = TestEnv::with_registry();
        let src = env.path("src");
        build(&src, &nodes);
        env.ok(&["push", "src", "--model", "p"]);
        env.ok(&["pull", "p", "--to", "dst"]);
        prop_assert_eq!(listing(&env.path("dst")), listing(&src));
    }
}
