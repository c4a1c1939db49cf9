//! Sandbox records, kept as `sandbox/<id>`.

use super::record::SandboxRecord;
use crate::kept::{Kept, Keyed};

pub type Sandboxes = Kept<SandboxRecord>;

impl Keyed for SandboxRecord {
    const PREFIX: &'static str = "sandbox/";
    const WHAT: &'static str = "pod sandbox";
    const FIELD: &'static str = "pod_sandbox_id";
    fn id(&self) -> &str {
        &self.id
    }
    fn created_at(&self) -> i64 {
        self.created_at
    }
}

impl Kept<SandboxRecord> {
    pub fn by_name(&self, name: &str) -> Option<SandboxRecord> {
        self.list().into_iter().find(|r| r.name == name)
    }
}
