//! One OTLP/HTTP request: the spans encoded (protobuf from `opentelemetry-proto`'s types, read
//! from the OTLP/JSON the trace export writes, or that JSON as it is), posted with the blocking
//! `ureq` client, and the answer sorted into accepted, worth another try, or refused.
//!
//! Uses `model::error`.

use std::io::Read;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::{Encoding, Error};

/// How much of a refusal's body an error quotes.
const BODY_QUOTED: u64 = 1024;

/// Why a request was not accepted.
pub(super) enum Failure {
    /// Worth sending again: the receiver was not reached, or it answered 429 or 5xx.
    Retry {
        error: String,
        /// How long the receiver asked to be left alone (`Retry-After`, in seconds).
        retry_after: Option<Duration>,
    },
    Fatal(Error),
}

/// The receiver's endpoint and how to reach it.
pub(super) struct Client {
    agent: ureq::Agent,
    url: String,
    encoding: Encoding,
}

impl Client {
    pub(super) fn new(url: &str, encoding: Encoding, timeout: Duration) -> Client {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(timeout.min(Duration::from_secs(5)))
                .timeout(timeout)
                .build(),
            url: url.to_owned(),
            encoding,
        }
    }

    /// The request body for an OTLP/JSON `ExportTraceServiceRequest`.
    pub(super) fn encode(&self, json: &[u8]) -> Result<Vec<u8>, Error> {
        match self.encoding {
            Encoding::Json => Ok(json.to_vec()),
            Encoding::Protobuf => {
                let request: ExportTraceServiceRequest = serde_json::from_slice(json)
                    .map_err(|e| Error::Store(crate::model::error::Error::Output(e.into())))?;
                Ok(request.encode_to_vec())
            }
        }
    }

    /// Posts one body to the endpoint.
    pub(super) fn post(&self, body: &[u8]) -> Result<(), Failure> {
        let answer = self
            .agent
            .post(&self.url)
            .set("Content-Type", self.encoding.content_type())
            .send_bytes(body);
        match answer {
            Ok(response) => {
                // Read to the end, so that the connection can be used again.
                let _ = std::io::copy(&mut response.into_reader(), &mut std::io::sink());
                Ok(())
            }
            Err(ureq::Error::Status(status, response)) => {
                let retry_after = response
                    .header("Retry-After")
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let mut text = Vec::new();
                let _ = response
                    .into_reader()
                    .take(BODY_QUOTED)
                    .read_to_end(&mut text);
                let body = String::from_utf8_lossy(&text).trim().to_owned();
                if status == 429 || status >= 500 {
                    Err(Failure::Retry {
                        error: format!("{} answered HTTP {status}: {body}", self.url),
                        retry_after,
                    })
                } else {
                    Err(Failure::Fatal(Error::Refused {
                        url: self.url.clone(),
                        status,
                        body,
                    }))
                }
            }
            Err(error) => Err(Failure::Retry {
                error: format!("cannot reach {}: {error}", self.url),
                retry_after: None,
            }),
        }
    }
}
