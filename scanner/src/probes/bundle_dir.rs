//! Opening the files of an offline bundle without leaving the bundle.
//!
//! A bundle comes from a host that may be compromised, and is read on the
//! scanning machine: `dpkg-query.txt -> /etc/shadow` must not put the
//! scanner's secrets into a report, and a FIFO named like a bundle file must
//! not hang the sweep. So every file is opened relative to the descriptor of
//! the bundle directory, one path component at a time, never following a
//! symbolic link (`O_NOFOLLOW`) and never waiting (`O_NONBLOCK`). A symbolic
//! link is followed only when its canonical target lies inside the bundle,
//! and then by walking that canonical path the same way. What was opened is
//! checked on the descriptor (`fstat`): it must be the object the walk saw
//! (same device and inode) and a regular file (or a directory where one is
//! expected), so there is no window between a check and the use. A FIFO,
//! socket or device is refused before it is opened (opening some devices has
//! effects), and opening one anyway in a race cannot block (`O_NONBLOCK`).

use std::ffi::{CString, OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Why an entry of a bundle was not read. Says what the entry is, never
/// anything it holds.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("a symbolic link to a path outside the bundle")]
    Outside,
    #[error("a symbolic link whose target does not exist")]
    Dangling,
    #[error("a {0}, not a regular file")]
    NotFile(&'static str),
    #[error("a {0}, not a directory")]
    NotDir(&'static str),
    #[error("it changed while it was being opened")]
    Changed,
    #[error("{0}")]
    Io(io::Error),
}

/// What an entry must be to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    File,
    Dir,
}

/// An opened bundle directory: every open stays inside it.
#[derive(Debug)]
pub struct BundleDir {
    /// The directory itself, opened once: entries are opened relative to it,
    /// so renaming or replacing the path later changes nothing.
    dir: File,
    /// Its canonical path: a symbolic link is followed only to a target below it.
    canon: PathBuf,
}

/// An opened entry of a bundle.
#[derive(Debug)]
pub struct Entry {
    pub file: File,
    /// Its canonical path relative to the bundle directory.
    pub rel: PathBuf,
}

impl BundleDir {
    /// Opens the bundle directory `path` (the user's path: it may itself be
    /// a symbolic link).
    pub fn open(path: &Path) -> io::Result<BundleDir> {
        let canon = std::fs::canonicalize(path)?;
        let dir = open_at(None, canon.as_os_str(), Want::Dir, false)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        Ok(BundleDir { dir, canon })
    }

    /// Opens `name`, an entry of the bundle directory; None when absent.
    pub fn entry(&self, name: &str, want: Want) -> Result<Option<Entry>, Refused> {
        self.open_below(&self.dir, Path::new(""), OsStr::new(name), want)
    }

    /// Opens `name`, an entry of `dir` (a directory opened from this bundle).
    pub fn entry_of(
        &self,
        dir: &Entry,
        name: &OsStr,
        want: Want,
    ) -> Result<Option<Entry>, Refused> {
        self.open_below(&dir.file, &dir.rel, name, want)
    }

    /// The names in `dir`, at most `max` (in directory order), and whether
    /// there were more. Names only: each is then opened with
    /// [`BundleDir::entry_of`], relative to the opened directory.
    pub fn names(&self, dir: &Entry, max: usize) -> io::Result<(Vec<OsString>, bool)> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(self.canon.join(&dir.rel))? {
            if names.len() == max {
                return Ok((names, true));
            }
            names.push(e?.file_name());
        }
        Ok((names, false))
    }

    fn open_below(
        &self,
        start: &File,
        base: &Path,
        name: &OsStr,
        want: Want,
    ) -> Result<Option<Entry>, Refused> {
        let rel = base.join(name);
        // One plain name: no `/`, `..` or `.`, whatever a directory listing says.
        let plain = matches!(
            Path::new(name).components().collect::<Vec<_>>()[..],
            [Component::Normal(_)]
        );
        if !plain {
            return Err(Refused::Outside);
        }
        match walk(start, &[name], want)? {
            Step::Opened(file) => return Ok(Some(Entry { file, rel })),
            Step::Absent => return Ok(None),
            Step::Link => {}
        }
        // A symbolic link: followed when its canonical target is in the bundle.
        let target = match std::fs::canonicalize(self.canon.join(&rel)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Refused::Dangling),
            Err(e) => return Err(Refused::Io(e)),
        };
        let inside = target
            .strip_prefix(&self.canon)
            .map_err(|_| Refused::Outside)?;
        let parts: Vec<&OsStr> = inside.iter().collect();
        match walk(&self.dir, &parts, want)? {
            Step::Opened(file) => Ok(Some(Entry {
                file,
                rel: inside.to_path_buf(),
            })),
            // The canonical path had no link and existed a moment ago.
            Step::Absent | Step::Link => Err(Refused::Changed),
        }
    }
}

enum Step {
    Opened(File),
    Absent,
    /// A component is a symbolic link.
    Link,
}

