//! gRPC status codes for the HTTP API's error statuses: the server answers
//! every core error with the code of the HTTP status the same error gets
//! there, so both APIs refuse alike. Client errors are never `INTERNAL`.

use tonic::Code;

/// The gRPC code for an HTTP error status.
pub fn code_for_http(status: u16) -> Code {
    match status {
        400 | 413 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::AlreadyExists,
        412 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        s if (400..500).contains(&s) => Code::FailedPrecondition,
        _ => Code::Internal,
    }
}

/// The HTTP status a gRPC code stands for (the inverse of
/// [`code_for_http`] on its codes), for clients that report errors as
/// HTTP statuses.
pub fn http_for_code(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::InvalidArgument | Code::OutOfRange => 422,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::FailedPrecondition => 412,
        Code::ResourceExhausted => 429,
        Code::Unavailable => 503,
        Code::DeadlineExceeded | Code::Cancelled => 504,
        // An RPC this server lacks: as an HTTP route it lacks.
        Code::Unimplemented => 405,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_never_internal() {
        for status in 400..500 {
            assert_ne!(code_for_http(status), Code::Internal, "{status}");
        }
        assert_eq!(code_for_http(422), Code::InvalidArgument);
        assert_eq!(code_for_http(401), Code::Unauthenticated);
        assert_eq!(code_for_http(500), Code::Internal);
    }

    #[test]
    fn codes_map_back_to_their_status() {
        for status in [401, 403, 404, 409, 412, 422, 429, 503, 504] {
            assert_eq!(http_for_code(code_for_http(status)), status);
        }
    }
}
