//! `wishlist-migrator-lambda` (deployed as `bootstrap`): JSON logs for CloudWatch (level from
//! `RUST_LOG`, else the function's `AWS_LAMBDA_LOG_LEVEL`), metrics as EMF lines, then the
//! library's handler under the Lambda runtime.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use tracing_subscriber::prelude::*;
use wishlist_migrator::lambda::function::Function;
use wishlist_migrator::lambda::metrics::{EmfLines, METRICS};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").map_or_else(|_| "info".to_string(), |l| l.to_lowercase());
    let logs = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into());
    let not_metrics = tracing_subscriber::filter::filter_fn(|meta| meta.target() != METRICS);
    let metrics = tracing_subscriber::filter::Targets::new().with_target(METRICS, tracing::Level::INFO);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                // CloudWatch shows colour codes raw, and no terminal ever reads these lines.
                .with_ansi(false)
                .with_current_span(false)
                .without_time()
                .with_filter(logs)
                .with_filter(not_metrics),
        )
        .with(EmfLines.with_filter(metrics))
        .init();
    let function = Arc::new(Function::from_env().await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| function.clone().handle(event))).await
}
