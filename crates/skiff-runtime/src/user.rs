//! Resolving an image's `User` (`name`, `uid`, `name:group`, `uid:gid`) against the rootfs's
//! `/etc/passwd` and `/etc/group`, as Docker does. Pure: the caller reads the two files.

use crate::error::{Result, RuntimeError};

/// The process identity a container runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7).then(|| Some(PasswdEntry { name: f[0], uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f[5] })).flatten()
    })
}

/// (name, gid, members)
fn groups(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4).then(|| Some((f[0], f[2].parse().ok()?, f[3].split(',').filter(|m| !m.is_empty()).collect()))).flatten()
    })
}

/// The largest id a container may run with, as runc allows: (uid_t)-1 (4294967295) means "do not
/// change" to setuid(2) and friends, so a process asked to become it stays root.
pub const MAX_ID: u32 = i32::MAX as u32;

fn checked(what: &'static str, id: u32, spec: &str) -> Result<u32> {
    if id > MAX_ID {
        return Err(RuntimeError::IdOutOfRange { what, id: id as u64, spec: spec.to_string() });
    }
    Ok(id)
}

/// Resolves `spec` (empty = root). `passwd` and `group` are the files' contents ("" when absent).
/// Every id, whether given or found in the image's files, must be within 0–2147483647.
pub fn resolve(spec: &str, passwd_text: &str, group_text: &str) -> Result<Identity> {
    let identity = resolve_unchecked(spec, passwd_text, group_text)?;
    checked("uid", identity.uid, spec)?;
    checked("gid", identity.gid, spec)?;
    for g in &identity.additional_gids {
        checked("supplementary gid", *g, spec)?;
    }
    Ok(identity)
}

fn resolve_unchecked(spec: &str, passwd_text: &str, group_text: &str) -> Result<Identity> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entry = passwd(passwd_text).find(|e| e.name == user || user.parse::<u32>().is_ok_and(|u| u == e.uid));
    let (uid, mut gid, name, home) = match (&entry, user.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), Some(e.home.to_string())),
        // A numeric uid need not exist in the image.
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => return Err(RuntimeError::UnknownUser { user: user.to_string() }),
    };
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        gid = match groups(group_text).find(|(n, _, _)| *n == g) {
            Some((_, id, _)) => id,
            None => g.parse().map_err(|_| RuntimeError::UnknownGroup { group: g.to_string() })?,
        };
    }
    let mut additional_gids: Vec<u32> = match (group, name) {
        // An explicit group replaces supplementary groups, as with Docker.
        (Some(_), _) | (None, None) => Vec::new(),
        (None, Some(n)) => groups(group_text).filter(|(_, _, m)| m.contains(&n)).map(|(_, id, _)| id).collect(),
    };
    additional_gids.retain(|g| *g != gid);
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(Identity { uid, gid, additional_gids, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbroken line\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nstaff:x:50:www,other\naudio:x:29:www\n";

    #[test]
    fn resolves_like_docker() {
        assert_eq!(resolve("", PASSWD, GROUP).expect("root"), Identity { uid: 0, gid: 0, additional_gids: vec![], home: Some("/root".into()) });
        let www = resolve("www", PASSWD, GROUP).expect("www");
        assert_eq!((www.uid, www.gid, www.additional_gids.clone()), (33, 33, vec![29, 50]));
        assert_eq!(resolve("33", PASSWD, GROUP).expect("uid").uid, 33);
        let grouped = resolve("www:staff", PASSWD, GROUP).expect("with group");
        assert_eq!((grouped.gid, grouped.additional_gids.len()), (50, 0));
        assert_eq!(resolve("1234:5678", PASSWD, GROUP).expect("numeric"), Identity { uid: 1234, gid: 5678, additional_gids: vec![], home: None });
        assert_eq!(resolve("1234", "", "").expect("no passwd").gid, 0);
        assert!(matches!(resolve("nobody-here", PASSWD, GROUP), Err(RuntimeError::UnknownUser { .. })));
        assert!(matches!(resolve("www:nogroup", PASSWD, GROUP), Err(RuntimeError::UnknownGroup { .. })));
    }

    #[test]
    fn ids_past_2147483647_are_refused_wherever_they_come_from() {
        assert_eq!(resolve("2147483647:2147483647", "", "").expect("the largest id").uid, 2147483647);
        for spec in ["4294967295", "0:4294967295", "2147483648", "1000:4294967294"] {
            let err = resolve(spec, PASSWD, GROUP).expect_err(spec);
            assert!(matches!(err, RuntimeError::IdOutOfRange { .. }), "{spec}: {err}");
            assert!(err.to_string().contains("0-2147483647"), "{err}");
        }
        // From the image's own files: a named user or group whose id is (uid_t)-1.
        let passwd = "evil:x:4294967295:0::/:/bin/sh\nok:x:10:4294967295::/:/bin/sh\nmember:x:11:11::/:/bin/sh\n";
        let group = "wheel:x:4294967295:member\n";
        for spec in ["evil", "ok", "member", "member:wheel"] {
            assert!(matches!(resolve(spec, passwd, group), Err(RuntimeError::IdOutOfRange { .. })), "{spec}");
        }
    }
}