/// What a directory entry is: its type and identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    mode: u32,
    dev: u64,
    ino: u64,
}

impl Node {
    fn of(m: &Metadata) -> Node {
        Node {
            mode: m.mode(),
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    fn is(self, fmt: libc::mode_t) -> bool {
        #[allow(clippy::unnecessary_cast)] // mode_t is u16 on macOS
        let fmt = fmt as u32;
        #[allow(clippy::unnecessary_cast)]
        let mask = libc::S_IFMT as u32;
        self.mode & mask == fmt
    }

    /// What it is, as a refusal names it.
    fn kind(self) -> &'static str {
        [
            (libc::S_IFDIR, "directory"),
            (libc::S_IFREG, "regular file"),
            (libc::S_IFLNK, "symbolic link"),
            (libc::S_IFIFO, "FIFO (named pipe)"),
            (libc::S_IFSOCK, "socket"),
            (libc::S_IFCHR, "character device"),
            (libc::S_IFBLK, "block device"),
        ]
        .into_iter()
        .find(|(f, _)| self.is(*f))
        .map_or("special file", |(_, k)| k)
    }

    fn check(self, want: Want) -> Result<(), Refused> {
        match want {
            Want::File if !self.is(libc::S_IFREG) => Err(Refused::NotFile(self.kind())),
            Want::Dir if !self.is(libc::S_IFDIR) => Err(Refused::NotDir(self.kind())),
            _ => Ok(()),
        }
    }
}

/// Opens `parts` below `start`, each component without following links.
fn walk(start: &File, parts: &[&OsStr], want: Want) -> Result<Step, Refused> {
    let mut cur: Option<File> = None;
    for (i, part) in parts.iter().enumerate() {
        let want_here = if i + 1 == parts.len() {
            want
        } else {
            Want::Dir
        };
        let dir = cur.as_ref().unwrap_or(start);
        // What the entry is, before opening it: a device is never opened.
        let seen = match stat_at(dir, part) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Step::Absent),
            Err(e) => return Err(Refused::Io(e)),
        };
        if seen.is(libc::S_IFLNK) {
            return Ok(Step::Link);
        }
        seen.check(want_here)?;
        let file = match open_at(Some(dir), part, want_here, true) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Refused::Changed),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(Refused::Changed),
            Err(e) => return Err(Refused::Io(e)),
        };
        // fstat: the opened object is the one checked, and what is read.
        let opened = Node::of(&file.metadata().map_err(Refused::Io)?);
        if (opened.dev, opened.ino) != (seen.dev, seen.ino) {
            return Err(Refused::Changed);
        }
        opened.check(want_here)?;
        cur = Some(file);
    }
    match cur {
        Some(f) => Ok(Step::Opened(f)),
        // The bundle directory itself (a link to `.`).
        None => {
            Node::of(&start.metadata().map_err(Refused::Io)?).check(want)?;
            Ok(Step::Opened(start.try_clone().map_err(Refused::Io)?))
        }
    }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: the entry itself, never a link's target.
fn stat_at(dir: &File, name: &OsStr) -> io::Result<Node> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `c` is NUL-terminated and outlives the call, `dir` is an open
    // descriptor, and `st` is written by fstatat before it is read.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(Node {
        mode: st.st_mode as u32,
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
    })
}

