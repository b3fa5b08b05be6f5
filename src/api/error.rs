//! AWS-shaped errors: `{"__type": NAME, "message": TEXT}` with the HTTP status AWS uses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::control::{ControlError, InvalidRequest};
use crate::report::Chain;
use crate::streams::StreamsError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl AwsError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn resource_in_use(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ResourceInUseException", message)
    }

    pub(crate) fn concurrent_modification(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ConcurrentModificationException",
            message,
        )
    }

    pub(crate) fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "LimitExceededException", message)
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgumentException", message)
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    pub(crate) fn serialization(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "SerializationException", message)
    }

    pub(crate) fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            message,
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            message,
        )
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            message,
        )
    }

    /// The body AWS sends.
    pub(crate) fn body(&self) -> String {
        serde_json::json!({"__type": self.kind, "message": self.message}).to_string()
    }

    /// With another HTTP status (the plain endpoints use 404/413 where REST clients expect it).
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        (
            self.status,
            [
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amzn-errortype", self.kind),
            ],
            self.body(),
        )
            .into_response()
    }
}

/// The control records' errors, in AWS's terms (the one place they are mapped).
impl From<ControlError> for AwsError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(_) => AwsError::not_found(e.to_string()),
            ControlError::Io(_) => AwsError::unavailable(Chain(&e).to_string()),
        }
    }
}

impl From<InvalidRequest> for AwsError {
    fn from(e: InvalidRequest) -> Self {
        AwsError::invalid_argument(e.message)
    }
}

/// The registry's refusals, in AWS's terms (the one place they are mapped).
impl From<StreamsError> for AwsError {
    fn from(e: StreamsError) -> Self {
        let message = e.to_string();
        match e {
            StreamsError::NotFound { .. } => AwsError::not_found(message),
            StreamsError::AlreadyExists { .. }
            | StreamsError::FileStream { .. }
            | StreamsError::BeingCreated(_)
            | StreamsError::NotActive { .. } => AwsError::resource_in_use(message),
            StreamsError::TooManyOpenFiles(_) => AwsError::limit_exceeded(message),
            StreamsError::Invalid(_) | StreamsError::CannotStart(_) => {
                AwsError::invalid_argument(message)
            }
            StreamsError::Record(e) => e.into(),
        }
    }
}
