//! A container's lifecycle, in one place: the states, which actions each allows, and the
//! transitions. Every manager operation asks [`Status::allows`] first, so an illegal transition is
//! one typed error (`EngineError::InvalidState`, FailedPrecondition) naming the state.
//!
//! ```text
//!              create (record written first)
//!                 │
//!                 ▼       rootfs, spec           start: shim up,        init exits
//!            ┌─────────┐ ───────────► ┌─────────┐ init made, run  ┌─────────┐ ──────────► ┌────────┐
//!            │creating │              │ created │ ──────────────► │ running │             │ exited │
//!            └─────────┘              └─────────┘                 └─────────┘             └────────┘
//!                 │                      │   └──── start failed (StartError) ─────────────▲  │
//!   failure, or a crash: cleaned         │                                                   │
//!   up (now, or on the next start)       └──── delete ─────────────────────────────┐         │ delete
//!                                                                                  ▼         ▼
//!                                                                                 (removed)
//! ```
//! A created container has its rootfs, spec and record but no process yet: its supervisor and
//! init are made by `start`, as containerd makes its task at start and docker runs nothing at
//! create, so a container created and never started costs no process. A running container is
//! deleted only with force (killed, then removed). `stop` of a container that is not running does
//! nothing, as docker's does. Exec, attach, resize, a log reopen and signals need a running
//! container; resources can be updated from creation on.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being made; not usable (a crash here is cleaned up on start).
    Creating,
    Created,
    Running,
    Exited,
}

/// What a caller asks of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Exec,
    /// Attach a client to the running init's stdio.
    Attach,
    Signal,
    Resize,
    /// Reopen the container's log after the caller rotated it.
    ReopenLog,
    /// New resource limits for its cgroup.
    UpdateResources,
    Delete,
    ForceDelete,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }

    /// Created or running: its output is still to come.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Created | Status::Running)
    }

    pub fn can_start(self) -> bool {
        self == Status::Created
    }

    pub fn can_exec(self) -> bool {
        self == Status::Running
    }

    /// Only a running container has a process to signal.
    pub fn can_signal(self) -> bool {
        self == Status::Running
    }

    /// Without force, a running container is not deleted; a creating one never is by a caller
    /// (its create is under way, or the next start cleans it up).
    pub fn can_delete(self, force: bool) -> bool {
        match self {
            Status::Creating => false,
            Status::Running => force,
            Status::Created | Status::Exited => true,
        }
    }

    /// Whether `action` is allowed in this state.
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Start => self.can_start(),
            Action::Exec | Action::Attach | Action::Resize | Action::ReopenLog => self.can_exec(),
            Action::Signal => self.can_signal(),
            // A created container's new limits go into its spec, which its start applies.
            Action::UpdateResources => self.is_live(),
            Action::Delete => self.can_delete(false),
            Action::ForceDelete => self.can_delete(true),
        }
    }

    /// The transitions the manager makes: the only edges of the diagram above.
    pub fn can_become(self, next: Status) -> bool {
        matches!(
            (self, next),
            (Status::Creating, Status::Created)
                | (Status::Created, Status::Running)
                | (Status::Created, Status::Exited)
                | (Status::Running, Status::Exited)
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    /// The rest of the refusal after "container NAME is STATE".
    pub fn refusal(self, state: Status) -> &'static str {
        match (self, state) {
            (Action::Start, _) => ", not created: only a created container can be started",
            (Action::Exec | Action::Resize | Action::ReopenLog, _) => ", not running",
            (Action::Attach, _) => ", not running: only a running container can be attached to (its logs remain: skiff logs)",
            (Action::Signal, _) => ", not running: only a running container can be signalled",
            (Action::UpdateResources, _) => ": only a created or running container's resources can be updated",
            (Action::Delete, Status::Running) => ": stop it first, or force",
            (Action::Delete | Action::ForceDelete, _) => ": its create is still under way",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Status; 4] = [Status::Creating, Status::Created, Status::Running, Status::Exited];

    #[test]
    fn the_table_of_allowed_actions() {
        // (action, states that allow it)
        let table: [(Action, &[Status]); 8] = [
            (Action::Start, &[Status::Created]),
            (Action::Exec, &[Status::Running]),
            (Action::Attach, &[Status::Running]),
            (Action::Resize, &[Status::Running]),
            (Action::Signal, &[Status::Running]),
            (Action::UpdateResources, &[Status::Created, Status::Running]),
            (Action::Delete, &[Status::Created, Status::Exited]),
            (Action::ForceDelete, &[Status::Created, Status::Running, Status::Exited]),
        ];
        for (action, allowed) in table {
            for s in ALL {
                assert_eq!(s.allows(action), allowed.contains(&s), "{action:?} in {s}");
            }
        }
    }

    #[test]
    fn only_the_drawn_transitions_exist() {
        let edges = [(Status::Creating, Status::Created), (Status::Created, Status::Running), (Status::Created, Status::Exited), (Status::Running, Status::Exited)];
        for a in ALL {
            for b in ALL {
                assert_eq!(a.can_become(b), edges.contains(&(a, b)), "{a} -> {b}");
            }
        }
    }

    #[test]
    fn refusals_name_the_state() {
        let e = crate::EngineError::InvalidState { name: "web".into(), state: Status::Exited, action: Action::Start };
        assert_eq!(e.to_string(), "container web is exited, not created: only a created container can be started");
        let e = crate::EngineError::InvalidState { name: "web".into(), state: Status::Running, action: Action::Delete };
        assert_eq!(e.to_string(), "container web is running: stop it first, or force");
        assert_eq!(skiff_types::HasKind::kind(&e), skiff_types::ErrorKind::FailedPrecondition);
    }
}
