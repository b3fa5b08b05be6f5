//! The S3 destination through aws-sdk-s3: one PutObject for small objects, a multipart upload
//! (streamed from the staging file) from MULTIPART_THRESHOLD up. Exactly-once objects are
//! written with `If-None-Match: *` on PutObject and CompleteMultipartUpload: S3's 412
//! PreconditionFailed means an object of that name exists, so these records are delivered.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};

use super::sink::{DeliveryError, Written};
use super::staging::Sealed;

/// Objects of this size and more go as multipart uploads.
pub(crate) const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Size of each part but the last.
pub(crate) const PART_SIZE: u64 = 8 * 1024 * 1024;

const CONTENT_TYPE: &str = "application/octet-stream";

/// Why the start-up check of a bucket failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BucketError {
    #[error("S3 bucket {0:?} does not exist")]
    Missing(String),
    #[error("access to S3 bucket {0:?} is denied")]
    Denied(String),
    #[error("S3 bucket {0:?} is in another region")]
    OtherRegion(String),
    #[error("S3 bucket {bucket:?}: HTTP {status}")]
    Status { bucket: String, status: u16 },
    /// No answer (the server may still be starting): worth a few quick retries.
    #[error("S3 bucket {bucket:?} cannot be reached: {detail}")]
    Unreachable { bucket: String, detail: String },
}

impl BucketError {
    /// Worth waiting out: no answer, a server error, throttling.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            BucketError::Unreachable { .. } => true,
            BucketError::Status { status, .. } => *status >= 500 || *status == 429,
            BucketError::Missing(_) | BucketError::Denied(_) | BucketError::OtherRegion(_) => false,
        }
    }
}

pub(crate) struct S3Sink {
    client: Client,
    bucket: String,
    /// SSE-KMS with this key on every object (PutObject and CreateMultipartUpload).
    kms_key_arn: Option<String>,
}

impl S3Sink {
    pub(crate) fn new(client: Client, bucket: String, kms_key_arn: Option<String>) -> Self {
        S3Sink {
            client,
            bucket,
            kms_key_arn,
        }
    }

    fn sse(&self) -> (Option<ServerSideEncryption>, Option<String>) {
        match &self.kms_key_arn {
            Some(key) => (Some(ServerSideEncryption::AwsKms), Some(key.clone())),
            None => (None, None),
        }
    }

    pub(crate) fn bucket(&self) -> &str {
        &self.bucket
    }

