//! The path parameters the routes share, as the OpenAPI document states
//! them: a worker's code, an exam's id, a student's session. Each pattern
//! is written once, as core validates the value (`WorkerId`, `ExamId`,
//! `UserId`); a handler names the parameters with `params(ExamPath)`, …
//!
//! The bodies of `vdi-cluster-protocol` state the same patterns in their
//! derives, which take literals only: a test holds them to these.

use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};
use vdi_cluster_core::ids::{MAX_SUBJECT_ID_LEN, MAX_WORKER_CODE_LEN};
use vdi_cluster_core::vm::MAX_VM_ID_LEN;

/// A worker's code: letters, digits, `.`, `_`, `-`, starting with a letter
/// or digit (1 to 64 characters).
pub(crate) const WORKER_CODE_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]*$";

/// An exam or student id: no control characters, no white space at either
/// end (1 to 128 characters).
pub(crate) const ID_PATTERN: &str =
    "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$";

/// A VM's id: a session's or a prewarmed machine's (see `vdi_cluster_core::vm`).
pub(crate) const VM_ID_PATTERN: &str = "^(?:session:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+|prewarm:[A-Za-z0-9][A-Za-z0-9._-]*:[A-Za-z0-9_-]+:[1-9][0-9]{0,9})$";

/// A required path parameter `name`: a string of 1 to `max` characters
/// matching `pattern`.
fn path_param(name: &str, description: &str, max: usize, pattern: &str) -> Parameter {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(pattern));
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .description(Some(description))
        .required(Required::True)
        .schema(Some(schema))
        .build()
}

/// `{code}`: the worker's code.
pub(crate) struct WorkerCodePath;

impl IntoParams for WorkerCodePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![path_param(
            "code",
            "Worker code",
            MAX_WORKER_CODE_LEN,
            WORKER_CODE_PATTERN,
        )]
    }
}

/// `{id}`: a VM (a session or a prewarmed machine).
pub(crate) struct VmIdPath;

impl IntoParams for VmIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![path_param(
            "id",
            "VM id: session:<examId>:<userId> or prewarm:<workerCode>:<examId>:<n>, ids in unpadded base64url",
            MAX_VM_ID_LEN,
            VM_ID_PATTERN,
        )]
    }
}

/// `{examId}`: the exam.
pub(crate) struct ExamPath;

impl IntoParams for ExamPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![path_param(
            "examId",
            "Exam id",
            MAX_SUBJECT_ID_LEN,
            ID_PATTERN,
        )]
    }
}

/// `{examId}/{userId}`: a student's session.
pub(crate) struct SessionPath;

impl IntoParams for SessionPath {
    fn into_params(provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = ExamPath::into_params(provider);
        params.push(path_param(
            "userId",
            "Student id",
            MAX_SUBJECT_ID_LEN,
            ID_PATTERN,
        ));
        params
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::PartialSchema;
    use vdi_cluster_protocol::join::{CreateJoinToken, InstallScriptRequest};
    use vdi_cluster_protocol::sessions::AllocateSessionRequest;
    use vdi_cluster_protocol::{HeartbeatRequest, RegisterRequest, SessionRef};

    use super::*;

    /// The property `field` of `T`'s schema.
    fn property<T: PartialSchema>(field: &str) -> Value {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let props = |s: &Value| s["properties"][field].clone();
        std::iter::once(props(&schema))
            .chain(schema["allOf"].as_array().into_iter().flatten().map(props))
            .find(|p| !p.is_null())
            .unwrap_or_else(|| panic!("no {field} in {schema}"))
    }

    #[test]
    fn the_bodies_state_the_same_patterns() {
        for code in [
            property::<HeartbeatRequest>("code"),
            property::<RegisterRequest>("code"),
            property::<CreateJoinToken>("code"),
            property::<InstallScriptRequest>("code"),
        ] {
            assert_eq!(code["pattern"], json!(WORKER_CODE_PATTERN), "{code}");
            assert_eq!(code["maxLength"], json!(MAX_WORKER_CODE_LEN), "{code}");
        }
        for id in [
            property::<SessionRef>("examId"),
            property::<SessionRef>("userId"),
            property::<AllocateSessionRequest>("examId"),
            property::<AllocateSessionRequest>("userId"),
        ] {
            assert_eq!(id["pattern"], json!(ID_PATTERN), "{id}");
            assert_eq!(id["maxLength"], json!(MAX_SUBJECT_ID_LEN), "{id}");
        }
    }
}
