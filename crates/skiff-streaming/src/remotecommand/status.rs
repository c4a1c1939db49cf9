//! What the error stream carries when a command ends: from `v4.channel.k8s.io` on, a
//! Kubernetes `Status` object in JSON (kubectl reads the exit code out of its causes); before
//! that, the error's text alone, and nothing on success.

use serde_json::{json, Value};

use super::Version;

/// How the streamed process ended, as the client is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It exited 0 (or the attach ended).
    Success,
    /// It exited with this code (or 128 + the signal that killed it).
    Exited(i32),
    /// It could not run, or the stream failed: the message says why.
    Failed(String),
}

/// The error stream's bytes for `outcome` in protocol `version`; empty: nothing to write.
pub fn error_stream_bytes(version: Version, outcome: &Outcome) -> Vec<u8> {
    if version >= Version::V4 {
        return status(outcome).to_string().into_bytes();
    }
    match outcome {
        Outcome::Success => Vec::new(),
        Outcome::Exited(code) => format!("command terminated with non-zero exit code: exit status {code}").into_bytes(),
        Outcome::Failed(message) => message.clone().into_bytes(),
    }
}

/// The v4 `Status`: `Success`, or `Failure` with reason `NonZeroExitCode` and the code in
/// `details.causes` (`ExitCode`), or `InternalError` with the message.
pub fn status(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Success => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Failed(message) => json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "InternalError",
            "code": 500,
            "details": {"causes": [{"message": message}]},
        }),
    }
}

impl Outcome {
    /// The outcome of a process that exited with `code`.
    pub fn of_exit(code: i32) -> Outcome {
        if code == 0 {
            Outcome::Success
        } else {
            Outcome::Exited(code)
        }
    }
}

/// The exit code an error stream reports, as a client reads it (None: success or not a code).
pub fn exit_code_of(status: &Value) -> Option<i32> {
    if status["reason"] != "NonZeroExitCode" {
        return None;
    }
    status["details"]["causes"].as_array()?.iter().find(|c| c["reason"] == "ExitCode")?["message"].as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_status_carries_the_exit_code_where_kubectl_reads_it() {
        let bytes = error_stream_bytes(Version::V4, &Outcome::Exited(3));
        let status: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(exit_code_of(&status), Some(3));
        let ok: Value = serde_json::from_slice(&error_stream_bytes(Version::V5, &Outcome::Success)).expect("json");
        assert_eq!(ok["status"], "Success");
        assert_eq!(exit_code_of(&ok), None);
    }

    #[test]
    fn older_protocols_get_text_and_nothing_on_success() {
        assert!(error_stream_bytes(Version::V3, &Outcome::Success).is_empty());
        assert_eq!(error_stream_bytes(Version::V1, &Outcome::Failed("no such container".into())), b"no such container");
        assert!(String::from_utf8(error_stream_bytes(Version::V2, &Outcome::Exited(7))).expect("json").contains("exit status 7"));
    }

    #[test]
    fn a_failure_is_an_internal_error_with_its_message() {
        let status = status(&Outcome::Failed("executable file not found".into()));
        assert_eq!(status["reason"], "InternalError");
        assert_eq!(status["message"], "executable file not found");
        assert_eq!(Outcome::of_exit(0), Outcome::Success);
    }
}
