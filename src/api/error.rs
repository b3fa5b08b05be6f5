//! AWS-shaped errors: `{"__type": NAME, "message": TEXT}` with the HTTP status AWS uses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
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

    /// A request that is not valid HTTP, or not one firehosed serves (a path, a method, framing
    /// headers that disagree): firehosed's own error type at the HTTP layer.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }

    /// A request that did not arrive in time.
    pub(crate) fn request_timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeoutException",
            message,
        )
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

/// The header every answer carries (AWS's spelling is x-amzn-RequestId; HTTP/1.1 headers are
/// case-insensitive and hyper writes them in lower case).
pub(crate) const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// A new request id, as AWS's: a UUID.
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl AwsError {
    /// The whole HTTP/1.1 answer, for the server to write itself when hyper could not parse the
    /// request; the connection closes after it.
    pub(crate) fn raw_response(&self) -> Vec<u8> {
        let body = self.body();
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-errortype: {}\r\n{REQUEST_ID_HEADER}: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            self.kind,
            request_id(),
            body.len(),
        )
        .into_bytes()
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

/// Refused signatures and permissions, as AWS's JSON services answer them.
impl From<AuthError> for AwsError {
    fn from(e: AuthError) -> Self {
        let kind = match e {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey => "UnrecognizedClientException",
            AuthError::BadSignature | AuthError::Expired(_) | AuthError::WrongScope(_) => {
                "InvalidSignatureException"
            }
            AuthError::Denied { .. } => "AccessDeniedException",
        };
        AwsError::new(StatusCode::BAD_REQUEST, kind, e.to_string())
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
            StreamsError::Changing(_) => AwsError::resource_in_use(message),
            StreamsError::ShuttingDown => AwsError::unavailable(message),
            StreamsError::Invalid(_)
            | StreamsError::CannotStart(_)
            | StreamsError::Glue(_)
            | StreamsError::Credentials(_) => AwsError::invalid_argument(message),
            StreamsError::Record(e) => e.into(),
        }
    }
}
