//! Why an invocation failed: before the run (its request or deadline, the function's
//! configuration, the credentials) or in it. What Lambda reports as `errorType` comes from here.

use lambda_runtime::Diagnostic;

use crate::aws::secrets::CredentialsError;
use crate::config::ConfigError;
use crate::engine::error::Error;
use crate::error::{public_message, Classified, Details, ErrorType};
use crate::lambda::deadline::DeadlineError;
use crate::lambda::request::RequestError;

#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Deadline(#[from] DeadlineError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Run(#[from] Error),
    /// A fleet target's failure: its name leads the message, its cause keeps the errorType
    /// (so a workflow's Retry on `MigrationLockBusy` still matches).
    #[error("target {name}: {source}")]
    Target { name: String, source: Box<InvocationError> },
}

impl InvocationError {
    fn inner(&self) -> &dyn Classified {
        match self {
            Self::Request(e) => e,
            Self::Deadline(e) => e,
            Self::Config(e) => e,
            Self::Credentials(e) => e,
            Self::Run(e) => e,
            Self::Target { source, .. } => source.inner(),
        }
    }
}

impl Classified for InvocationError {
    fn error_type(&self) -> ErrorType {
        self.inner().error_type()
    }

    fn migration(&self) -> Option<&str> {
        self.inner().migration()
    }

    fn details(&self) -> Details {
        self.inner().details()
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Self {
        Diagnostic {
            error_type: error.error_type().as_str().to_string(),
            // What Step Functions and the function's logs show: the same rule as CloudFormation's reason.
            error_message: public_message(&error),
        }
    }
}