/// `openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOCTTY [| O_NOFOLLOW | O_NONBLOCK] [| O_DIRECTORY])`;
/// `dir` None: `name` is an absolute path.
fn open_at(dir: Option<&File>, name: &OsStr, want: Want, confined: bool) -> io::Result<File> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY;
    if confined {
        flags |= libc::O_NOFOLLOW | libc::O_NONBLOCK;
    }
    if want == Want::Dir {
        flags |= libc::O_DIRECTORY;
    }
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `c` is a NUL-terminated string that outlives the call; `at` is
    // AT_FDCWD or a descriptor owned by a live `File`.
    let fd = unsafe { libc::openat(at, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn mkfifo(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    fn text(e: Entry) -> String {
        let mut s = String::new();
        (&e.file).read_to_string(&mut s).unwrap();
        s
    }

    fn refusal(r: Result<Option<Entry>, Refused>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(e) => panic!("not refused: {e:?}"),
        }
    }

    #[test]
    fn regular_files_and_links_inside_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path().join("b");
        std::fs::create_dir_all(b.join("raw/deep")).unwrap();
        std::fs::write(b.join("plain.txt"), "plain").unwrap();
        std::fs::write(b.join("raw/deep/x.txt"), "deep").unwrap();
        symlink("raw/deep/x.txt", b.join("rel.txt")).unwrap();
        symlink(b.join("raw/deep/x.txt"), b.join("abs.txt")).unwrap();
        symlink("rel.txt", b.join("chain.txt")).unwrap();
        symlink("../b/raw/../raw/deep/x.txt", b.join("back-in.txt")).unwrap();
        symlink("raw", b.join("dirlink")).unwrap();
        let bundle = BundleDir::open(&b).unwrap();
        assert_eq!(
            text(bundle.entry("plain.txt", Want::File).unwrap().unwrap()),
            "plain"
        );
        for name in ["rel.txt", "abs.txt", "chain.txt", "back-in.txt"] {
            let e = bundle.entry(name, Want::File).unwrap().unwrap();
            assert_eq!(e.rel, Path::new("raw/deep/x.txt"), "{name}");
            assert_eq!(text(e), "deep", "{name}");
        }
        assert!(bundle.entry("absent.txt", Want::File).unwrap().is_none());
        // A directory reached through a link; its entries relative to it.
        let dir = bundle.entry("dirlink", Want::Dir).unwrap().unwrap();
        assert_eq!(dir.rel, Path::new("raw"));
        let (names, more) = bundle.names(&dir, 10).unwrap();
        assert_eq!((names, more), (vec![OsString::from("deep")], false));
        let deep = bundle
            .entry_of(&dir, OsStr::new("deep"), Want::Dir)
            .unwrap()
            .unwrap();
        let x = bundle
            .entry_of(&deep, OsStr::new("x.txt"), Want::File)
            .unwrap()
            .unwrap();
        assert_eq!(text(x), "deep");
        // A link to the bundle itself is a directory.
        symlink(".", b.join("self")).unwrap();
        assert!(bundle.entry("self", Want::Dir).unwrap().is_some());
        assert_eq!(
            refusal(bundle.entry("self", Want::File)),
            "a directory, not a regular file"
        );
    }

    #[test]
    fn links_out_dangling_links_and_odd_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path().join("b");
        std::fs::create_dir_all(b.join("sub")).unwrap();
        std::fs::write(tmp.path().join("secret"), "secret").unwrap();
        symlink(tmp.path().join("secret"), b.join("abs.txt")).unwrap();
        symlink("../secret", b.join("rel.txt")).unwrap();
        symlink("../../secret", b.join("sub/up.txt")).unwrap();
        symlink("/etc", b.join("etc")).unwrap();
        symlink("nowhere", b.join("dangling.txt")).unwrap();
        symlink("/dev/zero", b.join("zero")).unwrap();
        // The bundle's own name as a prefix is not inside it.
        std::fs::create_dir(tmp.path().join("b2")).unwrap();
        std::fs::write(tmp.path().join("b2/x"), "x").unwrap();
        symlink("../b2/x", b.join("sibling.txt")).unwrap();
        let bundle = BundleDir::open(&b).unwrap();
        let outside = "a symbolic link to a path outside the bundle";
        for name in ["abs.txt", "rel.txt", "zero", "sibling.txt"] {
            assert_eq!(refusal(bundle.entry(name, Want::File)), outside, "{name}");
        }
        assert_eq!(refusal(bundle.entry("etc", Want::Dir)), outside);
        let sub = bundle.entry("sub", Want::Dir).unwrap().unwrap();
        assert_eq!(
            refusal(bundle.entry_of(&sub, OsStr::new("up.txt"), Want::File)),
            outside
        );
        assert_eq!(
            refusal(bundle.entry("dangling.txt", Want::File)),
            "a symbolic link whose target does not exist"
        );
        for name in ["../secret", "sub/../../secret", "/etc/passwd", ".", ".."] {
            assert_eq!(refusal(bundle.entry(name, Want::File)), outside, "{name}");
        }
        assert_eq!(
            refusal(bundle.entry_of(&sub, OsStr::new(".."), Want::Dir)),
            outside
        );
    }

    #[test]
    fn fifos_sockets_and_wrong_kinds_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        mkfifo(&b.join("fifo"));
        symlink("fifo", b.join("to-fifo")).unwrap();
        let _l = std::os::unix::net::UnixListener::bind(b.join("sock")).unwrap();
        std::fs::create_dir(b.join("dir")).unwrap();
        std::fs::write(b.join("file"), "x").unwrap();
        let bundle = BundleDir::open(b).unwrap();
        let fifo = "a FIFO (named pipe), not a regular file";
        assert_eq!(refusal(bundle.entry("fifo", Want::File)), fifo);
        assert_eq!(refusal(bundle.entry("to-fifo", Want::File)), fifo);
        assert_eq!(
            refusal(bundle.entry("fifo", Want::Dir)),
            "a FIFO (named pipe), not a directory"
        );
        assert_eq!(
            refusal(bundle.entry("sock", Want::File)),
            "a socket, not a regular file"
        );
        assert_eq!(
            refusal(bundle.entry("dir", Want::File)),
            "a directory, not a regular file"
        );
        assert_eq!(
            refusal(bundle.entry("file", Want::Dir)),
            "a regular file, not a directory"
        );
    }

    #[test]
    fn kinds_of_device_nodes() {
        let dev = BundleDir::open(Path::new("/dev")).unwrap();
        assert_eq!(
            refusal(dev.entry("null", Want::File)),
            "a character device, not a regular file"
        );
    }
}