    /// An object's bytes (None: there is none), for the sink contract's read-back.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, DeliveryError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out
                .body
                .collect()
                .await
                .map(|b| Some(b.into_bytes().to_vec()))
                .map_err(|e| DeliveryError {
                    transient: true,
                    message: format!("reading {key}: {e}"),
                }),
            Err(SdkError::ServiceError(se)) if se.err().is_no_such_key() => Ok(None),
            Err(e) => Err(classify("GetObject", e)),
        }
    }

    /// Start-up check: the bucket exists and is reachable with these credentials.
    pub(crate) async fn check_bucket(&self) -> Result<(), BucketError> {
        let bucket = self.bucket.clone();
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => Err(match se.raw().status().as_u16() {
                404 => BucketError::Missing(bucket),
                403 => BucketError::Denied(bucket),
                301 => BucketError::OtherRegion(bucket),
                status => BucketError::Status { bucket, status },
            }),
            Err(e) => Err(BucketError::Unreachable {
                bucket,
                detail: DisplayErrorContext(&e).to_string(),
            }),
        }
    }

    pub(crate) async fn deliver(&self, object: &Sealed) -> Result<Written, DeliveryError> {
        if object.size < MULTIPART_THRESHOLD {
            let body = ByteStream::from_path(&object.path)
                .await
                .map_err(|e| local_error(&e))?;
            let (sse, key) = self.sse();
            let sent = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&object.key)
                .content_type(CONTENT_TYPE)
                .set_server_side_encryption(sse)
                .set_ssekms_key_id(key)
                .set_if_none_match(if_none_match(object))
                .content_length(object.size as i64)
                .body(body)
                .send()
                .await;
            return match sent {
                Ok(_) => Ok(Written::Put),
                Err(e) if precondition_failed(&e) => Ok(Written::AlreadyThere),
                Err(e) => Err(classify("PutObject", e)),
            };
        }
        self.multipart(object).await
    }

    /// Start-up check of exactly-once delivery: a conditional put of a probe object succeeds
    /// once and is refused the second time. Ok(false): the server ignores `If-None-Match`.
    pub(crate) async fn conditional_writes(&self) -> Result<bool, DeliveryError> {
        let key = format!(
            ".firehosed/conditional-write-probe-{}",
            uuid::Uuid::new_v4().simple()
        );
        let (sse, kms) = self.sse();
        let put = || {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .if_none_match("*")
                .set_server_side_encryption(sse.clone())
                .set_ssekms_key_id(kms.clone())
                .body(ByteStream::from_static(b"probe"))
                .send()
        };
        let first = match put().await {
            Ok(_) => Ok(()),
            // A fresh name already taken: this put itself, retried by the SDK after its answer
            // was lost, if the probe object is there (a server refusing every conditional
            // put would otherwise pass, and then take every object for already written).
            Err(e) if precondition_failed(&e) => self.probe_written(&key).await,
            Err(e) => Err(classify("PutObject", e)),
        };
        // Objects of 16 MiB and more are completed multipart uploads: that write must be
        // refused too once the name exists.
        let answer = match first {
            Ok(()) => match put().await {
                Ok(_) => Ok(false),
                Err(e) if precondition_failed(&e) => self.multipart_probe(&key).await,
                Err(e) => Err(classify("PutObject", e)),
            },
            Err(e) => Err(e),
        };
        // Removed whatever the answer: a first put that failed may have been written (its
        // answer lost), and the probe is not the user's object (the chaos harness found probe
        // objects of failed attempts left in its buckets; startup_faults.rs).
        let _ = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await;
        answer
    }

    /// Ok when the probe object `key` exists with the probe's 5 bytes.
    async fn probe_written(&self, key: &str) -> Result<(), DeliveryError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("HeadObject", e))?;
        if head.content_length() == Some(5) {
            Ok(())
        } else {
            Err(DeliveryError {
                transient: false,
                message: format!(
                    "PutObject of a new name answered 412 and no probe object is there: the server refuses conditional writes it should accept (HeadObject: {:?} bytes)",
                    head.content_length()
                ),
            })
        }
    }

    /// A one-part multipart upload of the existing `key`, completed with `If-None-Match: *`:
    /// whether the server refuses it (412). The upload is aborted either way.
    async fn multipart_probe(&self, key: &str) -> Result<bool, DeliveryError> {
        let (sse, kms) = self.sse();
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
            .map_err(|e| classify("CreateMultipartUpload", e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let answer = async {
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(1)
                .body(ByteStream::from_static(b"probe"))
                .send()
                .await
                .map_err(|e| classify("UploadPart", e))?;
            let completed = CompletedPart::builder()
                .part_number(1)
                .set_e_tag(part.e_tag().map(str::to_string))
                .build();
            let done = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .if_none_match("*")
                .multipart_upload(CompletedMultipartUpload::builder().parts(completed).build())
                .send()
                .await;
            match done {
                Ok(_) => Ok(false),
                Err(e) if precondition_failed(&e) => Ok(true),
                Err(e) => Err(classify("CompleteMultipartUpload", e)),
            }
        }
        .await;
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await;
        answer
    }

    async fn multipart(&self, object: &Sealed) -> Result<Written, DeliveryError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&object.key)
            .content_type(CONTENT_TYPE)
            .set_server_side_encryption(self.sse().0)
            .set_ssekms_key_id(self.sse().1)
            .send()
            .await
            .map_err(|e| classify("CreateMultipartUpload", e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result = self.upload_parts(object, &upload_id).await;
        if result.is_err() {
            // Best effort: a failed upload is restarted whole; don't leave its parts behind.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&object.key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn upload_parts(
        &self,
        object: &Sealed,
        upload_id: &str,
    ) -> Result<Written, DeliveryError> {
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < object.size {
            let len = PART_SIZE.min(object.size - offset);
            let body = ByteStream::read_from()
                .path(&object.path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|e| local_error(&e))?;
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(&object.key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(len as i64)
                .body(body)
                .send()
                .await
                .map_err(|e| classify("UploadPart", e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                    .build(),
            );
            offset += len;
            number += 1;
        }
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&object.key)
            .upload_id(upload_id)
            .set_if_none_match(if_none_match(object))
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => Ok(Written::Put),
            Err(e) if precondition_failed(&e) => {
                // The parts are not needed: the object is there.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&object.key)
                    .upload_id(upload_id)
                    .send()
                    .await;
                Ok(Written::AlreadyThere)
            }
            Err(e) => Err(classify("CompleteMultipartUpload", e)),
        }
    }
}

/// `*` for an exactly-once object: written only if no object has its name.
fn if_none_match(object: &Sealed) -> Option<String> {
    object.identity.as_ref().map(|_| "*".to_string())
}

/// S3's answer to a conditional write whose condition failed: 412 PreconditionFailed (by the
/// status and the error code, never the message).
fn precondition_failed<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => {
            se.raw().status().as_u16() == 412 || se.err().code() == Some("PreconditionFailed")
        }
        _ => false,
    }
}

fn local_error(e: &dyn std::error::Error) -> DeliveryError {
    DeliveryError {
        transient: true,
        message: format!("reading the staged object: {e}"),
    }
}

/// Transient: timeouts, connection failures, 5xx, 408/429, SlowDown and friends. The rest
/// (NoSuchBucket, AccessDenied, ...) needs an operator.
fn classify<E>(op: &str, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> DeliveryError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let transient = match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or_default();
            status >= 500
                || status == 408
                || status == 429
                || matches!(
                    code,
                    "SlowDown"
                        | "RequestTimeout"
                        | "InternalError"
                        | "ServiceUnavailable"
                        | "Throttling"
                        | "ThrottlingException"
                        | "RequestTimeTooSkewed"
                        // A concurrent conditional write to the same key: retry it.
                        | "ConditionalRequestConflict"
                )
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    DeliveryError {
        transient,
        message: format!("{op}: {}", DisplayErrorContext(&err)),
    }
}
