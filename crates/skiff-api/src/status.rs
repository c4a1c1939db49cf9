//! The one map between error kinds and gRPC codes, used by every API skiffd serves (Skiff's own
//! and the CRI) and by clients that branch on what went wrong. Messages pass through unchanged,
//! so a client shows the user exactly what the library said.

use skiff_types::{ErrorKind, HasKind};
use tonic::{Code, Status};

/// The gRPC code of a kind.
pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::DataLoss => Code::DataLoss,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Internal => Code::Internal,
    }
}

/// The kind a gRPC code stands for; codes outside the set (Cancelled, Aborted,
/// Unimplemented, …) fold into the nearest kind a caller would act on the same way.
pub fn kind(code: Code) -> ErrorKind {
    match code {
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::FailedPrecondition | Code::Aborted => ErrorKind::FailedPrecondition,
        Code::Unavailable | Code::Cancelled => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::DataLoss => ErrorKind::DataLoss,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::Ok | Code::Unknown | Code::Internal | Code::Unimplemented => ErrorKind::Internal,
    }
}

/// The status an error travels as: its kind's code and its message.
pub fn status<E: HasKind + std::fmt::Display + ?Sized>(e: &E) -> Status {
    Status::new(code(e.kind()), e.to_string())
}

/// What a client sees of a failed call: the kind, from the code.
pub fn kind_of(status: &Status) -> ErrorKind {
    kind(status.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_code() {
        for k in ErrorKind::ALL {
            assert_eq!(kind(code(k)), k, "{k:?}");
        }
        // Distinct kinds get distinct codes.
        let codes: std::collections::HashSet<i32> = ErrorKind::ALL.iter().map(|k| code(*k) as i32).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn every_code_maps_to_a_kind_that_maps_back_to_a_code_of_the_set() {
        for n in 0..=16 {
            let c = Code::from_i32(n);
            let k = kind(c);
            let back = code(k);
            if ErrorKind::ALL.iter().any(|k| code(*k) == c) {
                assert_eq!(back, c, "{c:?}");
            }
        }
        assert_eq!(kind(Code::DeadlineExceeded), ErrorKind::DeadlineExceeded);
        assert_eq!(kind(Code::Cancelled), ErrorKind::Unavailable);
        assert_eq!(kind(Code::Unimplemented), ErrorKind::Internal);
    }

    #[test]
    fn status_keeps_the_message() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file x");
        let s = status(&e);
        assert_eq!((s.code(), s.message()), (Code::NotFound, "no such file x"));
    }
}
