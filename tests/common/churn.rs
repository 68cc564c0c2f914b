//! `gc` run in a loop against pushers and pullers, for the tests that prove it never
//! deletes what a version names, in a folder and on a bucket.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Template, noise, succeeds};

/// What the pullers pull: `stable@1`, one `w.bin` of these bytes.
pub fn stable() -> Vec<u8> {
    "stable weights\n".repeat(1000).into_bytes()
}

/// Returns the files pusher `t` pushes in round `i`: one shared with other pushers and
/// rounds, one of its own, and `big` bytes of noise shared by every other round.
pub fn contents(t: usize, i: usize, big: usize) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "shared.bin".to_owned(),
            format!("shared {}\n", i % 2).repeat(3000).into_bytes(),
        ),
        (
            "own.bin".to_owned(),
            format!("pusher {t} round {i}\n").repeat(500).into_bytes(),
        ),
        ("big.bin".to_owned(), noise(big, (i % 2) as u64)),
    ]
}

/// One process that runs mreg: how, and the folder it works in.
pub struct Actor<'a> {
    /// How it runs mreg.
    pub mreg: &'a Template,
    /// A folder of its own.
    pub dir: PathBuf,
}

/// Runs `gc` in a loop while every pusher, `rounds` times, pushes its files as model
/// `m{t}`, removes that version and pushes the same files again (so that the second
/// push finds objects that were garbage a moment before), and every puller pulls
/// `stable@1` and checks it. `extra` is added to every command (`--registry URL`).
/// Returns each version kept, with its pusher and round.
pub fn gc_against_writers(
    gc: &Template,
    pushers: &[Actor],
    pullers: &[Actor],
    extra: &[&str],
    rounds: usize,
    big: usize,
) -> Vec<(String, usize, usize)> {
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(extra).map(|s| (*s).to_owned()).collect()
    };
    let run = |mreg: &Template, args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        succeeds(mreg.command(&args))
    };
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let collector = scope.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) || n == 0 {
                run(gc, with(&["gc", "--wait", "120", "-q"]));
                n += 1;
            }
            n
        });
        let pulling: Vec<_> = pullers
            .iter()
            .map(|p| {
                let (done, run, with) = (&done, &run, &with);
                scope.spawn(move || {
                    let mut n = 0;
                    while !done.load(Ordering::SeqCst) || n == 0 {
                        let to = p.dir.join(format!("pulled-{n}"));
                        let to_text = to.display().to_string();
                        run(p.mreg, with(&["pull", "stable@1", "--to", &to_text, "-q"]));
                        assert_eq!(fs::read(to.join("w.bin")).unwrap(), stable());
                        fs::remove_dir_all(&to).unwrap();
                        n += 1;
                    }
                })
            })
            .collect();
        let pushing: Vec<_> = pushers
            .iter()
            .enumerate()
            .map(|(t, p)| {
                let (run, with) = (&run, &with);
                scope.spawn(move || push_rounds(p, t, rounds, big, run, with))
            })
            .collect();
        let kept: Vec<_> = pushing
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        done.store(true, Ordering::SeqCst);
        for p in pulling {
            p.join().unwrap();
        }
        assert!(collector.join().unwrap() >= 1);
        kept
    })
}

/// Pushes, removes and pushes again the files of each round; returns what was kept.
fn push_rounds(
    p: &Actor,
    t: usize,
    rounds: usize,
    big: usize,
    run: &dyn Fn(&Template, Vec<String>) -> String,
    with: &dyn Fn(&[&str]) -> Vec<String>,
) -> Vec<(String, usize, usize)> {
    let mut kept = Vec::new();
    for i in 0..rounds {
        let dir = p.dir.join(format!("push-{t}-{i}"));
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in contents(t, i, big) {
            fs::write(dir.join(name), bytes).unwrap();
        }
        let dir = dir.display().to_string();
        let model = format!("m{t}");
        let first = run(p.mreg, with(&["push", &dir, "--model", &model, "-q"]));
        run(p.mreg, with(&["rm", first.trim(), "-q"]));
        let second = run(p.mreg, with(&["push", &dir, "--model", &model, "-q"]));
        kept.push((second.trim().to_owned(), t, i));
    }
    kept
}

/// Fails unless `dir` holds exactly the files pusher `t` pushed in round `i`.
pub fn check_pulled(dir: &Path, reference: &str, t: usize, i: usize, big: usize) {
    for (name, bytes) in contents(t, i, big) {
        assert!(
            fs::read(dir.join(&name)).unwrap() == bytes,
            "{reference}: {name} differs"
        );
    }
}
